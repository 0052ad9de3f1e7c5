package registry

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/ferry-mirror/ferry/internal/oci"
)

// The distribution spec's own patterns for names and tags, as written in
// the spec: the hand-written validators must agree with them exactly.
var (
	specName = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	specTag  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

func FuzzName(f *testing.F) {
	for _, s := range []string{"library/ubuntu", "a..b", "a/../b", "A", "a__b", "a___b", "a--b-c", "a.-b", "", "/", "a/", "a//b",
		"quay.io/x", strings.Repeat("a", 256), "ocp/release-images", "a_b.c-d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := specName.MatchString(s) && len(s) <= maxNameLength
		if got := validName(s); got != want {
			t.Fatalf("validName(%q) = %v, the spec's pattern says %v", s, got, want)
		}
		if got := validTag(s); got != specTag.MatchString(s) {
			t.Fatalf("validTag(%q) = %v, the spec's pattern says %v", s, got, !got)
		}
		// Routing never panics and never yields an empty reference.
		for _, p := range []string{"/v2/" + s, "/v2/" + s + "/manifests/x", "/v2/a/blobs/" + s, "/v2/" + s + "/blobs/uploads/" + s} {
			if rt, ok := parseRoute(p); ok && (rt.kind == "manifest" || rt.kind == "blob" || rt.kind == "referrers") && rt.ref == "" {
				t.Fatalf("parseRoute(%q) = %+v: empty reference", p, rt)
			}
		}
	})
}

func TestParseRoute(t *testing.T) {
	for path, want := range map[string]route{
		"/v2/":                               {kind: "base"},
		"/v2/_catalog":                       {kind: "catalog"},
		"/v2/a/b/tags/list":                  {kind: "tags", name: "a/b"},
		"/v2/a/manifests/b/manifests/latest": {kind: "manifest", name: "a/manifests/b", ref: "latest"},
		"/v2/a/manifests/x/blobs/sha256:1":   {kind: "blob", name: "a/manifests/x", ref: "sha256:1"},
		"/v2/blobs/blobs/uploads/":           {kind: "uploads", name: "blobs"},
		"/v2/x/blobs/uploads/abc":            {kind: "upload", name: "x", ref: "abc"},
		"/v2/x/referrers/sha256:1":           {kind: "referrers", name: "x", ref: "sha256:1"},
	} {
		got, ok := parseRoute(path)
		if !ok || got != want {
			t.Errorf("parseRoute(%q) = %+v, %v; want %+v", path, got, ok, want)
		}
	}
	for _, path := range []string{"/v1/x", "/v2/x/manifests/", "/v2/x/unknown"} {
		if rt, ok := parseRoute(path); ok {
			t.Errorf("parseRoute(%q) = %+v, want no route", path, rt)
		}
	}
}

func FuzzContentRange(f *testing.F) {
	for _, s := range []string{"0-9", "bytes 0-9/10", "bytes=5-5", "10-9", "-1-5", "9223372036854775807-9223372036854775807", "a-b", "", "0-", "1-2-3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, end, ok := parseContentRange(s)
		if ok && (start < 0 || end < start) {
			t.Fatalf("parseContentRange(%q) = %d, %d: not a range", s, start, end)
		}
	})
}

func TestContentRange(t *testing.T) {
	for in, want := range map[string][3]int64{"0-9": {0, 9, 1}, "bytes 10-19/*": {10, 19, 1}, "bytes=3-3": {3, 3, 1}, "9-3": {0, 0, 0}, "x": {0, 0, 0}} {
		s, e, ok := parseContentRange(in)
		if ok != (want[2] == 1) || ok && (s != want[0] || e != want[1]) {
			t.Errorf("parseContentRange(%q) = %d, %d, %v; want %v", in, s, e, ok, want)
		}
	}
}

func FuzzManifest(f *testing.F) {
	cfg := `{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}`
	for _, s := range []string{
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` + cfg + `,"layers":[]}`,
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` + cfg + `]}`,
		`{"schemaVersion":2,"config":` + cfg + `,"layers":[` + cfg + `],"subject":` + cfg + `}`,
		`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}`,
		`{"schemaVersion":1}`, `null`, `{`, `{"schemaVersion":2,"config":{"digest":"sha256:zz"}}`,
	} {
		f.Add([]byte(s), "")
		f.Add([]byte(s), "application/vnd.docker.distribution.manifest.v2+json")
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		m, err := parseManifest(body, contentType)
		if err != nil {
			return
		}
		// Whatever is accepted is JSON of a supported type with valid digests.
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		switch m.MediaType {
		case oci.MediaTypeImageManifest, oci.MediaTypeDockerManifest, oci.MediaTypeImageIndex, oci.MediaTypeDockerList:
		default:
			t.Fatalf("accepted media type %q", m.MediaType)
		}
		for _, d := range append(append(m.Blobs, m.Children...), m.Subject) {
			if d == "" { // no subject
				continue
			}
			if err := d.Validate(); err != nil {
				t.Fatalf("accepted digest %q: %v", d, err)
			}
		}
	})
}
