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

	digest "github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/archive"
	"github.com/ferry-mirror/ferry/internal/ocmirror"
	"github.com/ferry-mirror/ferry/internal/plan"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// isOcMirrorArchive reports whether the --from folder holds an archive
// oc-mirror v2 wrote rather than a Ferry one.
func isOcMirrorArchive(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, archive.MetadataFile))
	return errors.Is(err, fs.ErrNotExist) && ocmirror.IsArchive(dir)
}

// pushOcMirrorArchive pushes every manifest of an oc-mirror v2 archive's
// cache to the destination under the same repository paths and tags, as
// oc-mirror's disk to mirror does; blobs a differential archive left out
// must already be at the destination.
func (r *run) pushOcMirrorArchive(ctx context.Context) error {
	a, err := ocmirror.Open(r.o.Dir)
	if err != nil {
		return err
	}
	r.log.Info("oc-mirror v2 archive", "images", len(a.Images), "working_dir_files", a.WorkingDir)
	if err := a.Verify(ctx); err != nil {
		return fmt.Errorf("oc-mirror archive %s failed verification: %w", r.o.Dir, err)
	}
	p := &plan.Plan{}
	for _, im := range a.Images {
		ref := im.Repo + "@" + im.Digest.String()
		if im.Tag != "" {
			ref = im.Repo + ":" + im.Tag
		}
		p.Images = append(p.Images, plan.Image{Section: "archive", Source: ref, SourceRepo: im.Repo, SourceDigest: im.Digest, Digest: im.Digest, DestRepo: im.Repo, DestTag: im.Tag, Generated: true})
	}
	if r.o.DryRun {
		return r.dryRun(p, r.o.Dest)
	}
	dst, err := r.destination(ctx)
	if err != nil {
		return err
	}
	host, _, _ := strings.Cut(r.o.Dest, "/")
	var jobs []transfer.Job
	for _, im := range p.Images {
		dstRepo := strings.TrimPrefix(plan.DestPath(r.o.Dest, im.DestRepo, r.o.MaxNestedPaths), host+"/")
		jobs = append(jobs, transfer.Job{Name: im.Source, Items: []transfer.Item{{SrcRepo: im.SourceRepo, DstRepo: dstRepo, Ref: im.DestTag, Digest: im.Digest}}})
	}
	if err := r.checkOcMirrorComplete(ctx, a, dst, jobs); err != nil {
		return err
	}
	results := r.copy(ctx, r.engine(a, transfer.RegistryDest{R: dst}, nil), p, jobs)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	fmt.Fprintf(r.o.Out, "pushed oc-mirror v2 archive %s; cluster resources are not written from it: oc-mirror's archive does not record the source registries (mirror with Ferry once to get them)\n", r.o.Dir)
	// Generated: the images have no source reference a mirror set could name.
	return r.finish(p, results, false)
}

// checkOcMirrorComplete walks every image of the archive before anything
// is pushed: each manifest must be in the archive, and each blob in the
// archive or already in its destination repository (what a differential
// archive leaves out). Otherwise nothing is pushed.
func (r *run) checkOcMirrorComplete(ctx context.Context, a *ocmirror.Archive, dst *transfer.Client, jobs []transfer.Job) error {
	var missing []string
	seen := map[string]bool{}
	var walk func(repo, dstRepo string, d digest.Digest) error
	walk = func(repo, dstRepo string, d digest.Digest) error {
		if seen[dstRepo+"@"+d.String()] {
			return nil
		}
		seen[dstRepo+"@"+d.String()] = true
		m, err := a.Manifest(ctx, repo, d)
		if err != nil {
			missing = append(missing, err.Error())
			return nil
		}
		var doc struct {
			Manifests []struct {
				Digest digest.Digest `json:"digest"`
			} `json:"manifests"`
			Config *struct {
				Digest digest.Digest `json:"digest"`
			} `json:"config"`
			Layers []struct {
				Digest digest.Digest `json:"digest"`
			} `json:"layers"`
		}
		if err := json.Unmarshal(m.Data, &doc); err != nil {
			return fmt.Errorf("manifest %s@%s: %w", repo, d, err)
		}
		for _, c := range doc.Manifests {
			if err := walk(repo, dstRepo, c.Digest); err != nil {
				return err
			}
		}
		blobs := []digest.Digest{}
		if doc.Config != nil {
			blobs = append(blobs, doc.Config.Digest)
		}
		for _, l := range doc.Layers {
			blobs = append(blobs, l.Digest)
		}
		for _, b := range blobs {
			if a.Has(b) {
				continue
			}
			ok, err := dst.HasBlob(ctx, dstRepo, b)
			if err != nil {
				return err
			}
			if !ok {
				missing = append(missing, fmt.Sprintf("blob %s of %s@%s is neither in the archive nor at the destination", b, repo, d))
			}
		}
		return nil
	}
	for _, j := range jobs {
		it := j.Items[0]
		if err := walk(it.SrcRepo, it.DstRepo, it.Digest); err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		if len(missing) > 10 {
			missing = append(missing[:10], fmt.Sprintf("and %d more", len(missing)-10))
		}
		return fmt.Errorf("oc-mirror archive %s is incomplete (a chunk missing or cut short, or a differential archive whose base was never pushed here); nothing was pushed:\n  %s", r.o.Dir, strings.Join(missing, "\n  "))
	}
	return nil
}
