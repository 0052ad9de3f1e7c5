package plan

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/transfer"
)

// StoreIndex is StoreImage for a generated list: each child image's config
// and every layer not in base's image for the same platform (base nil for
// none) go to dir. It returns the list's manifest and its children's,
// ready for a Generated.
func StoreIndex(idx v1.ImageIndex, base v1.ImageIndex, dir BlobDir) (transfer.Manifest, []transfer.Manifest, error) {
	bases := map[string]v1.Image{}
	if base != nil {
		bm, err := base.IndexManifest()
		if err != nil {
			return transfer.Manifest{}, nil, fmt.Errorf("base list: %w", err)
		}
		for _, d := range bm.Manifests {
			if d.Platform == nil || !d.MediaType.IsImage() {
				continue
			}
			img, err := base.Image(d.Digest)
			if err != nil {
				return transfer.Manifest{}, nil, fmt.Errorf("base list: %w", err)
			}
			bases[d.Platform.String()] = img
		}
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return transfer.Manifest{}, nil, fmt.Errorf("generated list: %w", err)
	}
	var children []transfer.Manifest
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return transfer.Manifest{}, nil, fmt.Errorf("generated list child %s: %w", d.Digest, err)
		}
		var b v1.Image
		if d.Platform != nil {
			b = bases[d.Platform.String()]
		}
		m, err := StoreImage(img, b, dir)
		if err != nil {
			return transfer.Manifest{}, nil, err
		}
		children = append(children, m)
	}
	raw, err := idx.RawManifest()
	if err != nil {
		return transfer.Manifest{}, nil, err
	}
	mt, err := idx.MediaType()
	if err != nil {
		return transfer.Manifest{}, nil, err
	}
	return transfer.Manifest{MediaType: string(mt), Digest: digest.FromBytes(raw), Data: raw}, children, nil
}
