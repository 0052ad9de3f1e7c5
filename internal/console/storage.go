package console

import (
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/store"
)

type uploadRow struct {
	ID, Repo string
	Offset   int64
	Started  time.Time
	Written  time.Time
}

type storagePage struct {
	Blobs         int
	Bytes         int64
	Unlinked      int // blobs no repository links: what gc deletes at least
	UnlinkedBytes int64
	Uploads       []uploadRow
	OrphanUploads int // upload data with no session in the metadata store
	Took          time.Duration
}

// storage walks the blob store: it costs one metadata lookup per blob,
// so it is an administrator's page, computed when asked.
func (c *Console) storage(w http.ResponseWriter, r *request) {
	ctx := r.Context()
	start := time.Now()
	var p storagePage
	err := c.blobs.Blobs(ctx, func(d digest.Digest, size int64, _ time.Time) error {
		p.Blobs++
		p.Bytes += size
		if _, err := c.meta.AnyBlobLink(ctx, d); errors.Is(err, store.ErrNotFound) {
			p.Unlinked++
			p.UnlinkedBytes += size
		} else if err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		c.internal(w, r, "reading the blob store", err)
		return
	}
	err = c.blobs.Uploads(ctx, func(id string, written time.Time) error {
		u, err := c.meta.Upload(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			p.OrphanUploads++
			return nil
		}
		if err != nil {
			return err
		}
		p.Uploads = append(p.Uploads, uploadRow{ID: id, Repo: u.Repo, Offset: u.Offset, Started: u.StartedAt, Written: written})
		return nil
	})
	if err != nil {
		c.internal(w, r, "listing uploads", err)
		return
	}
	sort.Slice(p.Uploads, func(i, j int) bool { return p.Uploads[i].Started.Before(p.Uploads[j].Started) })
	p.Took = time.Since(start).Round(time.Millisecond)
	c.render(w, r, http.StatusOK, "storage", "Storage", p)
}
