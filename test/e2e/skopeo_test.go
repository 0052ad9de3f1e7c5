package e2e

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestSkopeoCopyAllPreserveDigests copies a Docker manifest list with every
// platform from a third-party registry into the registry under test, as a
// mirror admin does, and checks both sides have the same digests.
func TestSkopeoCopyAllPreserveDigests(t *testing.T) {
	upstream := testenv.StartDockerRegistry(t)
	reg := startRegistry(t)
	home := t.TempDir()

	idx := seedIndex(t, false, 100)
	pushIndex(t, upstream.Host+"/library/app:1.0", idx)
	want := digestOf(t, idx)

	run(t, home, "skopeo", "copy", "--all", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false",
		"docker://"+upstream.Host+"/library/app:1.0", "docker://"+reg.Host+"/mirror/library/app:1.0")

	if got := remoteDigest(t, reg.Host+"/mirror/library/app:1.0"); got != want {
		t.Fatalf("manifest list digest in the mirror %s, upstream %s", got, want)
	}
	// Every platform, and every blob, is there and intact by digest.
	verifyIndex(t, reg.Host+"/mirror/library/app@"+want)
	if got := mediaType(t, reg, "mirror/library/app", "1.0"); got != "application/vnd.docker.distribution.manifest.list.v2+json" {
		t.Errorf("manifest list served as %q", got)
	}
}

// TestSkopeoOCIArchiveRoundTrip exports an image to an oci-archive and
// imports it under another name: same digest after the round trip.
func TestSkopeoOCIArchiveRoundTrip(t *testing.T) {
	reg := startRegistry(t)
	home := t.TempDir()
	img := seedImage(t, true, 200, 201, "amd64")
	pushImage(t, reg.Host+"/src/app:v1", img)
	want := digestOf(t, img)

	archive := filepath.Join(t.TempDir(), "app.tar")
	run(t, home, "skopeo", "copy", "--src-tls-verify=false", "docker://"+reg.Host+"/src/app:v1", "oci-archive:"+archive+":app:v1")
	run(t, home, "skopeo", "copy", "--dest-tls-verify=false", "oci-archive:"+archive+":app:v1", "docker://"+reg.Host+"/restored/app:v1")

	if got := remoteDigest(t, reg.Host+"/restored/app:v1"); got != want {
		t.Fatalf("after the oci-archive round trip the digest is %s, was %s", got, want)
	}
	verifyImage(t, reg.Host+"/restored/app:v1")
}

// TestSkopeoSync syncs every tag of a repository, all platforms, digests
// preserved.
func TestSkopeoSync(t *testing.T) {
	upstream := testenv.StartDockerRegistry(t)
	reg := startRegistry(t)
	home := t.TempDir()

	want := map[string]string{}
	for i, tag := range []string{"1.0", "1.1", "latest"} {
		idx := seedIndex(t, false, 300+uint64(10*i))
		pushIndex(t, upstream.Host+"/team/tool:"+tag, idx)
		want[tag] = digestOf(t, idx)
	}
	plain := seedImage(t, true, 300, 399, "amd64")
	pushImage(t, upstream.Host+"/team/tool:single", plain)
	want["single"] = digestOf(t, plain)

	run(t, home, "skopeo", "sync", "--all", "--preserve-digests", "--src", "docker", "--dest", "docker",
		"--src-tls-verify=false", "--dest-tls-verify=false", upstream.Host+"/team/tool", reg.Host+"/synced")

	got := tags(t, reg, "synced/tool")
	slices.Sort(got)
	if !slices.Equal(got, []string{"1.0", "1.1", "latest", "single"}) {
		t.Fatalf("tags after sync %v, want 1.0 1.1 latest single", got)
	}
	for tag, d := range want {
		if g := remoteDigest(t, reg.Host+"/synced/tool:"+tag); g != d {
			t.Errorf("tag %s: digest %s in the mirror, %s upstream", tag, g, d)
		}
	}
	verifyIndex(t, reg.Host+"/synced/tool:1.1")
}

// TestSkopeoDelete deletes an image by tag: the manifest is gone by tag and
// by digest, and other repositories sharing its blobs keep working.
func TestSkopeoDelete(t *testing.T) {
	reg := startRegistry(t)
	home := t.TempDir()
	img := seedImage(t, false, 400, 401, "amd64")
	pushImage(t, reg.Host+"/del/app:v1", img)
	pushImage(t, reg.Host+"/keep/app:v1", img)
	d := digestOf(t, img)

	run(t, home, "skopeo", "delete", "--tls-verify=false", "docker://"+reg.Host+"/del/app:v1")

	for _, ref := range []string{"v1", d} {
		if e := do(t, "HEAD", reg.URL+"/v2/del/app/manifests/"+ref, nil, nil); e.Status != 404 {
			t.Errorf("after skopeo delete, HEAD manifest %s: %v, want 404", ref, e)
		}
	}
	if got := tags(t, reg, "del/app"); slices.Contains(got, "v1") {
		t.Errorf("deleted tag still listed: %v", got)
	}
	if _, err := runErr(t, home, nil, "skopeo", "inspect", "--tls-verify=false", "docker://"+reg.Host+"/del/app:v1"); err == nil {
		t.Error("skopeo inspect of the deleted image succeeded")
	}
	verifyImage(t, reg.Host+"/keep/app:v1")
	out := run(t, home, "skopeo", "inspect", "--tls-verify=false", "docker://"+reg.Host+"/keep/app:v1")
	if !strings.Contains(out, d) {
		t.Errorf("skopeo inspect of the other repository does not show %s:\n%s", d, out)
	}
}
