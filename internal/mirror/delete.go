package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	"sigs.k8s.io/yaml"

	"github.com/ferry-mirror/ferry/internal/imageset"
	"github.com/ferry-mirror/ferry/internal/oci"
	"github.com/ferry-mirror/ferry/internal/plan"
	"github.com/ferry-mirror/ferry/internal/release"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// DeleteOptions are the inputs of `ferry mirror delete`. Options.ConfigPath
// is the DeleteImageSetConfiguration (with Generate), Options.Dir the
// workspace holding working-dir, Options.Dest the destination root.
type DeleteOptions struct {
	Options
	Generate bool
	// DeleteYAML is the DeleteImageList to delete (default
	// <Dir>/working-dir/delete/delete-images.yaml).
	DeleteYAML       string
	DeleteID         string
	DeleteSignatures bool
}

// DeleteImageList is oc-mirror v2's delete-images.yaml.
type DeleteImageList struct {
	Kind       string       `json:"kind"`
	APIVersion string       `json:"apiVersion"`
	Items      []DeleteItem `json:"items"`
}

// DeleteItem is one manifest to delete: ImageName is its source,
// ImageReference docker://<destination reference>, Type oc-mirror's
// image type (ocpRelease, ocpReleaseContent, operatorBundle,
// operatorRelatedImage, generic, helmImage).
type DeleteItem struct {
	ImageName      string `json:"imageName"`
	ImageReference string `json:"imageReference"`
	Type           string `json:"type"`
}

const (
	deleteDir        = "delete"
	deleteImagesYAML = "delete-images.yaml"
	deleteISCYAML    = "delete-imageset-config.yaml"
	kindDeleteList   = "DeleteImageList"
)

// deleteFileName adds --delete-id to a file name as oc-mirror does:
// delete-images-<id>.yaml.
func deleteFileName(name, id string) string {
	if id == "" {
		return name
	}
	ext := filepath.Ext(name)
	return strings.TrimSuffix(name, ext) + "-" + id + ext
}

