package plan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-mirror/ferry/internal/imageset"
	"github.com/ferry-mirror/ferry/internal/oci"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// Request is one image a collector wants mirrored.
type Request struct {
	Section    string
	Name       string // image reference as configured
	TargetRepo string // overrides the destination path
	TargetTag  string // overrides the destination tag
	Platforms  []imageset.PlatformSpec
	// Failed, set by a collector that already knows the image cannot be
	// mirrored (a release whose signature does not verify), is the reason
	// the plan lists it as missing.
	Failed string
}

// Collected is what a collector found: the images to resolve against the
// source registries and the images Ferry built, which the plan takes as
// they are.
type Collected struct {
	Requests  []Request
	Generated []Generated
}

// Collector turns one section of the configuration into requests.
type Collector interface {
	Section() string
	Collect(ctx context.Context) (Collected, error)
}

// Additional collects mirror.additionalImages (docker:// already dropped by
// imageset). oci://<folder> names an OCI layout on this host, whose
// image becomes a Generated image with its blobs copied to Blobs (no later
// run can read the folder).
type Additional struct {
	Images []imageset.AdditionalImage
	Blobs  BlobDir
}

// Section implements Collector.
func (*Additional) Section() string { return SectionAdditional }

// Collect implements Collector.
func (a *Additional) Collect(context.Context) (Collected, error) {
	var out Collected
	for _, im := range a.Images {
		if dir, ok := strings.CutPrefix(im.Name, "oci://"); ok {
			g, err := a.layout(dir, im)
			if err != nil {
				return Collected{}, fmt.Errorf("additional image %s: %w", im.Name, err)
			}
			out.Generated = append(out.Generated, g)
			continue
		}
		out.Requests = append(out.Requests, Request{Section: SectionAdditional, Name: im.Name, TargetRepo: im.TargetRepo, TargetTag: im.TargetTag, Platforms: im.Platforms})
	}
	return out, nil
}

// layout reads the one image of an OCI layout folder and stores its blobs.
// It goes to targetRepo, else the folder's name, tagged targetTag, else
// latest, as oc-mirror names oci:// images.
func (a *Additional) layout(dir string, im imageset.AdditionalImage) (Generated, error) {
	if a.Blobs == "" {
		return Generated{}, errors.New("oci:// images need a working directory to keep their blobs")
	}
	si, err := openLayout(dir, nil)
	if err != nil {
		return Generated{}, err
	}
	g := Generated{Section: SectionAdditional, Name: im.Name, Origin: im.Name, DestRepo: si.path, DestTag: si.tag}
	if im.TargetRepo != "" {
		g.DestRepo = strings.Trim(im.TargetRepo, "/")
	}
	if im.TargetTag != "" {
		g.DestTag = im.TargetTag
	}
	if _, err := reference.ParseNormalizedNamed(g.DestRepo + ":" + g.DestTag); err != nil {
		return Generated{}, fmt.Errorf("destination %s:%s is not a valid reference (%w); set targetRepo", g.DestRepo, g.DestTag, err)
	}
	if si.idx == nil {
		g.Manifest, err = StoreImage(si.img, nil, a.Blobs)
		return g, err
	}
	if len(im.Platforms) > 0 {
		return Generated{}, errors.New("platforms cannot filter an image list read from an OCI layout; copy the platforms wanted into the layout (skopeo copy --override-arch) or drop platforms")
	}
	g.Manifest, g.Children, err = StoreIndex(si.idx, nil, a.Blobs)
	return g, err
}

// Builder resolves requests against source registries into a Plan.
type Builder struct {
	Src              Source
	Blocked          []*regexp.Regexp
	RemoveSignatures bool
	// DigestTags tags each image configured by digest alone with
	// DigestTag at the destination, so registries that collect untagged
	// manifests (Quay) keep it.
	DigestTags bool
	Parallel   int
	Log        *slog.Logger
	// Generated are images Ferry built, added to the plan as they are.
	Generated []Generated
	// Resolved, when set, is called from Build's goroutines with each
	// distinct image as soon as it is resolved, so copying can start
	// before the whole plan is known. Generated images are not passed.
	Resolved func(Image)

	mu        sync.Mutex
	manifests map[digest.Digest]transfer.Manifest
	blobs     map[digest.Digest]int64
	// resolved remembers what each host/path@digest resolved to, so an
	// image that several requests name (a component shared by consecutive
	// releases) is looked up once.
	resolved map[string]resolvedImage
	// tagSets caches each source repository's tags, so the signature
	// and referrer tags of its images are looked up in one listing.
	tagSets map[string]*tagSet
	// started holds the keys of the images passed to Resolved.
	started map[string]bool
}

