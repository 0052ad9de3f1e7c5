package plan

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/ferry-mirror/ferry/internal/catalog"
	"github.com/ferry-mirror/ferry/internal/imageset"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// Operators collects mirror.operators: for each catalog, the images its
// kept bundles need (by digest) and the filtered catalog image, rebuilt as
// a Generated image whose new blobs go to Blobs.
type Operators struct {
	Operators []imageset.Operator
	Src       Source
	Blobs     BlobDir
	Log       *slog.Logger

	// generated holds the catalog images built so far by Collect.
	generated []Generated
	// Users maps an image reference to the bundles needing it, so a
	// missing image can be reported with the bundles it breaks.
	Users map[string][]catalog.ImageUser
}

// Section implements Collector.
func (*Operators) Section() string { return SectionOperator }

// Collect implements Collector. A filter that is wrong whatever the
// catalog (a minVersion above the maxVersion) fails the whole section; a
// package the catalog cannot satisfy (unknown, or an unknown channel)
// becomes a failed request naming what the catalog has, and the rest of
// the catalog is mirrored.
func (o *Operators) Collect(ctx context.Context) (Collected, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	o.Users = map[string][]catalog.ImageUser{}
	o.generated = nil
	var reqs []Request
	for _, op := range o.Operators {
		rs, err := o.collectOne(ctx, op)
		if err != nil {
			return Collected{}, err
		}
		reqs = append(reqs, rs...)
	}
	return Collected{Requests: reqs, Generated: o.generated}, nil
}

// sourceImage is a catalog image as read for the run.
type sourceImage struct {
	img      v1.Image
	idx      v1.ImageIndex // set for a multi-architecture catalog; img is then one of its images
	repo     string        // host/path; "" for an OCI layout
	path     string        // repository path the destination defaults to
	tag      string        // tag the destination defaults to
	pinned   string        // the reference, by digest
	fromDisk bool
}

func (o *Operators) collectOne(ctx context.Context, op imageset.Operator) ([]Request, error) {
	si, err := o.open(ctx, op)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", op.Catalog, err)
	}
	f := Filter(op)
	var only []catalog.ReadOption
	if len(f.Packages) > 0 {
		// Read only what the filter can keep: memory for the listed
		// packages, not for the whole catalog.
		names := make([]string, len(f.Packages))
		for i, p := range f.Packages {
			names[i] = p.Name
		}
		only = append(only, catalog.OnlyPackages(names...))
	}
	cat, err := catalog.ReadImage(ctx, op.Catalog, si.img, only...) // its errors name the catalog
	if err != nil {
		return nil, err
	}
	res, err := cat.Filter(f)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", op.Catalog, err)
	}
	for _, w := range res.Warnings {
		o.Log.Warn("catalog filter", "catalog", op.Catalog, "note", w)
	}
	var reqs []Request
	for _, f := range res.Failed {
		o.Log.Warn("catalog package left out", "catalog", op.Catalog, "package", f.Package, "error", f.Err)
		reqs = append(reqs, Request{Section: SectionOperator, Name: op.Catalog + " package " + f.Package, Failed: f.Error()})
	}
	if !res.Unchanged && len(res.Catalog.Packages) == 0 {
		return reqs, nil // every listed package failed: no catalog to serve
	}
	byDigest := 0
	for _, im := range res.Images {
		o.Users[im.Ref] = append(o.Users[im.Ref], im.Users...)
		r := Request{Section: SectionOperator, Name: im.Ref, Platforms: op.Platforms}
		if im.Digest != "" && len(op.Platforms) > 0 {
			// Bundles name this digest: a list cut down to the platforms
			// would get another digest and the bundle could not pull it.
			r.Platforms = nil
			byDigest++
		}
		reqs = append(reqs, r)
	}
	if byDigest > 0 {
		o.Log.Info("platforms do not filter the images bundles name by digest: they are mirrored whole so that digest still resolves", "catalog", op.Catalog, "images", byDigest)
	}
	for _, p := range res.Problems {
		reqs = append(reqs, Request{Section: SectionOperator, Name: p.Ref, Failed: p.Error()})
	}
	destRepo, destTag := si.path, si.tag
	if op.TargetCatalog != "" {
		destRepo = strings.Trim(op.TargetCatalog, "/")
	}
	if op.TargetTag != "" {
		destTag = op.TargetTag
	}
	idx, img := si.idx, si.img
	if !res.Unchanged {
		if idx != nil {
			if idx, err = catalog.RebuildIndex(op.Catalog, si.idx, res.Catalog); err != nil {
				return nil, err
			}
		} else if img, err = catalog.Rebuild(op.Catalog, si.img, res.Catalog); err != nil {
			return nil, err
		}
	}
	m, children, err := o.store(si, idx, img)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", op.Catalog, err)
	}
	if destTag == "" { // a digest source: tagged from the mirrored digest, as oc-mirror does
		destTag = m.Digest.Encoded()
	}
	if _, err := CatalogResourceName(destRepo, destTag); err != nil { // fail now, not after the copy
		return nil, err
	}
	o.generated = append(o.generated, Generated{
		Section: SectionOperator, Name: catalogImageName(op.Catalog, res.Unchanged), Origin: catalogOrigin(op.Catalog), BaseRepo: si.repo,
		DestRepo: destRepo, DestTag: destTag, Manifest: m, Children: children,
	})
	if res.Unchanged {
		o.Log.Info("catalog mirrored unchanged", "catalog", op.Catalog, "source", si.pinned, "bundles", len(res.Catalog.Bundles), "images", len(res.Images), "digest", m.Digest)
	} else {
		o.Log.Info("catalog filtered", "catalog", op.Catalog, "source", si.pinned, "bundles", len(res.Catalog.Bundles), "images", len(res.Images), "rebuilt", m.Digest)
	}
	return reqs, nil
}

