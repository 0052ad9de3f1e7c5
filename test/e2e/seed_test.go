package e2e

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// epoch is the fixed time stamped on seeded content, so every run builds
// the same bytes and the same digests.
var epoch = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// randomBytes returns n bytes that depend only on seed.
func randomBytes(seed uint64, n int) []byte {
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)})
	b := make([]byte, n)
	_, _ = r.Read(b)
	return b
}

// layerFiles is what a seeded layer holds: path -> content.
func layerFiles(seed uint64, size int) map[string][]byte {
	return map[string][]byte{
		fmt.Sprintf("e2e/layer-%d/data.bin", seed): randomBytes(seed, size),
		fmt.Sprintf("e2e/layer-%d/README", seed):   []byte(fmt.Sprintf("ferry e2e layer %d\n", seed)),
	}
}

// seedLayer builds a gzipped tar layer of random content.
func seedLayer(t testing.TB, seed uint64, size int, mt types.MediaType) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := layerFiles(seed, size)
	for _, p := range []string{fmt.Sprintf("e2e/layer-%d/README", seed), fmt.Sprintf("e2e/layer-%d/data.bin", seed)} {
		hdr := &tar.Header{Name: p, Mode: 0o644, Size: int64(len(files[p])), ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(files[p]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(mt))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// seedImage builds a single-platform image: a base layer shared by every
// image with the same baseSeed, and one layer of its own.
func seedImage(t testing.TB, oci bool, baseSeed, ownSeed uint64, arch string) v1.Image {
	t.Helper()
	base := empty.Image
	layerType := types.DockerLayer
	if oci {
		base = mutate.ConfigMediaType(mutate.MediaType(base, types.OCIManifestSchema1), types.OCIConfigJSON)
		layerType = types.OCILayer
	}
	img, err := mutate.AppendLayers(base, seedLayer(t, baseSeed, 1<<20, layerType), seedLayer(t, ownSeed, 256<<10, layerType))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = arch, "linux"
	cfg.Created = v1.Time{Time: epoch}
	cfg.Config.Env = []string{"PATH=/usr/bin:/bin"}
	cfg.Config.Cmd = []string{"/bin/sh"}
	cfg.Config.Labels = map[string]string{"org.ferry.e2e.seed": fmt.Sprint(ownSeed)}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// seedIndex builds a two-platform index (linux/amd64, linux/arm64): a Docker
// manifest list, or an OCI index.
func seedIndex(t testing.TB, oci bool, seed uint64) v1.ImageIndex {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.DockerManifestList)
	if oci {
		idx = empty.Index
	}
	for i, arch := range []string{"amd64", "arm64"} {
		img := seedImage(t, oci, seed, seed+uint64(i)+1, arch)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
	}
	return idx
}

func digestOf(t testing.TB, d interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func pushImage(t testing.TB, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

func pushIndex(t testing.TB, ref string, idx v1.ImageIndex) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// remoteDigest is the digest the registry answers for ref (HEAD, then GET).
func remoteDigest(t testing.TB, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Get(r)
	if err != nil {
		t.Fatalf("get %s: %v", ref, err)
	}
	if got := sha256Digest(d.Manifest); got != d.Digest.String() {
		t.Fatalf("%s: registry says digest %s for a manifest whose sha256 is %s", ref, d.Digest, got)
	}
	return d.Digest.String()
}