func (o *DeleteOptions) open() (*run, func(), error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.ParallelImages < 1 {
		o.ParallelImages = 4
	}
	if o.ParallelLayers < 1 {
		o.ParallelLayers = 1
	}
	r := &run{o: o.Options, started: time.Now(), stamp: time.Now().UTC().Format("20060102_150405"), stats: &transfer.Stats{}}
	r.workDir = filepath.Join(o.Dir, workingDir)
	r.logsDir = filepath.Join(r.workDir, "logs")
	if err := os.MkdirAll(r.logsDir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("create working directory: %w", err)
	}
	name := "ferry-delete.log"
	if o.LogName != "" {
		name = strings.ReplaceAll(o.LogName, "{time}", r.stamp)
	}
	lf, err := os.OpenFile(filepath.Join(r.logsDir, name), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("open log file: %w", err)
	}
	r.log = slog.New(slog.NewMultiHandler(o.Logger.Handler(), slog.NewJSONHandler(lf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	return r, func() { lf.Close() }, nil
}

// GenerateDelete resolves a DeleteImageSetConfiguration as the mirror
// would resolve it and writes working-dir/delete/delete-images.yaml, a
// copy of the configuration and a summary. Nothing is deleted.
func GenerateDelete(ctx context.Context, o DeleteOptions) error {
	if o.ConfigPath == "" {
		return errors.New("--config (-c) is required with --generate: the DeleteImageSetConfiguration naming what to delete")
	}
	dcfg, err := imageset.LoadDelete(o.ConfigPath)
	if err != nil {
		return err
	}
	// Signatures are not fetched: a delete needs the references only.
	o.IgnoreReleaseSignature = true
	r, closeLog, err := o.open()
	if err != nil {
		return err
	}
	defer closeLog()
	d := dcfg.Delete
	r.cfg = &imageset.ImageSetConfiguration{APIVersion: dcfg.APIVersion, Kind: imageset.KindImageSetConfiguration,
		Mirror: imageset.Mirror{Platform: d.Platform, Operators: d.Operators, AdditionalImages: d.AdditionalImages, Helm: d.Helm}}
	pl, err := r.newPlanner(ctx)
	if err != nil {
		return err
	}
	r.log.Info("resolving what to delete", "requests", len(pl.reqs))
	p, err := pl.b.Build(ctx, pl.reqs)
	if err != nil {
		return fmt.Errorf("resolve the images to delete: %w", err)
	}
	list := DeleteImageList{Kind: kindDeleteList, APIVersion: imageset.APIVersion}
	seen := map[string]bool{}
	add := func(it DeleteItem) {
		if !seen[it.ImageReference] {
			seen[it.ImageReference] = true
			list.Items = append(list.Items, it)
		}
	}
	counts := map[string]int{}
	for _, im := range p.Images {
		typ := deleteType(im, pl.ops)
		if typ == "" { // catalogs and images Ferry built stay: other bundles and clusters use them
			continue
		}
		counts[typ]++
		add(DeleteItem{ImageName: "docker://" + im.Source, ImageReference: "docker://" + im.DestRef(o.Dest, o.MaxNestedPaths), Type: typ})
		if o.DeleteSignatures {
			for _, e := range im.Extras {
				if e.Kind == "signature" {
					add(DeleteItem{ImageName: "docker://" + im.SourceRepo + ":" + e.Tag,
						ImageReference: "docker://" + plan.DestPath(o.Dest, im.DestRepo, o.MaxNestedPaths) + ":" + e.Tag, Type: typ})
				}
			}
		}
	}
	sort.SliceStable(list.Items, func(i, j int) bool { return list.Items[i].ImageReference < list.Items[j].ImageReference })
	dir := filepath.Join(r.workDir, deleteDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data, err := yaml.Marshal(list)
	if err != nil {
		return err
	}
	out := filepath.Join(dir, deleteFileName(deleteImagesYAML, o.DeleteID))
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	iscData, err := os.ReadFile(o.ConfigPath)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, deleteFileName(deleteISCYAML, o.DeleteID)), iscData, 0o644)
	}
	if err != nil {
		return fmt.Errorf("copy the delete configuration: %w", err)
	}
	var sum strings.Builder
	fmt.Fprintf(&sum, "delete plan for docker://%s: %d manifests", o.Dest, len(list.Items))
	var kinds []string
	for k, n := range counts {
		kinds = append(kinds, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(kinds)
	if len(kinds) > 0 {
		fmt.Fprintf(&sum, " (%s)", strings.Join(kinds, ", "))
	}
	fmt.Fprintf(&sum, "\n")
	for _, m := range p.Missing {
		fmt.Fprintf(&sum, "not resolved, left out: [%s] %s: %s\n", m.Section, m.Source, m.Reason)
	}
	for _, it := range list.Items {
		fmt.Fprintf(&sum, "  %-22s %s\n", it.Type, strings.TrimPrefix(it.ImageReference, "docker://"))
	}
	fmt.Fprintf(&sum, "nothing was deleted; review %s, then run delete with --delete-yaml-file %s docker://%s\n", out, out, o.Dest)
	summary := filepath.Join(dir, deleteFileName("delete-summary.txt", o.DeleteID))
	if err := os.WriteFile(summary, []byte(sum.String()), 0o644); err != nil {
		return err
	}
	fmt.Fprint(o.Out, sum.String())
	return nil
}

// deleteType is oc-mirror's image type of a planned image, or "" for an
// image a delete leaves alone.
func deleteType(im plan.Image, ops *plan.Operators) string {
	if im.Generated {
		return ""
	}
	switch im.Section {
	case plan.SectionRelease:
		if strings.HasSuffix(im.DestRepo, release.ReleaseImagesRepo) {
			return "ocpRelease"
		}
		return "ocpReleaseContent"
	case plan.SectionOperator:
		if ops == nil || len(ops.Users[im.Source]) == 0 {
			return "" // the catalog itself: the bundles that stay are in it
		}
		for _, u := range ops.Users[im.Source] {
			if u.IsBundle {
				return "operatorBundle"
			}
		}
		return "operatorRelatedImage"
	case plan.SectionAdditional:
		return "generic"
	case plan.SectionHelm:
		return "helmImage"
	}
	return ""
}

// ReadDeleteList reads a delete-images.yaml strictly.
func ReadDeleteList(path string) (*DeleteImageList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read delete file: %w (make it with delete --generate)", err)
	}
	var l DeleteImageList
	if err := yaml.UnmarshalStrict(data, &l); err != nil {
		return nil, fmt.Errorf("delete file %s does not parse: %v; expected a DeleteImageList as delete --generate writes it", path, err)
	}
	if l.Kind != kindDeleteList {
		return nil, fmt.Errorf("delete file %s: kind is %q, expected %s (a DeleteImageSetConfiguration goes to delete --generate -c)", path, l.Kind, kindDeleteList)
	}
	for i, it := range l.Items {
		if !strings.HasPrefix(it.ImageReference, dockerScheme) {
			return nil, fmt.Errorf("delete file %s: item %d: imageReference %q must start with docker://", path, i+1, it.ImageReference)
		}
	}
	return &l, nil
}

// target is one manifest the delete resolved at the destination.
type target struct {
	item   DeleteItem
	repo   string // path under the host
	ref    string // tag or digest as the file names it
	byTag  bool
	digest digest.Digest
	isIdx  bool
	kids   []digest.Digest
}

type repoDigest struct {
	repo string
	d    digest.Digest
}

// Delete deletes the manifests a DeleteImageList names from the
// destination, keeping those the workspace's history says another image
// set still uses.
func Delete(ctx context.Context, o DeleteOptions) error {
	if o.DeleteYAML == "" {
		if o.Dir == "" {
			return errors.New("give --delete-yaml-file <file> (written by delete --generate), or --workspace file://<dir> holding working-dir/delete/delete-images.yaml")
		}
		o.DeleteYAML = filepath.Join(o.Dir, workingDir, deleteDir, deleteFileName(deleteImagesYAML, o.DeleteID))
	}
	list, err := ReadDeleteList(o.DeleteYAML)
	if err != nil {
		return err
	}
	if o.Dir == "" {
		// <W>/working-dir/delete/delete-images.yaml: W is the workspace.
		dd := filepath.Dir(o.DeleteYAML)
		if filepath.Base(dd) == deleteDir && filepath.Base(filepath.Dir(dd)) == workingDir {
			o.Dir = filepath.Dir(filepath.Dir(dd))
		} else {
			o.Dir = dd
		}
		if o.Dir, err = filepath.Abs(o.Dir); err != nil {
			return err
		}
	}
	host, _, _ := strings.Cut(o.Dest, "/")
	var targets []*target
	var bad []string
	for _, it := range list.Items {
		ref := strings.TrimPrefix(it.ImageReference, dockerScheme)
		if !strings.HasPrefix(ref, o.Dest+"/") {
			bad = append(bad, fmt.Sprintf("%s is not under docker://%s", it.ImageReference, o.Dest))
			continue
		}
		t := &target{item: it}
		rest := strings.TrimPrefix(ref, host+"/")
		if i := strings.Index(rest, "@"); i >= 0 {
			t.repo, t.ref = rest[:i], rest[i+1:]
			if _, err := digest.Parse(t.ref); err != nil {
				bad = append(bad, fmt.Sprintf("%s: %v", it.ImageReference, err))
				continue
			}
		} else if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
			t.repo, t.ref, t.byTag = rest[:i], rest[i+1:], true
		} else {
			bad = append(bad, fmt.Sprintf("%s names neither a tag nor a digest", it.ImageReference))
			continue
		}
		targets = append(targets, t)
	}
	if len(bad) > 0 {
		return fmt.Errorf("delete file %s does not match the destination; nothing was deleted:\n  %s", o.DeleteYAML, strings.Join(bad, "\n  "))
	}
	r, closeLog, err := o.open()
	if err != nil {
		return err
	}
	defer closeLog()
	dst, err := r.destination(ctx)
	if err != nil {
		return err
	}
	// Resolve everything before deleting anything, so a file that does
	// not fit the destination deletes nothing.
	var absent []string
	for _, t := range targets {
		desc, found, err := dst.HeadManifest(ctx, t.repo, t.ref)
		if err != nil {
			return fmt.Errorf("look up %s: %w; nothing was deleted", t.item.ImageReference, err)
		}
		if !found {
			absent = append(absent, strings.TrimPrefix(t.item.ImageReference, dockerScheme))
			continue
		}
		t.digest = desc.Digest
		if desc.Digest == "" || desc.MediaType == oci.MediaTypeImageIndex || desc.MediaType == oci.MediaTypeDockerList {
			m, err := dst.GetManifest(ctx, t.repo, t.ref)
			if err != nil {
				return fmt.Errorf("read %s: %w; nothing was deleted", t.item.ImageReference, err)
			}
			t.digest, t.isIdx = m.Digest, m.IsIndex()
			if t.isIdx {
				t.kids = indexChildren(m.Data)
			}
		}
	}
	if len(absent) > 0 {
		return fmt.Errorf("%d of the %d images in %s are not in docker://%s, so the file does not describe this destination (or a delete already ran); nothing was deleted. Remove these lines from the file, or generate it again:\n  %s",
			len(absent), len(targets), o.DeleteYAML, o.Dest, strings.Join(absent, "\n  "))
	}
	keep, err := stillUsed(r.workDir, targets)
	if err != nil {
		return err
	}
	if l, err := loadMirrored(r.workDir); err == nil && len(l.Runs) == 0 {
		fmt.Fprintf(o.Out, "note: %s has no record of what was mirrored (%s, written by Ferry's m2m and d2m), so no manifest is kept for other image sets; give the workspace the images were mirrored with\n", r.workDir, mirroredFile)
	}
	rep := deleteReport{}
	deletedRefs := map[string]bool{}
	gone := map[repoDigest]bool{}
	goneBlobs := map[digest.Digest]int64{}
	var children []repoDigest
	for _, t := range targets {
		full := host + "/" + t.repo
		name := strings.TrimPrefix(t.item.ImageReference, dockerScheme)
		if why, ok := keep[repoDigest{full, t.digest}]; ok && why != name {
			if !t.byTag {
				rep.kept = append(rep.kept, fmt.Sprintf("%s: kept, still used by %s", name, why))
				continue
			}
			// The tag goes; the manifest stays for what still uses it.
			if o.DryRun {
				rep.tags = append(rep.tags, fmt.Sprintf("%s: would remove the tag only; %s is still used by %s", name, t.digest, why))
				continue
			}
			if err := dst.DeleteManifest(ctx, t.repo, t.ref); err != nil {
				rep.failed = append(rep.failed, fmt.Sprintf("%s: %s (manifest %s kept: still used by %s)", name, refusal(err), t.digest, why))
				continue
			}
			deletedRefs[name] = true
			rep.tags = append(rep.tags, fmt.Sprintf("%s: tag removed; manifest %s kept, still used by %s", name, t.digest, why))
			continue
		}
		if why, ok := keep[repoDigest{full, t.digest}]; ok && why == name {
			rep.kept = append(rep.kept, fmt.Sprintf("%s: kept, still needed by %s", name, keepReason(r.workDir, name, targets)))
			continue
		}
		if gone[repoDigest{full, t.digest}] {
			deletedRefs[name] = true
			continue // another tag of the same manifest, deleted with it
		}
		if o.DryRun {
			rep.deleted = append(rep.deleted, name+" (dry run)")
			gone[repoDigest{full, t.digest}] = true
			continue
		}
		blobs := map[digest.Digest]int64{}
		if err := blobsOf(ctx, dst, t.repo, t.digest.String(), blobs); err != nil {
			r.log.Warn("read the manifest's blobs for the gc estimate", "image", name, "error", err)
		}
		if err := dst.DeleteManifest(ctx, t.repo, t.digest.String()); err != nil {
			rep.failed = append(rep.failed, fmt.Sprintf("%s: %s", name, refusal(err)))
			continue
		}
		gone[repoDigest{full, t.digest}] = true
		deletedRefs[name] = true
		rep.deleted = append(rep.deleted, name)
		maps.Copy(goneBlobs, blobs)
		for _, k := range t.kids {
			children = append(children, repoDigest{full, k})
		}
	}
	// An index's platform manifests go with it, unless something kept uses them.
	for _, c := range children {
		if _, ok := keep[c]; ok || gone[c] {
			continue
		}
		_, repo, _ := strings.Cut(c.repo, "/")
		if err := dst.DeleteManifest(ctx, repo, c.d.String()); err != nil && !transfer.IsNotFound(err) {
			rep.failed = append(rep.failed, fmt.Sprintf("%s@%s: %s", c.repo, c.d, refusal(err)))
			continue
		}
		gone[c] = true
		rep.children++
	}
	if !o.DryRun && len(deletedRefs) > 0 {
		var done []mirroredImage
		for ref := range deletedRefs {
			done = append(done, mirroredImage{Ref: ref})
		}
		sort.Slice(done, func(i, j int) bool { return done[i].Ref < done[j].Ref })
		if err := appendMirrored(r.workDir, mirroredRun{Time: time.Now().UTC(), Config: o.DeleteYAML, Deleted: true, Images: done}); err != nil {
			r.log.Warn("record the delete", "error", err)
		}
	}
	est := int64(-1)
	if len(goneBlobs) > 0 {
		est = estimateFreed(ctx, dst, r.workDir, host, goneBlobs)
	}
	return rep.write(o, r, est)
}

// refusal explains a failed DELETE, naming registries that do not allow it.
func refusal(err error) string {
	var he *transfer.HTTPError
	if errors.As(err, &he) && (he.Status == http.StatusMethodNotAllowed || he.Code == "UNSUPPORTED") {
		return fmt.Sprintf("the registry refuses to delete manifests (%d %s); enable deletes on it (distribution: REGISTRY_STORAGE_DELETE_ENABLED=true; ferry serve: without --read-only)", he.Status, he.Code)
	}
	return err.Error()
}

// stillUsed maps each (repository, digest) that an image set in the
// workspace's history still needs after this delete to the reference
// that needs it.
func stillUsed(workDir string, targets []*target) (map[repoDigest]string, error) {
	l, err := loadMirrored(workDir)
	if err != nil {
		return nil, err
	}
	present := map[string]mirroredImage{}
	var order []string
	for _, run := range l.Runs {
		for _, im := range run.Images {
			if run.Deleted {
				delete(present, im.Ref)
				continue
			}
			if _, ok := present[im.Ref]; !ok {
				order = append(order, im.Ref)
			}
			present[im.Ref] = mergeImage(present[im.Ref], im)
		}
	}
	deleting := map[string]bool{}
	for _, t := range targets {
		deleting[strings.TrimPrefix(t.item.ImageReference, dockerScheme)] = true
	}
	bundles := map[string]bool{} // bundles whose own image is being deleted
	for ref, im := range present {
		if deleting[ref] && im.Bundle != "" {
			bundles[im.Bundle] = true
		}
	}
	keep := map[repoDigest]string{}
	for _, ref := range order {
		im, ok := present[ref]
		if !ok {
			continue
		}
		why := ref
		if deleting[ref] {
			// Named by the delete: kept only for a bundle that stays.
			user := ""
			for _, u := range im.Users {
				if !bundles[u] {
					user = u
					break
				}
			}
			if user == "" {
				continue
			}
		}
		rd := repoDigest{im.repo(), im.Digest}
		if _, ok := keep[rd]; !ok {
			keep[rd] = why
		}
		for _, c := range im.Children {
			if _, ok := keep[repoDigest{im.repo(), c}]; !ok {
				keep[repoDigest{im.repo(), c}] = why
			}
		}
	}
	return keep, nil
}

// keepReason names the bundles that still need an image the delete names.
func keepReason(workDir, ref string, targets []*target) string {
	l, err := loadMirrored(workDir)
	if err != nil {
		return "an image set that stays"
	}
	var users []string
	for _, run := range l.Runs {
		for _, im := range run.Images {
			if im.Ref == ref {
				users = append(users, im.Users...)
			}
		}
	}
	deleting := map[string]bool{}
	for _, t := range targets {
		deleting[strings.TrimPrefix(t.item.ImageReference, dockerScheme)] = true
	}
	var stay []string
	seen := map[string]bool{}
	for _, u := range users {
		if !seen[u] && !bundleDeleted(l, u, deleting) {
			seen[u] = true
			stay = append(stay, u)
		}
	}
	if len(stay) == 0 {
		return "an image set that stays"
	}
	return "bundle " + strings.Join(stay, ", ")
}

func bundleDeleted(l *mirroredLog, bundle string, deleting map[string]bool) bool {
	for _, run := range l.Runs {
		for _, im := range run.Images {
			if im.Bundle == bundle && deleting[im.Ref] {
				return true
			}
		}
	}
	return false
}

func mergeImage(a, b mirroredImage) mirroredImage {
	if a.Ref == "" {
		return b
	}
	seen := map[string]bool{}
	for _, u := range a.Users {
		seen[u] = true
	}
	for _, u := range b.Users {
		if !seen[u] {
			a.Users = append(a.Users, u)
		}
	}
	if b.Bundle != "" {
		a.Bundle = b.Bundle
	}
	a.Digest, a.Children = b.Digest, b.Children
	return a
}

// blobsOf returns the blobs (config and layers) of repo@ref and of the
// manifests it lists, with their sizes.
func blobsOf(ctx context.Context, dst *transfer.Client, repo, ref string, into map[digest.Digest]int64) error {
	m, err := dst.GetManifest(ctx, repo, ref)
	if err != nil {
		return err
	}
	if m.IsIndex() {
		for _, k := range indexChildren(m.Data) {
			if err := blobsOf(ctx, dst, repo, k.String(), into); err != nil {
				return err
			}
		}
		return nil
	}
	var doc struct {
		Config struct {
			Digest digest.Digest `json:"digest"`
			Size   int64         `json:"size"`
		} `json:"config"`
		Layers []struct {
			Digest digest.Digest `json:"digest"`
			Size   int64         `json:"size"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(m.Data, &doc); err != nil {
		return fmt.Errorf("manifest %s@%s: %w", repo, ref, err)
	}
	if doc.Config.Digest != "" {
		into[doc.Config.Digest] = doc.Config.Size
	}
	for _, l := range doc.Layers {
		into[l.Digest] = l.Size
	}
	return nil
}

// estimateFreed is the size of the blobs of the deleted manifests
// (goneBlobs) that no image still recorded in the workspace uses: what
// `ferry gc` frees on a Ferry destination, unless images from outside
// this workspace share them. -1 when it cannot be worked out.
func estimateFreed(ctx context.Context, dst *transfer.Client, workDir, host string, goneBlobs map[digest.Digest]int64) int64 {
	l, err := loadMirrored(workDir)
	if err != nil {
		return -1
	}
	present := map[string]bool{}
	for _, run := range l.Runs {
		for _, im := range run.Images {
			present[im.Ref] = !run.Deleted
		}
	}
	used := map[digest.Digest]int64{}
	for ref, ok := range present {
		if !ok {
			continue
		}
		rest := strings.TrimPrefix(ref, host+"/")
		repo := refRepo(rest)
		tagOrDigest := strings.TrimPrefix(strings.TrimPrefix(rest, repo), ":")
		tagOrDigest = strings.TrimPrefix(tagOrDigest, "@")
		if err := blobsOf(ctx, dst, repo, tagOrDigest, used); err != nil && !transfer.IsNotFound(err) {
			return -1
		}
	}
	var n int64
	for d, size := range goneBlobs {
		if _, ok := used[d]; !ok {
			n += size
		}
	}
	return n
}

type deleteReport struct {
	deleted, tags, kept, failed []string
	children                    int
}

func (rep deleteReport) write(o DeleteOptions, r *run, freed int64) error {
	w := o.Out
	var b strings.Builder
	verb := "deleted"
	if o.DryRun {
		verb = "would delete"
	}
	fmt.Fprintf(&b, "%s %d manifests", verb, len(rep.deleted))
	if rep.children > 0 {
		fmt.Fprintf(&b, " (and %d platform manifests of deleted indexes)", rep.children)
	}
	fmt.Fprintf(&b, " from docker://%s; %d tags removed with their manifest kept; %d kept; %d failed\n", o.Dest, len(rep.tags), len(rep.kept), len(rep.failed))
	for _, s := range rep.deleted {
		fmt.Fprintf(&b, "  deleted   %s\n", s)
	}
	for _, s := range rep.tags {
		fmt.Fprintf(&b, "  untagged  %s\n", s)
	}
	for _, s := range rep.kept {
		fmt.Fprintf(&b, "  kept      %s\n", s)
	}
	for _, s := range rep.failed {
		fmt.Fprintf(&b, "  failed    %s\n", s)
	}
	if !o.DryRun && len(rep.deleted) > 0 {
		if freed >= 0 {
			fmt.Fprintf(&b, "on a Ferry registry, `ferry gc` will free about %s (%d bytes) that no image of this workspace uses any more; `ferry gc --dry-run` on the registry shows the exact figure\n", transfer.FormatBytes(freed), freed)
		} else {
			fmt.Fprintf(&b, "the space is freed by the registry's garbage collector: `ferry gc` on a Ferry registry (`ferry gc --dry-run` shows how much it will free)\n")
		}
	}
	fmt.Fprint(w, b.String())
	if len(rep.failed) > 0 {
		report := filepath.Join(r.logsDir, "delete_errors_"+r.stamp+".txt")
		_ = os.WriteFile(report, []byte(strings.Join(rep.failed, "\n")+"\n"), 0o644)
		return &Error{Code: ExitGeneric, Msg: fmt.Sprintf("%d of %d manifests could not be deleted", len(rep.failed), len(rep.failed)+len(rep.deleted)+len(rep.tags)), Report: report}
	}
	return nil
}