// catalogImageName is the plan's Source of the catalog image mirrored for
// an operators entry (a Generated image: rebuilt, or kept as it is).
func catalogImageName(ref string, unchanged bool) string {
	if unchanged {
		return "catalog " + ref + " unchanged"
	}
	return "catalog " + ref + " filtered"
}

// CatalogOf returns the operators[].catalog whose catalog image im is.
func CatalogOf(im Image) (string, bool) {
	if !im.Generated || im.Section != SectionOperator {
		return "", false
	}
	s, ok := strings.CutPrefix(im.Source, "catalog ")
	if !ok {
		return "", false
	}
	for _, suffix := range []string{" filtered", " unchanged"} {
		if ref, ok := strings.CutSuffix(s, suffix); ok {
			return ref, true
		}
	}
	return "", false
}

// store stores the blobs of the catalog image to push (idx for a
// multi-architecture catalog, else img) that its source cannot give: the
// new configs layer and config of a rebuilt catalog; from an OCI layout,
// which no later run can read, every blob. The source catalog itself,
// kept unchanged, is pushed with its own manifest bytes, so its digest.
func (o *Operators) store(si sourceImage, idx v1.ImageIndex, img v1.Image) (transfer.Manifest, []transfer.Manifest, error) {
	if idx != nil {
		base := si.idx
		if si.fromDisk {
			base = nil
		}
		return StoreIndex(idx, base, o.Blobs)
	}
	base := si.img
	if si.fromDisk {
		base = nil
	}
	m, err := StoreImage(img, base, o.Blobs)
	return m, nil, err
}

// catalogOrigin is the configured catalog as a mapping.txt source.
func catalogOrigin(c string) string {
	if strings.HasPrefix(c, "oci://") || strings.HasPrefix(c, "docker://") {
		return c
	}
	return "docker://" + c
}

// CatalogResourceName is the cs-/cc- name as oc-mirror makes it: the
// repository's last component and the first 12 characters of the tag
// (of the digest for a digest tag), as a DNS label.
func CatalogResourceName(repo, tag string) (string, error) {
	return clusterName(repo[strings.LastIndex(repo, "/")+1:] + "-" + tag[:min(len(tag), 12)])
}

func clusterName(s string) (string, error) {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	n := strings.Trim(b.String(), "-")
	n = strings.Trim(n[:min(len(n), 60)], "-")
	if n == "" {
		return "", fmt.Errorf("no cluster resource name can be made from %q", s)
	}
	return n, nil
}

