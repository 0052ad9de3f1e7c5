package plan

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-mirror/ferry/internal/oci"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// cosignSuffixes are the tags cosign writes next to an image.
var cosignSuffixes = []struct{ kind, suffix string }{
	{"signature", ".sig"}, {"attestation", ".att"}, {"sbom", ".sbom"},
}

// allExtras finds what travels with m and, for a list, with each image
// in it (cosign signs the platform images too when asked to recurse).
// The list's own extras are skipped when it was filtered: they are about
// a digest the mirror will not have.
func (b *Builder) allExtras(ctx context.Context, reg Registry, path string, m transfer.Manifest, own bool) ([]Extra, []transfer.Manifest, error) {
	var digests []digest.Digest
	if own {
		digests = append(digests, m.Digest)
	}
	if m.IsIndex() {
		p, err := m.Parse()
		if err != nil {
			return nil, nil, err
		}
		for _, c := range p.Children {
			digests = append(digests, c.Digest)
		}
	}
	var extras []Extra
	var synth []transfer.Manifest
	for _, d := range digests {
		x, s, err := b.extras(ctx, reg, path, d)
		if err != nil {
			return nil, nil, err
		}
		extras, synth = append(extras, x...), append(synth, s...)
	}
	return extras, synth, nil
}

// extras finds what travels with image d: cosign tags and OCI referrers.
// An image with none is normal.
func (b *Builder) extras(ctx context.Context, reg Registry, path string, d digest.Digest) ([]Extra, []transfer.Manifest, error) {
	base := d.Algorithm().String() + "-" + d.Encoded()
	// The lookups are independent and mostly answered 404: ask at once.
	found := make([]*Extra, len(cosignSuffixes))
	g, gctx := errgroup.WithContext(ctx)
	for i, s := range cosignSuffixes {
		g.Go(func() error {
			x, ok, err := b.tagged(gctx, reg, path, base+s.suffix, s.kind)
			if ok {
				found[i] = &x
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	var out []Extra
	for _, x := range found {
		if x != nil {
			out = append(out, *x)
		}
	}
	// Referrers: the API when the source has it, else the referrers tag
	// schema (an index tagged <alg>-<hex>). Either way the destination
	// gets the tag, so registries without the API can still answer.
	idx, supported, err := reg.Referrers(ctx, path, d)
	if err != nil {
		return nil, nil, err
	}
	if !supported {
		x, ok, err := b.tagged(ctx, reg, path, base, "referrers")
		if err != nil || !ok {
			return out, nil, err
		}
		return append(out, x), nil, nil
	}
	var doc struct {
		Manifests []json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(idx, &doc); err != nil {
		return nil, nil, fmt.Errorf("referrers index of %s: %w", d, err)
	}
	if len(doc.Manifests) == 0 {
		return out, nil, nil
	}
	// Re-encode as a plain index so the bytes are stable across runs.
	data, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeImageIndex, "manifests": doc.Manifests})
	if err != nil {
		return nil, nil, err
	}
	m := transfer.Manifest{MediaType: oci.MediaTypeImageIndex, Digest: digest.FromBytes(data), Data: data}
	if err := b.walk(ctx, reg, path, m); err != nil {
		return nil, nil, fmt.Errorf("referrers of %s: %w", d, err)
	}
	return append(out, Extra{Kind: "referrers", Tag: base, Digest: m.Digest}), []transfer.Manifest{m}, nil
}

// tagged resolves an optional tag and walks it; ok is false when absent.
func (b *Builder) tagged(ctx context.Context, reg Registry, path, tag, kind string) (Extra, bool, error) {
	if has, known := b.hasTag(ctx, reg, path, tag); known && !has {
		return Extra{}, false, nil
	}
	m, err := reg.GetManifest(ctx, path, tag)
	if transfer.IsNotFound(err) {
		return Extra{}, false, nil
	}
	if err != nil {
		return Extra{}, false, fmt.Errorf("%s tag %s: %w", kind, tag, err)
	}
	if kind == "referrers" && !m.IsIndex() {
		return Extra{}, false, nil // an ordinary tag that happens to look like the schema
	}
	if err := b.walk(ctx, reg, path, m); err != nil {
		return Extra{}, false, fmt.Errorf("%s tag %s: %w", kind, tag, err)
	}
	return Extra{Kind: kind, Tag: tag, Digest: m.Digest}, true, nil
}

// ExtraKinds lists the kinds of extras, for reports.
func ExtraKinds(xs []Extra) string {
	var k []string
	for _, x := range xs {
		k = append(k, x.Kind)
	}
	return strings.Join(k, ",")
}

// tagSet is one source repository's tag list, fetched on first use.
type tagSet struct {
	images int // requests naming the repository: the lookups a listing replaces
	once   sync.Once
	tags   map[string]bool // nil when the listing failed or was too long
}

// planTagLookups counts the requests per source repository. Without a
// listing each image costs a lookup per cosign tag plus the referrers
// tag, which bounds how many pages a listing may take before it costs
// more than it saves.
func (b *Builder) planTagLookups(reqs []Request) {
	for _, r := range reqs {
		sr, err := splitRef(r.Name)
		if err != nil {
			continue
		}
		key := sr.repo()
		ts := b.tagSets[key]
		if ts == nil {
			ts = &tagSet{}
			b.tagSets[key] = ts
		}
		ts.images++
	}
}

// hasTag reports whether repository path of reg has tag; known is false
// when the repository could not be listed within budget, and the caller
// asks for the tag itself.
func (b *Builder) hasTag(ctx context.Context, reg Registry, path, tag string) (has, known bool) {
	b.mu.Lock()
	ts := b.tagSets[reg.Host()+"/"+path]
	b.mu.Unlock()
	if ts == nil {
		return false, false
	}
	ts.once.Do(func() {
		tags, complete, err := reg.Tags(ctx, path, ts.images*(len(cosignSuffixes)+1))
		if err != nil || !complete {
			b.Log.Debug("tag listing not used for signature lookups", "repository", reg.Host()+"/"+path, "complete", complete, "error", err)
			return
		}
		ts.tags = make(map[string]bool, len(tags))
		for _, t := range tags {
			ts.tags[t] = true
		}
	})
	if ts.tags == nil {
		return false, false
	}
	return ts.tags[tag], true
}
