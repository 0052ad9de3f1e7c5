package plan

import (
	"bytes"
	"context"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/transfer"
)

// RemoteImage returns a go-containerregistry view of image m in path on
// reg, reading blobs through Ferry's own client (auth, retries, TLS
// settings), so code that works on v1.Image (release contents, image
// building) needs no second registry client. ctx bounds every read.
func RemoteImage(ctx context.Context, reg Registry, path string, m transfer.Manifest) (v1.Image, error) {
	if m.IsIndex() {
		return nil, fmt.Errorf("%s/%s@%s is a manifest list, not an image", reg.Host(), path, m.Digest)
	}
	return partial.CompressedToImage(&regImage{ctx: ctx, reg: reg, path: path, m: m})
}

// RemoteIndex is RemoteImage for a manifest list or OCI index.
func RemoteIndex(ctx context.Context, reg Registry, path string, m transfer.Manifest) (v1.ImageIndex, error) {
	if !m.IsIndex() {
		return nil, fmt.Errorf("%s/%s@%s is an image, not a manifest list", reg.Host(), path, m.Digest)
	}
	return &regIndex{ctx: ctx, reg: reg, path: path, m: m}, nil
}

type regImage struct {
	ctx  context.Context
	reg  Registry
	path string
	m    transfer.Manifest
}

func (r *regImage) RawManifest() ([]byte, error)        { return r.m.Data, nil }
func (r *regImage) MediaType() (types.MediaType, error) { return types.MediaType(r.m.MediaType), nil }

func (r *regImage) RawConfigFile() ([]byte, error) {
	mf, err := v1.ParseManifest(bytes.NewReader(r.m.Data))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", r.m.Digest, err)
	}
	rc, _, err := r.reg.GetBlob(r.ctx, r.path, digest.Digest(mf.Config.Digest.String()))
	if err != nil {
		return nil, fmt.Errorf("config of %s: %w", r.m.Digest, err)
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, 8<<20))
}

func (r *regImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	mf, err := v1.ParseManifest(bytes.NewReader(r.m.Data))
	if err != nil {
		return nil, err
	}
	for _, l := range append([]v1.Descriptor{mf.Config}, mf.Layers...) {
		if l.Digest == h {
			return &regLayer{img: r, desc: l}, nil
		}
	}
	return nil, fmt.Errorf("blob %s is not in image %s", h, r.m.Digest)
}

type regLayer struct {
	img  *regImage
	desc v1.Descriptor
}

func (l *regLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *regLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *regLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *regLayer) Compressed() (io.ReadCloser, error) {
	rc, _, err := l.img.reg.GetBlob(l.img.ctx, l.img.path, digest.Digest(l.desc.Digest.String()))
	return rc, err
}

type regIndex struct {
	ctx  context.Context
	reg  Registry
	path string
	m    transfer.Manifest
}

func (r *regIndex) MediaType() (types.MediaType, error) { return types.MediaType(r.m.MediaType), nil }
func (r *regIndex) Digest() (v1.Hash, error)            { return v1.NewHash(r.m.Digest.String()) }
func (r *regIndex) Size() (int64, error)                { return int64(len(r.m.Data)), nil }
func (r *regIndex) RawManifest() ([]byte, error)        { return r.m.Data, nil }
func (r *regIndex) IndexManifest() (*v1.IndexManifest, error) {
	return v1.ParseIndexManifest(bytes.NewReader(r.m.Data))
}

func (r *regIndex) child(h v1.Hash) (transfer.Manifest, error) {
	return r.reg.GetManifest(r.ctx, r.path, h.String())
}

func (r *regIndex) Image(h v1.Hash) (v1.Image, error) {
	m, err := r.child(h)
	if err != nil {
		return nil, err
	}
	return RemoteImage(r.ctx, r.reg, r.path, m)
}

func (r *regIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	m, err := r.child(h)
	if err != nil {
		return nil, err
	}
	return RemoteIndex(r.ctx, r.reg, r.path, m)
}
