package transfer

import (
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/oci"
)

// hostileDigests are "digest" values an upstream has sent in place of
// digests; each must be refused by Parse, never used.
var hostileDigests = []string{
	"nope", "", "sha256:", "sha256:abc", "sha256:" + strings.Repeat("AB", 32),
	"md5:" + strings.Repeat("a", 32), "sha256:../../../v2/_catalog", ":" + strings.Repeat("a", 64),
	"sha256:" + strings.Repeat("a", 64) + "\n", "sha512:" + strings.Repeat("a", 64),
}

// FuzzManifestParse feeds arbitrary manifests, as a registry could send
// them, to the parser the copy engine and the planner use. It must never
// panic, and every digest it hands out must be one go-digest accepts, so
// that using it (Algorithm, Encoded, Verifier) cannot panic either.
func FuzzManifestParse(f *testing.F) {
	good := digest.FromString("x").String()
	types := []string{oci.MediaTypeImageIndex, oci.MediaTypeDockerList, oci.MediaTypeImageManifest, oci.MediaTypeDockerManifest, ""}
	for _, mt := range types {
		f.Add(`{"schemaVersion":2,"manifests":[{"digest":"`+good+`","size":1}]}`, mt)
		f.Add(`{"schemaVersion":2,"config":{"digest":"`+good+`","size":1},"layers":[{"digest":"`+good+`","size":1,"urls":["http://x"],"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"}],"subject":{"digest":"`+good+`"}}`, mt)
		for _, d := range hostileDigests {
			f.Add(`{"schemaVersion":2,"manifests":[{"digest":"`+good+`","size":1},{"digest":"`+d+`","size":1}]}`, mt)
			f.Add(`{"schemaVersion":2,"config":{"digest":"`+d+`"},"layers":[]}`, mt)
			f.Add(`{"schemaVersion":1,"fsLayers":[{"blobSum":"`+d+`"}]}`, mt)
			f.Add(`{"schemaVersion":2,"subject":{"digest":"`+d+`"}}`, mt)
		}
	}
	f.Add(`null`, "")
	f.Add(`{"manifests":null}`, oci.MediaTypeImageIndex)
	f.Add(`{"manifests":[null]}`, oci.MediaTypeImageIndex)
	f.Add(`[`, "")
	f.Fuzz(func(t *testing.T, data, mediaType string) {
		if mediaType == "" {
			mediaType = sniffMediaType([]byte(data))
		}
		m := Manifest{MediaType: mediaType, Digest: digest.FromString(data), Data: []byte(data)}
		_ = m.Descriptor()
		p, err := m.Parse()
		if err != nil {
			return
		}
		check := func(what string, d digest.Digest) {
			if err := d.Validate(); err != nil {
				t.Fatalf("Parse handed out %s digest %q: %v", what, d, err)
			}
			_ = d.Algorithm().String() + d.Encoded()
			_ = d.Verifier()
		}
		for _, c := range p.Children {
			check("child", c.Digest)
		}
		for _, b := range p.Blobs() {
			check("blob", b.Digest)
			_ = !oci.Distributable(b)
		}
		if p.Subject != nil {
			check("subject", p.Subject.Digest)
		}
		if !m.IsIndex() && len(p.Children) > 0 {
			t.Fatalf("an image manifest (%s) has children", m.MediaType)
		}
	})
}
