package plan

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/transfer"
)

// Generated is an image Ferry builds itself (the update graph image; the
// rebuilt operator catalogs): its manifest exists in no registry and some
// of its blobs only in a BlobDir. The blobs it shares with its base image
// are read from BaseRepo like any source blob. The builder adds it to the
// plan as an Image with Generated set, so every workflow copies it: m2m
// from the BlobDir, m2d into the archive, d2m out of the archive.
type Generated struct {
	Section string
	// Name says what it is, for reports.
	Name string
	// Origin is the source column of its mapping.txt line: the catalog
	// or oci:// folder it was made from, or generated://<repo>@<digest>
	// for an image made from nothing a reference names (the graph image).
	Origin string
	// BaseRepo is host/path of the base image's repository; empty when
	// every blob is in the BlobDir.
	BaseRepo string
	DestRepo string
	DestTag  string
	Manifest transfer.Manifest
	// Children are the image manifests of a generated list (a rebuilt
	// multi-architecture catalog); empty for an image.
	Children []transfer.Manifest
}

// BlobDir is a folder of blobs Ferry made, <dir>/sha256/<hex>, written
// through a temporary file so a name always holds complete content.
type BlobDir string

func (d BlobDir) path(dg digest.Digest) string {
	return filepath.Join(string(d), dg.Algorithm().String(), dg.Encoded())
}

// Open returns blob dg and its size; fs.ErrNotExist when absent.
func (d BlobDir) Open(dg digest.Digest) (io.ReadCloser, int64, error) {
	if err := dg.Validate(); err != nil {
		return nil, 0, err
	}
	f, err := os.Open(d.path(dg))
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// Put stores r as blob dg, checking the digest.
func (d BlobDir) Put(dg digest.Digest, r io.Reader) error {
	p := d.path(dg)
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	v := dg.Verifier()
	_, err = io.Copy(io.MultiWriter(tmp, v), r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store generated blob %s: %w", dg, err)
	}
	if !v.Verified() {
		return fmt.Errorf("store generated blob %s: content does not match its digest", dg)
	}
	return os.Rename(tmp.Name(), p)
}

// StoreImage writes img's config and every layer not in base (nil for
// none) to dir and returns img's manifest, ready for a Generated.
func StoreImage(img v1.Image, base v1.Image, dir BlobDir) (transfer.Manifest, error) {
	have := map[v1.Hash]bool{}
	if base != nil {
		ls, err := base.Layers()
		if err != nil {
			return transfer.Manifest{}, fmt.Errorf("base image layers: %w", err)
		}
		for _, l := range ls {
			h, err := l.Digest()
			if err != nil {
				return transfer.Manifest{}, err
			}
			have[h] = true
		}
	}
	raw, err := img.RawManifest()
	if err != nil {
		return transfer.Manifest{}, fmt.Errorf("generated image manifest: %w", err)
	}
	mt, err := img.MediaType()
	if err != nil {
		return transfer.Manifest{}, err
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return transfer.Manifest{}, err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return transfer.Manifest{}, fmt.Errorf("generated image config: %w", err)
	}
	if err := dir.Put(digest.Digest(cfgName.String()), bytes.NewReader(cfg)); err != nil {
		return transfer.Manifest{}, err
	}
	ls, err := img.Layers()
	if err != nil {
		return transfer.Manifest{}, fmt.Errorf("generated image layers: %w", err)
	}
	for _, l := range ls {
		h, err := l.Digest()
		if err != nil {
			return transfer.Manifest{}, fmt.Errorf("generated layer: %w", err)
		}
		if have[h] {
			continue
		}
		rc, err := l.Compressed()
		if err != nil {
			return transfer.Manifest{}, fmt.Errorf("generated layer %s: %w", h, err)
		}
		err = dir.Put(digest.Digest(h.String()), rc)
		rc.Close()
		if err != nil {
			return transfer.Manifest{}, err
		}
	}
	return transfer.Manifest{MediaType: string(mt), Digest: digest.FromBytes(raw), Data: raw}, nil
}

// addGenerated puts g in the plan: its manifest, its blobs and an image.
func (b *Builder) addGenerated(p *Plan, g Generated) error {
	pm, err := g.Manifest.Parse()
	if err != nil {
		return fmt.Errorf("%s: %w", g.Name, err)
	}
	if len(pm.Children) != len(g.Children) {
		return errors.New(g.Name + ": a generated manifest list needs each of its children")
	}
	for _, m := range append([]transfer.Manifest{g.Manifest}, g.Children...) {
		pm, err := m.Parse()
		if err != nil {
			return fmt.Errorf("%s: %w", g.Name, err)
		}
		b.mu.Lock() // images already streamed read manifests meanwhile
		b.manifests[m.Digest] = m
		for _, bl := range pm.Blobs() {
			b.blobs[bl.Digest] = bl.Size
		}
		b.mu.Unlock()
		p.Synthesized = append(p.Synthesized, m)
	}
	p.Images = append(p.Images, Image{
		Section: g.Section, Source: g.Name, SourceRepo: g.BaseRepo, SourceDigest: g.Manifest.Digest,
		Digest: g.Manifest.Digest, MediaType: g.Manifest.MediaType, DestRepo: g.DestRepo, DestTag: g.DestTag, Generated: true, Origin: g.Origin,
	})
	return nil
}
