package oci_test

import (
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-mirror/ferry/internal/oci"
)

var (
	cfg   = digest.FromString("config").String()
	layer = digest.FromString("layer").String()
)

func TestDistributable(t *testing.T) {
	urls := []string{"https://mcr.example/layer"}
	for _, c := range []struct {
		name string
		d    ocispec.Descriptor
		want bool
	}{
		{"ordinary layer", ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip}, true},
		{"ordinary layer with urls", ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, URLs: urls}, true},
		{"docker foreign layer with urls", ocispec.Descriptor{MediaType: oci.MediaTypeDockerForeignLayer, URLs: urls}, false},
		{"docker foreign layer without urls", ocispec.Descriptor{MediaType: oci.MediaTypeDockerForeignLayer}, true},
		{"oci non-distributable with urls", ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerNonDistributableGzip, URLs: urls}, false}, //nolint:staticcheck
	} {
		if got := oci.Distributable(c.d); got != c.want {
			t.Errorf("%s: Distributable = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestParseStrict(t *testing.T) {
	image := `{"schemaVersion":2,"mediaType":"` + oci.MediaTypeImageManifest + `","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + cfg + `","size":2},` +
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"` + layer + `","size":5}],"subject":{"mediaType":"` + oci.MediaTypeImageManifest + `","digest":"` + cfg + `","size":2}}`
	m, err := oci.ParseStrict([]byte(image), oci.MediaTypeImageManifest)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Blobs()) != 2 || m.Blobs()[0].Digest.String() != cfg || m.Blobs()[1].Digest.String() != layer || m.Subject == nil || m.ArtifactType != "application/vnd.oci.image.config.v1+json" {
		t.Errorf("parsed %+v", m)
	}
	// podman pushes without a mediaType field: the Content-Type types it.
	noType := `{"schemaVersion":2,"config":{"digest":"` + cfg + `","size":2},"layers":[]}`
	if m, err := oci.ParseStrict([]byte(noType), oci.MediaTypeDockerManifest+"; charset=utf-8"); err != nil || m.MediaType != oci.MediaTypeDockerManifest {
		t.Errorf("untyped manifest: %+v, %v", m, err)
	}
	if m, err := oci.ParseStrict([]byte(`{"schemaVersion":2,"manifests":[]}`), ""); err != nil || m.MediaType != oci.MediaTypeImageIndex {
		t.Errorf("untyped index: %+v, %v", m, err)
	}
	for _, c := range []struct{ name, body, ct, want string }{
		{"not JSON", `{`, "", "not valid JSON"},
		{"schema 1", `{"schemaVersion":1,"fsLayers":[]}`, "", "schemaVersion must be 2"},
		{"type mismatch", image, oci.MediaTypeDockerManifest, "does not match Content-Type"},
		{"no config", `{"schemaVersion":2,"mediaType":"` + oci.MediaTypeImageManifest + `","layers":[]}`, "", "has no config descriptor"},
		{"index with layers", `{"schemaVersion":2,"mediaType":"` + oci.MediaTypeImageIndex + `","manifests":[],"layers":[]}`, "", "must not have config or layers"},
		{"bad layer digest", `{"schemaVersion":2,"config":{"digest":"` + cfg + `","size":2},"layers":[{"digest":"sha256:nope","size":1}]}`, "", "layers[0]: digest"},
		{"unknown algorithm", `{"schemaVersion":2,"manifests":[{"digest":"md5:` + strings.Repeat("a", 32) + `","size":1}]}`, "", "manifests[0]: digest"},
		{"negative size", `{"schemaVersion":2,"config":{"digest":"` + cfg + `","size":-1}}`, "", "config: negative size"},
		{"unknown type", `{"schemaVersion":2,"mediaType":"text/plain"}`, "", `media type "text/plain" is not supported`},
	} {
		if _, err := oci.ParseStrict([]byte(c.body), c.ct); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v; want one saying %q", c.name, err, c.want)
		}
	}
}

func TestParseLenient(t *testing.T) {
	// What a pull accepts and a push does not: Docker schema 1, whose
	// layers have no size, and the draft artifact manifest's blobs.
	schema1 := `{"schemaVersion":1,"fsLayers":[{"blobSum":"` + layer + `"}]}`
	if _, err := oci.ParseStrict([]byte(schema1), oci.MediaTypeDockerSchema1); err == nil {
		t.Error("ParseStrict took a schema 1 manifest")
	}
	m, err := oci.Parse([]byte(schema1), oci.MediaTypeDockerSchema1)
	if err != nil || len(m.Layers) != 1 || m.Layers[0].Digest.String() != layer || m.Layers[0].Size != -1 {
		t.Errorf("schema 1: %+v, %v", m, err)
	}
	artifact := `{"mediaType":"application/vnd.oci.artifact.manifest.v1+json","blobs":[{"digest":"` + layer + `","size":5}]}`
	if m, err := oci.Parse([]byte(artifact), "application/vnd.oci.artifact.manifest.v1+json"); err != nil || len(m.Blobs()) != 1 {
		t.Errorf("artifact manifest: %+v, %v", m, err)
	}
	for _, c := range []struct{ name, body, mt, want string }{
		{"bad child", `{"manifests":[{"digest":"nope"}]}`, oci.MediaTypeImageIndex, `bad manifest digest "nope"`},
		{"bad blob", `{"config":{"digest":"sha256:../../x"}}`, oci.MediaTypeImageManifest, "bad blob digest"},
		{"bad subject", `{"subject":{"digest":"x"}}`, oci.MediaTypeImageManifest, "bad subject digest"},
		{"not JSON", `[`, oci.MediaTypeImageManifest, "not valid JSON"},
	} {
		if _, err := oci.Parse([]byte(c.body), c.mt); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v; want one saying %q", c.name, err, c.want)
		}
	}
}
