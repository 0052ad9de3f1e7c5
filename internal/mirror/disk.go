package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/archive"
	"github.com/ferry-mirror/ferry/internal/oci"
	"github.com/ferry-mirror/ferry/internal/plan"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// archivedPlan is what an archive's metadata carries as its plan.
type archivedPlan struct {
	ID   string     `json:"id"`
	Plan *plan.Plan `json:"plan"`
}

func (r *run) mirrorToDisk(ctx context.Context) error {
	pl, err := r.newPlanner(ctx)
	if err != nil {
		return err
	}
	if r.o.DryRun {
		return r.buildDryRun(ctx, pl, "")
	}
	hist, err := loadHistory(r.workDir)
	if err != nil {
		return err
	}
	if err := r.retirePrevious(hist); err != nil {
		return err
	}
	base, baseRef := hist.base(r.o.Since)
	if baseRef != nil {
		r.log.Info("differential archive", "base", baseRef.ID, "base_created", baseRef.Created, "known_blobs", len(base))
	}
	w, err := archive.Create(ctx, r.o.Dir, archive.Options{MaxChunkBytes: r.cfg.ArchiveSizeBytes(), Logger: r.log})
	if err != nil {
		return err
	}
	defer w.Close()
	p, results, err := r.planAndCopy(ctx, pl, &archiveDest{w: w, base: base}, "archive", 0)
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// The archive carries the images that made it; failures are reported
	// and excluded, so d2m never looks for what is not there.
	kept := *p
	kept.Images = nil
	for i, res := range results {
		if res.Err == nil {
			kept.Images = append(kept.Images, p.Images[i])
		}
	}
	created := time.Now().UTC()
	id := "ferry-" + created.Format("20060102T150405Z")
	planJSON, err := json.Marshal(archivedPlan{ID: id, Plan: &kept})
	if err != nil {
		return err
	}
	cfgJSON, err := json.Marshal(r.cfg)
	if err != nil {
		return err
	}
	if err := r.saveRelease(ctx, w); err != nil {
		return fmt.Errorf("archive release data: %w", err)
	}
	if err := w.Commit(ctx, archive.Metadata{Created: created, Tool: "ferry", Config: cfgJSON, Plan: planJSON, Base: baseRef}); err != nil {
		return fmt.Errorf("commit archive: %w", err)
	}
	a, err := archive.Open(r.o.Dir)
	if err != nil {
		return err
	}
	hist.add(id, a.Metadata())
	if err := hist.save(r.workDir); err != nil {
		return err
	}
	fmt.Fprintf(r.o.Out, "archive %s written to %s (%d chunks)\n", id, r.o.Dir, len(a.Metadata().Chunks))
	return r.finish(p, results, false)
}

