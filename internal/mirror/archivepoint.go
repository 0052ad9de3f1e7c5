package mirror

import (
	"bytes"
	"context"
	"fmt"
	"io"

	digest "github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/archive"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// archiveDest is the copy engine's view of an archive being written: no
// repositories or tags (the plan keeps those), manifests stored as blobs,
// and blobs that earlier archives hold (base) skipped.
type archiveDest struct {
	w    *archive.Writer
	base map[digest.Digest]bool
}

func (a *archiveDest) HasManifest(_ context.Context, _, _ string, d digest.Digest) (bool, error) {
	// Manifests are always carried, even when a base archive had them,
	// so d2m can read every image's tree from this archive alone.
	return a.w.Has(d), nil
}

func (a *archiveDest) PutManifest(ctx context.Context, _, _ string, m transfer.Manifest) (bool, error) {
	if a.w.Has(m.Digest) {
		return false, nil
	}
	return false, a.w.PutBlob(ctx, m.Digest, int64(len(m.Data)), bytes.NewReader(m.Data))
}

func (a *archiveDest) HasBlob(_ context.Context, _ string, d digest.Digest) (bool, error) {
	return a.base[d] || a.w.Has(d), nil
}

// Mount finds a blob stored once: an archive has no repositories.
func (a *archiveDest) Mount(_ context.Context, repo, _ string, d digest.Digest) (bool, string, error) {
	has, err := a.HasBlob(context.Background(), repo, d)
	return has, "", err
}

func (a *archiveDest) PutBlob(ctx context.Context, _ string, d digest.Digest, size int64, r io.Reader, _ string) error {
	return a.w.PutBlob(ctx, d, size, r)
}

// archiveSource serves blobs and manifests straight from the chunks.
type archiveSource struct{ a *archive.Archive }

func (s archiveSource) Manifest(_ context.Context, _ string, d digest.Digest) (transfer.Manifest, error) {
	rc, size, err := s.a.OpenBlob(d)
	if err != nil {
		return transfer.Manifest{}, err
	}
	defer rc.Close()
	if size > 8<<20 {
		return transfer.Manifest{}, fmt.Errorf("manifest %s in the archive is %d bytes, too large", d, size)
	}
	data, err := io.ReadAll(rc)
	if err != nil {
		return transfer.Manifest{}, fmt.Errorf("read manifest %s from the archive: %w", d, err)
	}
	return transfer.Manifest{Digest: d, Data: data}, nil
}

func (s archiveSource) Blob(_ context.Context, _ string, d digest.Digest) (io.ReadCloser, int64, error) {
	return s.a.OpenBlob(d)
}
