package plan

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-mirror/ferry/internal/transfer"
)

// cosignSuffixes are the tags cosign writes next to an image.
var cosignSuffixes = []struct{ kind, suffix string }{
	{"signature", ".sig"}, {"attestation", ".att"}, {"sbom", ".sbom"},
}

// extras finds what travels with image d: cosign tags and OCI referrers.
// An image with none is normal.
func (b *Builder) extras(ctx context.Context, reg *transfer.Registry, path string, d digest.Digest) ([]Extra, []transfer.Manifest, error) {
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
	data, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": transfer.MediaTypeOCIIndex, "manifests": doc.Manifests})
	if err != nil {
		return nil, nil, err
	}
	m := transfer.Manifest{MediaType: transfer.MediaTypeOCIIndex, Digest: digest.FromBytes(data), Data: data}
	if err := b.walk(ctx, reg, path, m); err != nil {
		return nil, nil, fmt.Errorf("referrers of %s: %w", d, err)
	}
	return append(out, Extra{Kind: "referrers", Tag: base, Digest: m.Digest}), []transfer.Manifest{m}, nil
}

// tagged resolves an optional tag and walks it; ok is false when absent.
func (b *Builder) tagged(ctx context.Context, reg *transfer.Registry, path, tag, kind string) (Extra, bool, error) {
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