// retirePrevious records a complete archive already in the folder in the
// history and removes it, as oc-mirror does, so the new one can be
// written there and builds on it.
func (r *run) retirePrevious(h *history) error {
	if _, err := os.Stat(filepath.Join(r.o.Dir, archive.MetadataFile)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	a, err := archive.Open(r.o.Dir)
	if err != nil {
		return err
	}
	var ap archivedPlan
	_ = json.Unmarshal(a.Metadata().Plan, &ap)
	if ap.ID == "" {
		ap.ID = "ferry-" + a.Metadata().Created.UTC().Format("20060102T150405Z")
	}
	if !h.has(ap.ID) {
		h.add(ap.ID, a.Metadata())
		if err := h.save(r.workDir); err != nil {
			return err
		}
	}
	if err := os.Remove(filepath.Join(r.o.Dir, archive.MetadataFile)); err != nil {
		return fmt.Errorf("remove previous archive: %w", err)
	}
	for _, c := range a.Metadata().Chunks {
		if err := os.Remove(filepath.Join(r.o.Dir, c.Name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove previous archive: %w", err)
		}
	}
	r.log.Info("previous archive removed; the new one builds on it", "id", ap.ID)
	return nil
}

func (r *run) diskToMirror(ctx context.Context) error {
	if isOcMirrorArchive(r.o.Dir) {
		return r.pushOcMirrorArchive(ctx)
	}
	a, err := archive.Open(r.o.Dir)
	if err != nil {
		return err
	}
	meta := a.Metadata()
	var ap archivedPlan
	if err := json.Unmarshal(meta.Plan, &ap); err != nil || ap.Plan == nil {
		return fmt.Errorf("archive %s carries no Ferry plan; was it written by `ferry mirror ... file://`?", r.o.Dir)
	}
	p := ap.Plan
	// The plan decides where everything is pushed and what the cluster
	// resources point at: an archive is outside input like any upstream.
	if err := p.Validate(); err != nil {
		return fmt.Errorf("archive %s carries a plan Ferry will not follow, nothing was pushed: %w", r.o.Dir, err)
	}
	p.SetDigestTags(!r.o.NoDigestTags) // this run's choice, whatever the archive's was
	if err := r.loadRelease(a); err != nil {
		return err
	}
	for _, m := range p.Missing {
		r.log.Warn("image was missing when the archive was made; it is not in it", "image", m.Source, "reason", m.Reason)
	}
	p.Missing = nil
	r.log.Info("verifying archive", "chunks", len(meta.Chunks))
	if err := a.Verify(ctx, nil); err != nil {
		return fmt.Errorf("archive %s failed verification, nothing was pushed: %w", r.o.Dir, err)
	}
	// The plan is the archive's; the config given now can only block more.
	if blocked := r.cfg.Mirror.BlockedPatterns(); len(blocked) > 0 {
		var keep []plan.Image
		for _, im := range p.Images {
			if plan.IsBlocked(blocked, im.Source, im.SourceRepo) {
				p.Blocked = append(p.Blocked, im.Source)
				continue
			}
			keep = append(keep, im)
		}
		p.Images = keep
	}
	src := archiveSource{a: a}
	manifests := map[digest.Digest]transfer.Manifest{}
	for _, s := range p.Synthesized {
		manifests[s.Digest] = s
	}
	for _, d := range p.Manifests {
		if _, ok := manifests[d.Digest]; ok || !a.Has(d.Digest) {
			continue
		}
		m, err := src.Manifest(ctx, "", d.Digest)
		if err != nil {
			return err
		}
		m.MediaType = d.MediaType
		manifests[d.Digest] = m
	}
	if r.o.DryRun {
		return r.dryRun(p, r.o.Dest)
	}
	dst, err := r.destination(ctx)
	if err != nil {
		return err
	}
	jobs := p.Jobs(r.o.Dest, r.o.MaxNestedPaths, !r.o.RemoveSignatures)
	if err := insidePrefix(r.o.Dest, r.o.MaxNestedPaths, jobs); err != nil {
		return err
	}
	eng := r.engine(src, transfer.RegistryDest{R: dst}, func(d digest.Digest) (transfer.Manifest, bool) {
		m, ok := manifests[d]
		return m, ok
	})
	if err := r.checkBase(ctx, a, dst, jobs, manifests, eng); err != nil {
		return err
	}
	results := r.copy(ctx, eng, p, jobs)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	r.recordMirrored(p, results, nil, func(d digest.Digest) (transfer.Manifest, bool) {
		m, ok := manifests[d]
		return m, ok
	})
	return r.finish(p, results, true)
}

// checkBase makes sure every blob a differential archive left out is at
// the destination already, before anything is pushed, and tells the
// engine where each is so it can be mounted into new repositories.
func (r *run) checkBase(ctx context.Context, a *archive.Archive, dst *transfer.Client, jobs []transfer.Job, manifests map[digest.Digest]transfer.Manifest, eng *transfer.Engine) error {
	repos := map[digest.Digest][]string{}
	var walk func(repo string, d digest.Digest)
	walk = func(repo string, d digest.Digest) {
		m, ok := manifests[d]
		if !ok {
			return
		}
		pm, err := m.Parse()
		if err != nil {
			return
		}
		for _, c := range pm.Children {
			walk(repo, c.Digest)
		}
		for _, b := range pm.Blobs() {
			if !a.Has(b.Digest) && oci.Distributable(b) {
				repos[b.Digest] = append(repos[b.Digest], repo)
			}
		}
	}
	for _, j := range jobs {
		for _, it := range j.Items {
			walk(it.DstRepo, it.Digest)
		}
	}
	if len(repos) == 0 {
		return nil
	}
	var missing []string
	for d, rs := range repos {
		found := false
		seen := map[string]bool{}
		for _, repo := range rs {
			if seen[repo] {
				continue
			}
			seen[repo] = true
			ok, err := dst.HasBlob(ctx, repo, d)
			if err != nil {
				return err
			}
			if ok {
				eng.Present(d, repo)
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, d.String())
		}
	}
	if len(missing) == 0 {
		return nil
	}
	base := "an earlier archive"
	if b := a.Metadata().Base; b != nil {
		base = fmt.Sprintf("archive %s (made %s)", b.ID, b.Created.Format(time.RFC3339))
	}
	if len(missing) > 5 {
		missing = append(missing[:5], fmt.Sprintf("and %d more", len(missing)-5))
	}
	return fmt.Errorf("this archive is differential: it builds on %s, and %s %s not at %s; push that archive first (ferry mirror --from file://<its folder> docker://%s), then this one; nothing was pushed",
		base, strings.Join(missing, ", "), plural(len(missing), "is", "are"), r.o.Dest, r.o.Dest)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// insidePrefix refuses jobs that would push outside the destination's
// path prefix; Validate already keeps ".." out of the plan, this keeps
// the promise whatever path folding does.
func insidePrefix(root string, maxNested int, jobs []transfer.Job) error {
	for _, j := range jobs {
		for _, it := range j.Items {
			if !plan.InsidePrefix(root, maxNested, it.DstRepo) {
				return fmt.Errorf("image %s would be pushed to %s, outside %s; nothing was pushed", j.Name, it.DstRepo, root)
			}
		}
	}
	return nil
}
