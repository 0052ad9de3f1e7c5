package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/runreport"
	"github.com/ferry-mirror/ferry/internal/store"
)

// reportCache remembers parsed run reports by manifest digest.
type reportCache struct {
	mu sync.Mutex
	m  map[digest.Digest]*runreport.Report
}

func (rc *reportCache) get(d digest.Digest) *runreport.Report {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.m[d]
}

func (rc *reportCache) put(d digest.Digest, r *runreport.Report) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.m == nil || len(rc.m) >= 4096 {
		rc.m = map[digest.Digest]*runreport.Report{}
	}
	rc.m[d] = r
}

// report reads the run report tagged tag.
func (c *Console) report(ctx context.Context, tag string) (*runreport.Report, error) {
	m, err := c.meta.TaggedManifest(ctx, runreport.Repo, tag)
	if err != nil {
		return nil, err
	}
	if rep := c.reports.get(m.Digest); rep != nil {
		return rep, nil
	}
	d, err := parseManifest(m)
	if err != nil {
		return nil, err
	}
	for _, l := range d.Layers {
		if l.MediaType != runreport.MediaType {
			continue
		}
		b, err := c.readBlob(ctx, runreport.Repo, l.Digest, runreport.MaxSize)
		if err != nil {
			return nil, err
		}
		var rep runreport.Report
		if err := json.Unmarshal(b, &rep); err != nil {
			return nil, fmt.Errorf("run report %s: %w", tag, err)
		}
		c.reports.put(m.Digest, &rep)
		return &rep, nil
	}
	return nil, fmt.Errorf("%s:%s is not a run report (no %s layer)", runreport.Repo, tag, runreport.MediaType)
}

type runRow struct {
	Tag    string
	Report *runreport.Report
	Err    string
}

type runsPage struct {
	Visible bool
	Runs    []runRow
	Next    string
}

// runs lists the reports newest first. Tags sort by the run's start, and
// the store lists them oldest first, so the names are read whole (one
// short string per run) and the page is cut from the end.
func (c *Console) runs(w http.ResponseWriter, r *request) {
	p := runsPage{Visible: r.canPull(runreport.Repo)}
	if p.Visible {
		ctx := r.Context()
		var tags []string
		for last := ""; ; {
			batch, err := c.meta.Tags(ctx, runreport.Repo, last, 1000)
			if errors.Is(err, store.ErrNotFound) {
				break
			}
			if err != nil {
				c.internal(w, r, "listing run reports", err)
				return
			}
			tags = append(tags, batch...)
			if len(batch) < 1000 {
				break
			}
			last = batch[len(batch)-1]
		}
		end := len(tags)
		if before := r.URL.Query().Get("before"); before != "" {
			end, _ = slices.BinarySearch(tags, before)
		}
		start := max(end-pageSize, 0)
		for i := end - 1; i >= start; i-- {
			row := runRow{Tag: tags[i]}
			var err error
			if row.Report, err = c.report(ctx, tags[i]); err != nil {
				row.Err = err.Error()
			}
			p.Runs = append(p.Runs, row)
		}
		if start > 0 {
			p.Next = tags[start]
		}
	}
	c.render(w, r, http.StatusOK, "runs", "Mirror runs", p)
}

func (c *Console) run(w http.ResponseWriter, r *request) {
	tag := r.URL.Query().Get("tag")
	if !r.canPull(runreport.Repo) {
		c.fail(w, r, http.StatusNotFound, "No run report "+tag+" that you may read.")
		return
	}
	rep, err := c.report(r.Context(), tag)
	if errors.Is(err, store.ErrNotFound) {
		c.fail(w, r, http.StatusNotFound, "No run report "+tag+" that you may read.")
		return
	}
	if err != nil {
		c.fail(w, r, http.StatusUnprocessableEntity, "The run report "+tag+" cannot be read: "+err.Error())
		return
	}
	c.render(w, r, http.StatusOK, "run", "Mirror run "+tag, runRow{Tag: tag, Report: rep})
}

// signedReleases reads the run reports r may see and returns the release
// digests whose signatures some run wrote into signature-configmap.yaml,
// and whether any report was readable at all.
func (c *Console) signedReleases(ctx context.Context, r *request) (map[string]bool, bool) {
	if !r.canPull(runreport.Repo) {
		return nil, false
	}
	signed := map[string]bool{}
	any := false
	last := ""
	for {
		tags, err := c.meta.Tags(ctx, runreport.Repo, last, 1000)
		if err != nil {
			return signed, any
		}
		for _, t := range tags {
			rep, err := c.report(ctx, t)
			if err != nil {
				continue
			}
			any = true
			for _, rel := range rep.Releases {
				if rel.Signed && rep.SignatureConfigMap {
					signed[rel.Digest] = true
				}
			}
		}
		if len(tags) < 1000 {
			return signed, any
		}
		last = tags[len(tags)-1]
	}
}
