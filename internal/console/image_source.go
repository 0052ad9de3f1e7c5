package console

import (
	"context"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/store"
)

// storedImage is an image manifest of the registry's stores seen as a
// go-containerregistry image, so the release and catalog readers can read
// its files without a round trip through HTTP.
type storedImage struct {
	ctx  context.Context
	c    *Console
	repo string
	m    *store.Manifest
}

func (c *Console) v1Image(ctx context.Context, repo string, m *store.Manifest) (v1.Image, error) {
	return partial.CompressedToImage(&storedImage{ctx: ctx, c: c, repo: repo, m: m})
}

func (s *storedImage) RawManifest() ([]byte, error) { return s.m.Content, nil }

func (s *storedImage) MediaType() (types.MediaType, error) {
	return types.MediaType(s.m.MediaType), nil
}

func (s *storedImage) RawConfigFile() ([]byte, error) {
	d, err := parseManifest(s.m)
	if err != nil {
		return nil, err
	}
	if d.Config == nil {
		return nil, fmt.Errorf("%s@%s has no config", s.repo, s.m.Digest)
	}
	return s.c.readBlob(s.ctx, s.repo, d.Config.Digest, 8<<20)
}

func (s *storedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	d, err := parseManifest(s.m)
	if err != nil {
		return nil, err
	}
	for _, l := range d.Layers {
		if l.Digest == h.String() {
			return &storedLayer{img: s, desc: l}, nil
		}
	}
	if d.Config != nil && d.Config.Digest == h.String() {
		return &storedLayer{img: s, desc: *d.Config}, nil
	}
	return nil, fmt.Errorf("%s@%s has no layer %s", s.repo, s.m.Digest, h)
}

type storedLayer struct {
	img  *storedImage
	desc descriptor
}

func (l *storedLayer) Digest() (v1.Hash, error) { return v1.NewHash(l.desc.Digest) }
func (l *storedLayer) Size() (int64, error)     { return l.desc.Size, nil }
func (l *storedLayer) MediaType() (types.MediaType, error) {
	return types.MediaType(l.desc.MediaType), nil
}

func (l *storedLayer) Compressed() (io.ReadCloser, error) {
	d, err := digest.Parse(l.desc.Digest)
	if err != nil {
		return nil, err
	}
	// Only a blob linked in the image's repository, as a pull would.
	if _, err := l.img.c.meta.BlobLink(l.img.ctx, l.img.repo, d); err != nil {
		return nil, fmt.Errorf("layer %s of %s: %w", d, l.img.repo, err)
	}
	b, err := l.img.c.blobs.Open(l.img.ctx, d)
	if err != nil {
		return nil, fmt.Errorf("layer %s of %s: %w", d, l.img.repo, err)
	}
	return b, nil
}