// open reads the catalog image: pinned to its digest from a registry, or
// from an oci:// layout folder.
func (o *Operators) open(ctx context.Context, op imageset.Operator) (sourceImage, error) {
	if dir, ok := strings.CutPrefix(op.Catalog, "oci://"); ok {
		return openLayout(dir, op.Platforms)
	}
	sr, err := splitRef(op.Catalog)
	if err != nil {
		return sourceImage{}, fmt.Errorf("not a valid image reference (use host/path:tag, host/path@sha256:..., or oci://<folder>): %w", err)
	}
	host, path, ref, tag := sr.host, sr.path, sr.ref, sr.tag
	if sr.ref != sr.tag {
		tag = "" // by digest: tagged from the mirrored digest
	}
	reg, err := o.Src.Registry(host)
	if err != nil {
		return sourceImage{}, err
	}
	m, err := reg.GetManifest(ctx, path, ref)
	if transfer.IsNotFound(err) {
		return sourceImage{}, fmt.Errorf("catalog image not found in %s; check the name and tag", host)
	}
	if err != nil {
		return sourceImage{}, err
	}
	si := sourceImage{repo: host + "/" + path, path: path, tag: tag, pinned: host + "/" + path + "@" + m.Digest.String()}
	if m.IsIndex() {
		if si.idx, err = RemoteIndex(ctx, reg, path, m); err != nil {
			return sourceImage{}, err
		}
		si.img, err = pickPlatform(si.idx, op.Platforms)
		return si, err
	}
	si.img, err = RemoteImage(ctx, reg, path, m)
	return si, err
}

func openLayout(dir string, platforms []imageset.PlatformSpec) (sourceImage, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return sourceImage{}, fmt.Errorf("open OCI layout %s: %w (oci:// needs a folder with index.json and oci-layout)", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return sourceImage{}, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return sourceImage{}, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	if len(im.Manifests) != 1 {
		return sourceImage{}, fmt.Errorf("OCI layout %s holds %d images; a catalog layout must hold one", dir, len(im.Manifests))
	}
	d := im.Manifests[0]
	si := sourceImage{path: filepath.Base(filepath.Clean(dir)), tag: "latest", fromDisk: true, pinned: "oci://" + dir}
	if d.MediaType.IsIndex() {
		if si.idx, err = idx.ImageIndex(d.Digest); err != nil {
			return sourceImage{}, fmt.Errorf("OCI layout %s: %w", dir, err)
		}
		si.img, err = pickPlatform(si.idx, platforms)
		return si, err
	}
	si.img, err = idx.Image(d.Digest)
	return si, err
}

// pickPlatform returns the image of a multi-architecture catalog whose
// configs are read: the platforms' first (linux/amd64 by default). Every
// platform's image carries the same configs.
func pickPlatform(idx v1.ImageIndex, platforms []imageset.PlatformSpec) (v1.Image, error) {
	want := v1.Platform{OS: "linux", Architecture: "amd64"}
	if len(platforms) > 0 {
		want = v1.Platform{OS: platforms[0].OS, Architecture: platforms[0].Architecture, Variant: platforms[0].Variant}
		if want.OS == "" {
			want.OS = "linux"
		}
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var have []string
	var first *v1.Descriptor
	for i, d := range im.Manifests {
		if d.Platform == nil || !d.MediaType.IsImage() || d.Platform.OS == "unknown" {
			continue
		}
		if first == nil {
			first = &im.Manifests[i]
		}
		have = append(have, d.Platform.String())
		if d.Platform.OS == want.OS && d.Platform.Architecture == want.Architecture && (want.Variant == "" || d.Platform.Variant == want.Variant) {
			return idx.Image(d.Digest)
		}
	}
	if len(platforms) == 0 && first != nil {
		return idx.Image(first.Digest)
	}
	return nil, fmt.Errorf("catalog has no %s image (it has %s); set platforms on the operators entry", want.String(), strings.Join(have, ", "))
}

// Filter turns an operators entry into the catalog filter.
func Filter(op imageset.Operator) catalog.Filter {
	f := catalog.Filter{Full: op.Full}
	for _, p := range op.Packages {
		pf := catalog.PackageFilter{Name: p.Name, DefaultChannel: p.DefaultChannel, MinVersion: p.MinVersion, MaxVersion: p.MaxVersion}
		for _, c := range p.Channels {
			pf.Channels = append(pf.Channels, catalog.ChannelFilter{Name: c.Name, MinVersion: c.MinVersion, MaxVersion: c.MaxVersion})
		}
		for _, b := range p.Bundles {
			pf.Bundles = append(pf.Bundles, b.Name)
		}
		f.Packages = append(f.Packages, pf)
	}
	return f
}

// ReadCatalog reads the catalog a reference or oci:// path names, for
// `ferry list operators`.
func ReadCatalog(ctx context.Context, src Source, ref string) (*catalog.Catalog, error) {
	o := &Operators{Src: src}
	si, err := o.open(ctx, imageset.Operator{Catalog: ref})
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", ref, err)
	}
	return catalog.ReadImage(ctx, ref, si.img)
}