// Manifest returns a manifest the builder has read or made; safe to call
// while Build runs.
func (b *Builder) Manifest(d digest.Digest) (transfer.Manifest, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m, ok := b.manifests[d]
	return m, ok
}

type resolvedImage struct {
	m      transfer.Manifest
	extras []Extra
	synth  []transfer.Manifest
}

// Build resolves every request. Images that cannot be resolved are listed
// in Plan.Missing rather than failing the whole plan. Manifest gives the
// bytes of every manifest it read, for the copy.
func (b *Builder) Build(ctx context.Context, reqs []Request) (*Plan, error) {
	if b.Log == nil {
		b.Log = slog.New(slog.DiscardHandler)
	}
	b.manifests = map[digest.Digest]transfer.Manifest{}
	b.blobs = map[digest.Digest]int64{}
	b.resolved = map[string]resolvedImage{}
	b.tagSets = map[string]*tagSet{}
	b.started = map[string]bool{}
	if !b.RemoveSignatures {
		b.planTagLookups(reqs)
	}
	p := &Plan{}
	type out struct {
		img     *Image
		missing *Missing
		blocked string
		synth   []transfer.Manifest
	}
	outs := make([]out, len(reqs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(b.Parallel, 1))
	for i, r := range reqs {
		if r.Failed != "" {
			outs[i].missing = &Missing{Section: r.Section, Source: r.Name, Reason: r.Failed}
			continue
		}
		g.Go(func() error {
			img, synth, blocked, err := b.resolve(gctx, r)
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case blocked:
				outs[i].blocked = r.Name
			case err != nil:
				b.Log.Warn("image cannot be mirrored", "section", r.Section, "image", r.Name, "error", err)
				outs[i].missing = &Missing{Section: r.Section, Source: r.Name, Reason: err.Error()}
			default:
				if b.DigestTags && img.DestTag == "" {
					img.DestTag = DigestTag(img.Digest)
				}
				outs[i].img, outs[i].synth = img, synth
				b.start(*img)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	synthSeen := map[digest.Digest]bool{}
	for _, o := range outs {
		switch {
		case o.blocked != "":
			p.Blocked = append(p.Blocked, o.blocked)
		case o.missing != nil:
			p.Missing = append(p.Missing, *o.missing)
		case o.img != nil:
			key := o.img.Key()
			if seen[key] {
				continue
			}
			seen[key] = true
			p.Images = append(p.Images, *o.img)
			for _, s := range o.synth {
				if !synthSeen[s.Digest] {
					synthSeen[s.Digest] = true
					p.Synthesized = append(p.Synthesized, s)
				}
			}
		}
	}
	for _, gen := range b.Generated {
		if err := b.addGenerated(p, gen); err != nil {
			return nil, err
		}
	}
	p.finish(b.manifests, b.blobs)
	return p, nil
}

// start hands img to Resolved the first time its key is seen.
func (b *Builder) start(img Image) {
	if b.Resolved == nil {
		return
	}
	b.mu.Lock()
	first := !b.started[img.Key()]
	b.started[img.Key()] = true
	b.mu.Unlock()
	if first {
		b.Resolved(img)
	}
}

// IsBlocked reports whether any blockedImages expression matches name.
func IsBlocked(blocked []*regexp.Regexp, names ...string) bool {
	for _, re := range blocked {
		for _, n := range names {
			if re.MatchString(n) {
				return true
			}
		}
	}
	return false
}

func (b *Builder) resolve(ctx context.Context, r Request) (*Image, []transfer.Manifest, bool, error) {
	sr, err := splitRef(r.Name)
	if err != nil {
		return nil, nil, false, fmt.Errorf("%q is not a valid image reference: %w", r.Name, err)
	}
	host, path, ref := sr.host, sr.path, sr.ref
	if IsBlocked(b.Blocked, r.Name, sr.named.String(), sr.named.Name()) {
		return nil, nil, true, nil
	}
	// A tag and a digest (repo:tag@sha256:...) push under the tag.
	img := &Image{Section: r.Section, Source: sr.named.String(), SourceRepo: sr.repo(), DestRepo: path, DestTag: sr.tag}
	if r.TargetRepo != "" {
		img.DestRepo = r.TargetRepo
	}
	if r.TargetTag != "" {
		img.DestTag = r.TargetTag
	}
	reg, err := b.Src.Registry(host)
	if err != nil {
		return nil, nil, false, err
	}
	key := host + "/" + path + "@" + ref
	b.mu.Lock()
	done, seen := b.resolved[key]
	b.mu.Unlock()
	if seen && len(r.Platforms) == 0 {
		img.SourceDigest, img.Digest, img.MediaType = done.m.Digest, done.m.Digest, done.m.MediaType
		if !b.RemoveSignatures {
			img.Extras = done.extras
		}
		return img, done.synth, false, nil
	}
	m, err := reg.GetManifest(ctx, path, ref)
	if transfer.IsNotFound(err) {
		return nil, nil, false, fmt.Errorf("%s not found in %s", r.Name, host)
	}
	if err != nil {
		return nil, nil, false, err
	}
	img.SourceDigest, img.Digest, img.MediaType = m.Digest, m.Digest, m.MediaType
	var synth []transfer.Manifest
	if len(r.Platforms) > 0 && m.IsIndex() {
		fm, kept, err := filterPlatforms(m, r.Platforms)
		if err != nil {
			return nil, nil, false, fmt.Errorf("%s: %w", r.Name, err)
		}
		if fm.Digest != m.Digest {
			b.Log.Info("manifest list filtered by platform; its digest changes", "image", r.Name, "platforms", kept, "from", m.Digest, "to", fm.Digest)
			m = fm
			img.Digest, img.Filtered = fm.Digest, kept
			synth = append(synth, fm)
		}
	}
	if err := b.walk(ctx, reg, path, m); err != nil {
		return nil, nil, false, fmt.Errorf("%s: %w", r.Name, err)
	}
	if !b.RemoveSignatures {
		extras, s, err := b.allExtras(ctx, reg, path, m, img.Filtered == nil)
		if err != nil {
			return nil, nil, false, fmt.Errorf("%s: signatures and referrers: %w", r.Name, err)
		}
		img.Extras, synth = extras, append(synth, s...)
	}
	if strings.HasPrefix(ref, "sha256:") && img.Filtered == nil {
		b.mu.Lock()
		b.resolved[key] = resolvedImage{m: m, extras: img.Extras, synth: synth}
		b.mu.Unlock()
	}
	return img, synth, false, nil
}

// walk records m, its children and their blobs.
func (b *Builder) walk(ctx context.Context, reg Registry, path string, m transfer.Manifest) error {
	// Parsed before it is recorded: a manifest that does not parse must
	// fail every image that uses it, not just the first.
	p, err := m.Parse()
	if err != nil {
		return err
	}
	b.mu.Lock()
	_, done := b.manifests[m.Digest]
	b.manifests[m.Digest] = m
	b.mu.Unlock()
	if done {
		return nil
	}
	b.mu.Lock()
	for _, bl := range p.Blobs() {
		if oci.Distributable(bl) {
			b.blobs[bl.Digest] = bl.Size
		}
	}
	b.mu.Unlock()
	for _, c := range p.Children {
		b.mu.Lock()
		_, have := b.manifests[c.Digest]
		b.mu.Unlock()
		if have {
			continue
		}
		cm, err := reg.GetManifest(ctx, path, c.Digest.String())
		if err != nil {
			return fmt.Errorf("child manifest %s: %w", c.Digest, err)
		}
		if err := b.walk(ctx, reg, path, cm); err != nil {
			return err
		}
	}
	return nil
}
