package mirror_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// assertMirrored checks what a user checks after a mirror: every image at
// its destination with its upstream digest and every blob, signatures and
// referrers next to it, the filtered list rewritten, nothing blocked.
func assertMirrored(t *testing.T, host, prefix string, u *upstream) {
	t.Helper()
	p := func(repo string) string { return prefix + "/" + repo }
	testenv.AssertDigest(t, host, p("app/alpha"), "1.0", u.Alpha.String())
	testenv.AssertDigest(t, host, p("app/alpha"), sigTag(u.Alpha)+".sig", u.AlphaSig.String())
	testenv.AssertDigest(t, host, p("app/alpha"), u.AlphaSBOM.String(), u.AlphaSBOM.String())
	// The referrers tag travels too, so registries without the referrers
	// API still answer clients that look the SBOM up.
	ref := testenv.GetManifest(t, host, p("app/alpha"), sigTag(u.Alpha))
	if ref.Status != 200 || !strings.Contains(string(ref.Body), u.AlphaSBOM.String()) {
		t.Errorf("referrers tag %s: status %d, body %s; want an index listing %s", sigTag(u.Alpha), ref.Status, ref.Body, u.AlphaSBOM)
	}
	testenv.AssertDigest(t, host, p("multi/list"), "v1", u.List.String())
	testenv.AssertDigest(t, host, p("multi/list"), sigTag(u.ListChild)+".sig", u.ListChildSig.String())
	testenv.AssertDigest(t, host, p("multi/filtered"), sigTag(u.FilteredChild)+".sig", u.FilteredChildSig.String())
	testenv.AssertDigest(t, host, p("multi/oci"), "v2", u.OCIIndex.String())
	testenv.AssertDigest(t, host, p("bydigest/img"), u.ByDigest.String(), u.ByDigest.String())
	testenv.AssertDigest(t, host, p("renamed/dst"), "stable", u.Renamed.String())
	assertAbsent(t, host, p("target/src"), "3")
	assertAbsent(t, host, p("blocked/secret"), "1")
	assertAbsent(t, host, p("blocked/secret"), u.Blocked.String())

	f := testenv.GetManifest(t, host, p("multi/filtered"), "v1")
	if f.Status != 200 || f.Digest == u.Filtered.String() {
		t.Fatalf("multi/filtered:v1: status %d digest %s; want a rewritten list (upstream %s)", f.Status, f.Digest, u.Filtered)
	}
	var doc manifestDoc
	if err := json.Unmarshal(f.Body, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Manifests) != 1 || doc.Manifests[0].Platform == nil || doc.Manifests[0].Platform.Architecture != "amd64" {
		t.Errorf("filtered list holds %s; want only linux/amd64", f.Body)
	}
	testenv.AssertTree(t, host, p("multi/filtered"), f)
}

func TestMirrorToMirror(t *testing.T) {
	for _, d := range destinations() {
		t.Run(d.name, func(t *testing.T) {
			src := testenv.StartDockerRegistry(t)
			u := buildUpstream(t, src.Host)
			dst := d.start(t)
			dir := t.TempDir()
			isc := writeFile(t, filepath.Join(dir, "isc.yaml"), u.isc(""))
			ws := filepath.Join(dir, "ws")
			args := []string{"mirror", "-c", isc, "--workspace", "file://" + ws, "docker://" + dst.Host + "/mirror", "--v2", "--dest-tls-verify=false", "--retry-delay=100ms"}

			out, code := ferry(t, nil, args...)
			if code != 0 {
				t.Fatalf("first run exited %d", code)
			}
			assertMirrored(t, dst.Host, "mirror", u)
			if n := count(t, out, `images: (\d+) copied`); n != 6 {
				t.Errorf("first run copied %d images, want 6", n)
			}
			if n := count(t, out, `missing, (\d+) blocked`); n != 1 {
				t.Errorf("first run blocked %d images, want 1", n)
			}
			// Every image shares one base layer: it is uploaded once, then
			// mounted into the other repositories.
			if n := count(t, out, `(\d+) mounted`); n < 4 {
				t.Errorf("%d blobs mounted, want the shared base layer mounted into at least 4 repositories", n)
			}
			if n := count(t, out, `(\d+) already present \(`); n != 0 {
				t.Errorf("first run into an empty registry says %d blobs were already present, want 0", n)
			}
			if !strings.Contains(out, "digest changed") {
				t.Errorf("output does not say the filtered list's digest changed")
			}
			for _, f := range []string{"cluster-resources/idms-oc-mirror.yaml", "cluster-resources/itms-oc-mirror.yaml", "host-config/registries.conf", "host-config/install-config-snippet.yaml"} {
				if _, err := os.Stat(filepath.Join(ws, "working-dir", f)); err != nil {
					t.Errorf("cluster resource: %v", err)
				}
			}
			assertClusterResources(t, filepath.Join(ws, "working-dir", "cluster-resources"))

			out, code = ferry(t, nil, args...)
			if code != 0 {
				t.Fatalf("second run exited %d", code)
			}
			if n := count(t, out, `images: (\d+) copied`); n != 0 {
				t.Errorf("second run copied %d images, want 0", n)
			}
			if n := count(t, out, `blobs: (\d+) copied`); n != 0 {
				t.Errorf("second run copied %d blobs, want 0", n)
			}
			assertMirrored(t, dst.Host, "mirror", u)
		})
	}
}

// TestRemoveSignatures: with --remove-signatures the images travel alone:
// no cosign tags, no referrers, for lists neither for the platform images.
func TestRemoveSignatures(t *testing.T) {
	src := testenv.StartDockerRegistry(t)
	u := buildUpstream(t, src.Host)
	dst := startFerry(t)
	dir := t.TempDir()
	isc := writeFile(t, filepath.Join(dir, "isc.yaml"), u.isc(""))
	out, code := ferry(t, nil, "mirror", "-c", isc, "--workspace", "file://"+filepath.Join(dir, "ws"), "docker://"+dst.Host+"/mirror",
		"--dest-tls-verify=false", "--remove-signatures")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	testenv.AssertDigest(t, dst.Host, "mirror/app/alpha", "1.0", u.Alpha.String())
	testenv.AssertDigest(t, dst.Host, "mirror/multi/list", "v1", u.List.String())
	assertAbsent(t, dst.Host, "mirror/app/alpha", sigTag(u.Alpha)+".sig")
	assertAbsent(t, dst.Host, "mirror/app/alpha", sigTag(u.Alpha))
	assertAbsent(t, dst.Host, "mirror/app/alpha", u.AlphaSBOM.String())
	assertAbsent(t, dst.Host, "mirror/multi/list", sigTag(u.ListChild)+".sig")
}
