package e2e

import (
	"testing"

	"github.com/ferry-mirror/ferry/internal/testenv"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// verifyImage downloads an image in full and checks every digest, size and
// diff ID: what a pull would trip over.
func verifyImage(t *testing.T, ref string) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatalf("get %s: %v", ref, err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("%s does not validate: %v", ref, err)
	}
}

// verifyIndex checks an index and every image it names, all platforms.
func verifyIndex(t *testing.T, ref string) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(r)
	if err != nil {
		t.Fatalf("get %s: %v", ref, err)
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("%s does not validate: %v", ref, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 {
		t.Errorf("%s lists %d manifests, want 2 platforms", ref, len(im.Manifests))
	}
}

// mediaType is the Content-Type the registry serves a manifest with.
func mediaType(t *testing.T, s *testenv.Server, repo, ref string) string {
	t.Helper()
	accept := "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, " +
		"application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"
	e := do(t, "GET", s.URL+"/v2/"+repo+"/manifests/"+ref, map[string][]string{"Accept": {accept}}, nil)
	if e.Status != 200 {
		t.Fatalf("GET manifest: %v", e)
	}
	return e.Header.Get("Content-Type")
}

// verifyAny verifies an image or an index, whichever ref names.
func verifyAny(t *testing.T, ref string) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Get(r)
	if err != nil {
		t.Fatalf("get %s: %v", ref, err)
	}
	if d.MediaType.IsIndex() {
		idx, err := d.ImageIndex()
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Index(idx); err != nil {
			t.Errorf("%s does not validate: %v", ref, err)
		}
		return
	}
	img, err := d.Image()
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("%s does not validate: %v", ref, err)
	}
}

// imageBlobs lists the digests of an image's config and layers.
func imageBlobs(t *testing.T, img v1.Image) []string {
	t.Helper()
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	out := []string{cfg.String()}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		out = append(out, digestOf(t, l))
	}
	return out
}

// indexBlobs lists the config and layer digests of every image in idx.
func indexBlobs(t *testing.T, idx v1.ImageIndex) []string {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, imageBlobs(t, img)...)
	}
	return out
}
