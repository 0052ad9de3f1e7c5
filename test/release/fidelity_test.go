package release_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/ferry-mirror/ferry/internal/fixtures"
	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestOCMirrorFidelity mirrors the platform configurations where oc-mirror
// v2's behaviour is the reference, and checks the releases that land
// against what the graph (and the payloads' coreos-bootimages) imply.
func TestOCMirrorFidelity(t *testing.T) {
	up := startUpstream(t)
	dst := testenv.StartFerry(t, testenv.FerryOptions{})
	g16, eus := up.graph(t, "stable-4.16"), up.graph(t, "eus-4.16")
	v16, veus := g16.versions(), eus.versions()
	head16 := v16[len(v16)-1]

	// maxVersion alone runs from the channel's lowest release.
	t.Run("max-only", func(t *testing.T) {
		want := g16.inRange(v16[0], "4.16.3")
		t.Logf("graph implies %v", want)
		mirrorOut(t, up, dst.Host, "fid-max", "  platform:\n    channels:\n    - name: stable-4.16\n      maxVersion: 4.16.3\n")
		up.assertReleases(t, dst.Host, "fid-max", want, false)
	})

	// Bounds that are no release of the channel only limit the range.
	t.Run("bounds-outside-channel", func(t *testing.T) {
		for _, v := range []string{"4.16.0", "4.16.9"} {
			if len(g16.inRange(v, v)) != 0 {
				t.Fatalf("fixture: %s must not be in stable-4.16", v)
			}
		}
		want := g16.inRange("4.16.0", "4.16.3")
		mirrorOut(t, up, dst.Host, "fid-bounds", "  platform:\n    channels:\n    - name: stable-4.16\n      minVersion: 4.16.0\n      maxVersion: 4.16.3\n")
		up.assertReleases(t, dst.Host, "fid-bounds", want, false)
		want = g16.inRange("4.16.4", "4.16.9")
		mirrorOut(t, up, dst.Host, "fid-bounds-max", "  platform:\n    channels:\n    - name: stable-4.16\n      minVersion: 4.16.4\n      maxVersion: 4.16.9\n")
		up.assertReleases(t, dst.Host, "fid-bounds-max", want, false)
	})

	// shortestPath inside one channel with no path keeps both ends and
	// warns, as the cross-channel case does.
	t.Run("shortest-path-none-in-channel", func(t *testing.T) {
		from, to := veus[0], veus[len(veus)-1]
		if eus.hasPath(from, to) {
			t.Fatalf("fixture: eus-4.16 must have no path %s -> %s", from, to)
		}
		out, _ := mirrorOut(t, up, dst.Host, "fid-nopath", fmt.Sprintf("  platform:\n    channels:\n    - name: eus-4.16\n      minVersion: %s\n      maxVersion: %s\n      shortestPath: true\n", from, to))
		up.assertReleases(t, dst.Host, "fid-nopath", []string{from, to}, false)
		if !regexp.MustCompile(`level=WARN msg="no upgrade path; mirroring both ends only" channel=eus-4.16 from=` + regexp.QuoteMeta(from) + ` to=` + regexp.QuoteMeta(to)).MatchString(out) {
			t.Errorf("no warning about the missing path:\n%s", out)
		}
	})

	// platform.release mirrors that one release; channels are ignored.
	t.Run("release-ignores-channels", func(t *testing.T) {
		r, _ := up.u.ReleaseFor("4.16.2", "x86_64")
		out, _ := mirrorOut(t, up, dst.Host, "fid-ref", "  platform:\n    release: "+r.Image.ByTag()+"\n    channels:\n    - name: stable-4.16\n      full: true\n")
		up.assertReleases(t, dst.Host, "fid-ref", []string{"4.16.2"}, false)
		if !strings.Contains(out, "channels are ignored") {
			t.Errorf("no warning that channels are ignored:\n%s", out)
		}
	})

	// graph: true with no channels builds and mirrors the graph image,
	// registry to registry and through an archive.
	t.Run("graph-only", func(t *testing.T) {
		_, ws := mirrorOut(t, up, dst.Host, "fid-graph", "  platform:\n    graph: true\n", "--graph-base-image", up.u.Additional[0].ByTag())
		assertGraphOnly(t, dst.Host, "fid-graph", filepath.Join(ws, "working-dir", "cluster-resources"))
	})
	t.Run("graph-only-archive", func(t *testing.T) {
		cfg := testenv.WriteImageSetConfig(t, "  platform:\n    graph: true\n")
		archive := t.TempDir()
		if out, code := ferry(t, up.env(), "mirror", "-c", cfg, "file://"+archive, "--src-tls-verify=false", "--graph-base-image", up.u.Additional[0].ByTag()); code != 0 {
			t.Fatalf("m2d exit %d:\n%s", code, out)
		}
		if out, code := ferry(t, up.env(), "mirror", "-c", cfg, "--from", "file://"+archive, "docker://"+dst.Host+"/fid-graph-d2m", "--dest-tls-verify=false"); code != 0 {
			t.Fatalf("d2m exit %d:\n%s", code, out)
		}
		assertGraphOnly(t, dst.Host, "fid-graph-d2m", filepath.Join(archive, "working-dir", "cluster-resources"))
	})

	// platforms selects the multi payload, as oc-mirror does; its lists
	// keep their digests, so every platform in them is copied.
	t.Run("platforms", func(t *testing.T) {
		out, _ := mirrorOut(t, up, dst.Host, "fid-platforms", "  platform:\n    platforms:\n    - os: linux\n      architecture: arm64\n    channels:\n    - name: stable-4.16\n")
		up.assertArchReleases(t, dst.Host, "fid-platforms", "multi", []string{head16}, false)
		if got := testenv.Tags(t, dst.Host, "fid-platforms/openshift/release-images"); len(got) != 1 {
			t.Errorf("release images %v, want only the multi payload", got)
		}
		if !strings.Contains(out, "mirrored with every platform it holds") {
			t.Errorf("no notice that every platform is mirrored:\n%s", out)
		}
	})

	// The payloads' coreos-bootimages carry an x86_64 KubeVirt image, an
	// aarch64 entry with none, and an s390x placeholder that is no valid
	// reference: each asked-for architecture without a usable image is
	// skipped with a warning, and the release still mirrors.
	r, _ := up.u.ReleaseFor(head16, "x86_64")
	if r.KubeVirt == "" || fixtures.KubeVirtPlaceholder == "" {
		t.Fatal("fixture: the release names no KubeVirt image")
	}
	t.Run("kubevirt-x86_64-beside-placeholder", func(t *testing.T) {
		out, _ := mirrorOut(t, up, dst.Host, "fid-kv", "  platform:\n    kubeVirtContainer: true\n    channels:\n    - name: stable-4.16\n")
		up.assertMirrored(t, dst.Host, "fid-kv", "x86_64", []string{head16}, "kube-virt-container")
		if strings.Contains(out, "KubeVirt container skipped") {
			t.Errorf("warning about an architecture not asked for:\n%s", out)
		}
	})
	t.Run("kubevirt-platforms-without-image", func(t *testing.T) {
		out, _ := mirrorOut(t, up, dst.Host, "fid-kv-platforms", "  platform:\n    kubeVirtContainer: true\n    platforms:\n    - os: linux\n      architecture: amd64\n    - os: linux\n      architecture: arm64\n    channels:\n    - name: stable-4.16\n")
		up.assertMirrored(t, dst.Host, "fid-kv-platforms", "multi", []string{head16}, "kube-virt-container-x86_64")
		if !regexp.MustCompile(`level=WARN msg="KubeVirt container skipped; the release is mirrored without it" release=` + regexp.QuoteMeta(head16) + ` arch=aarch64 reason=".*names no KubeVirt container for aarch64"`).MatchString(out) {
			t.Errorf("no warning that aarch64 has no KubeVirt image:\n%s", out)
		}
	})
	t.Run("kubevirt-multi-placeholder", func(t *testing.T) {
		out, _ := mirrorOut(t, up, dst.Host, "fid-kv-multi", "  platform:\n    kubeVirtContainer: true\n    architectures: [multi]\n    channels:\n    - name: stable-4.16\n")
		up.assertMirrored(t, dst.Host, "fid-kv-multi", "multi", []string{head16}, "kube-virt-container-x86_64")
		if !regexp.MustCompile(`level=WARN msg="KubeVirt container skipped; the release is mirrored without it" release=`+regexp.QuoteMeta(head16)+` arch=s390x reason=.*not a reference by digest`).MatchString(out) ||
			!strings.Contains(out, fixtures.KubeVirtPlaceholder) {
			t.Errorf("no warning naming the s390x placeholder:\n%s", out)
		}
	})
}

