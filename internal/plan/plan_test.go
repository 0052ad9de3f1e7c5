package plan

import (
	"encoding/json"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/imageset"
	"github.com/ferry-mirror/ferry/internal/oci"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

func TestDestPath(t *testing.T) {
	cases := []struct {
		root, repo string
		max        int
		want       string
	}{
		{"mirror.lan:8443", "openshift/release", 0, "mirror.lan:8443/openshift/release"},
		{"mirror.lan:8443/ocp", "openshift/release", 0, "mirror.lan:8443/ocp/openshift/release"},
		{"mirror.lan/ocp/x", "a/b/c", 2, "mirror.lan/ocp/x-a-b-c"},
		{"mirror.lan/ocp", "a/b/c", 3, "mirror.lan/ocp/a/b-c"},
		{"mirror.lan", "a/b", 3, "mirror.lan/a/b"},
		{"mirror.lan/ocp", "a/b", 1, "mirror.lan/ocp-a-b"},
	}
	for _, c := range cases {
		if got := DestPath(c.root, c.repo, c.max); got != c.want {
			t.Errorf("DestPath(%q, %q, %d) = %q, want %q", c.root, c.repo, c.max, got, c.want)
		}
	}
}

func TestDestRefByDigestWithPort(t *testing.T) {
	// A source by digest from a registry with a port is not a tag.
	d := digest.FromString("x")
	im := Image{DestRepo: "team/app", Digest: d}
	if got, want := im.DestRef("127.0.0.1:5000/m", 0), "127.0.0.1:5000/m/team/app@"+d.String(); got != want {
		t.Errorf("DestRef = %q, want %q", got, want)
	}
}

func list(t *testing.T, archs ...string) transfer.Manifest {
	t.Helper()
	var entries []map[string]any
	for _, a := range archs {
		entries = append(entries, map[string]any{
			"mediaType": oci.MediaTypeDockerManifest, "digest": digest.FromString(a).String(), "size": 10,
			"platform": map[string]string{"os": "linux", "architecture": a},
		})
	}
	data, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeDockerList, "manifests": entries})
	if err != nil {
		t.Fatal(err)
	}
	return transfer.Manifest{MediaType: oci.MediaTypeDockerList, Digest: digest.FromBytes(data), Data: data}
}

func TestFilterPlatforms(t *testing.T) {
	m := list(t, "amd64", "arm64", "s390x")
	got, kept, err := filterPlatforms(m, []imageset.PlatformSpec{{Architecture: "arm64"}, {OS: "linux", Architecture: "s390x"}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest == m.Digest || got.Digest != digest.FromBytes(got.Data) {
		t.Errorf("filtered digest %s: want a new digest matching the new bytes", got.Digest)
	}
	p, err := got.Parse()
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Children) != 2 || strings.Join(kept, ",") != "linux/arm64,linux/s390x" {
		t.Errorf("kept %v (%d entries), want linux/arm64 and linux/s390x", kept, len(p.Children))
	}

	same, _, err := filterPlatforms(m, []imageset.PlatformSpec{{Architecture: "amd64"}, {Architecture: "arm64"}, {Architecture: "s390x"}})
	if err != nil || same.Digest != m.Digest {
		t.Errorf("a filter keeping everything changed the digest (%v)", err)
	}

	_, _, err = filterPlatforms(m, []imageset.PlatformSpec{{Architecture: "ppc64le"}})
	if err == nil || !strings.Contains(err.Error(), "ppc64le") || !strings.Contains(err.Error(), "linux/amd64") {
		t.Errorf("no match: error %v; want it to name the wanted and the available platforms", err)
	}
}

func TestIsBlocked(t *testing.T) {
	blocked := (&imageset.Mirror{BlockedImages: []imageset.BlockedImage{{Name: "^quay.io/bad/"}}}).BlockedPatterns()
	if !IsBlocked(blocked, "quay.io/bad/img:1") || IsBlocked(blocked, "quay.io/good/img:1") {
		t.Error("blockedImages matched the wrong images")
	}
}

func TestDigestTags(t *testing.T) {
	d := digest.Digest("sha256:" + strings.Repeat("ab", 32))
	if got := DigestTag(d); got != "sha256_"+strings.Repeat("ab", 32) {
		t.Errorf("DigestTag = %s", got)
	}
	if got := DigestTag(digest.Digest("sha512:" + strings.Repeat("cd", 64))); len(got) != 128 || got[:7] != "sha512_" {
		t.Errorf("sha512 DigestTag = %s (%d characters; a tag holds 128)", got, len(got))
	}
	p := &Plan{Images: []Image{
		{Source: "q.io/a@" + d.String(), Digest: d},
		{Source: "q.io/b:v1", Digest: d, DestTag: "v1"},
		{Source: "q.io/c@" + d.String(), Digest: d, DestTag: "pinned"}, // targetTag
		{Digest: d, DestTag: "latest", Generated: true},
	}}
	p.SetDigestTags(true)
	want := []string{DigestTag(d), "v1", "pinned", "latest"}
	for i, im := range p.Images {
		if im.DestTag != want[i] {
			t.Errorf("on: image %d tag %q, want %q", i, im.DestTag, want[i])
		}
	}
	p.SetDigestTags(false)
	want[0] = ""
	for i, im := range p.Images {
		if im.DestTag != want[i] {
			t.Errorf("off: image %d tag %q, want %q", i, im.DestTag, want[i])
		}
	}
	if r := p.Images[0].DestRef("m.lan/ocp", 0); r != "m.lan/ocp@"+d.String() {
		t.Errorf("untagged DestRef = %s", r)
	}
}