// mirrorOut mirrors a platform section to host/prefix, fails the test
// unless it succeeds, and returns the output and the workspace.
func mirrorOut(t *testing.T, up *upstream, host, prefix, platform string, args ...string) (string, string) {
	t.Helper()
	cfg := testenv.WriteImageSetConfig(t, platform)
	ws := t.TempDir()
	out, code := ferry(t, up.env(), append([]string{"mirror", "-c", cfg, "--workspace", "file://" + ws,
		fmt.Sprintf("docker://%s/%s", host, prefix), "--src-tls-verify=false", "--dest-tls-verify=false"}, args...)...)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	return out, ws
}

// assertGraphOnly checks that prefix on host holds the graph image that
// updateService.yaml in dir names, and no release.
func assertGraphOnly(t *testing.T, host, prefix, dir string) {
	t.Helper()
	if got := testenv.Tags(t, host, prefix+"/openshift/release-images"); len(got) != 0 {
		t.Errorf("release images mirrored with no channel: %v", got)
	}
	data, err := os.ReadFile(filepath.Join(dir, "updateService.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var us struct {
		Spec struct {
			GraphDataImage string `json:"graphDataImage"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &us); err != nil {
		t.Fatal(err)
	}
	repo, d, ok := strings.Cut(strings.TrimPrefix(us.Spec.GraphDataImage, host+"/"), "@")
	if !ok || repo != prefix+"/openshift/graph-image" || headDigest(t, host, repo, d) != d {
		t.Errorf("graph image %q is not present at the mirror", us.Spec.GraphDataImage)
	}
	if got := headDigest(t, host, prefix+"/openshift/graph-image", "latest"); got != d {
		t.Errorf("graph-image:latest is %q, want %s", got, d)
	}
}
