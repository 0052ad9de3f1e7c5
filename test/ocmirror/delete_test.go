package ocmirror_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/ferry-mirror/ferry/internal/fixtures"
	"github.com/ferry-mirror/ferry/internal/testenv"
)

// upstream is the synthetic upstream (releases with their graph and
// signatures, catalogs) in Debian's docker-registry.
type upstream struct {
	u   *fixtures.Upstream
	reg *testenv.Server
	env []string
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	up := testenv.StartUpstream(t, fixtures.Options{Seed: 1})
	return &upstream{u: up.Upstream, reg: up.Registry, env: up.Servers.Env(up.KeyFile)}
}

func (up *upstream) release(t *testing.T, version string) fixtures.Release {
	t.Helper()
	for _, r := range up.u.Releases {
		if r.Version == version && r.Arch == "x86_64" {
			return r
		}
	}
	t.Fatalf("fixture has no release %s", version)
	return fixtures.Release{}
}

func (up *upstream) bundle(t *testing.T, catalogTag, pkg, version string) fixtures.Bundle {
	t.Helper()
	for _, c := range up.u.Catalogs {
		if c.Image.Tag != catalogTag {
			continue
		}
		for _, p := range c.Packages {
			for _, b := range p.Bundles {
				if p.Name == pkg && b.Version == version {
					return b
				}
			}
		}
	}
	t.Fatalf("fixture has no bundle %s %s in %s", pkg, version, catalogTag)
	return fixtures.Bundle{}
}

// splitRef cuts host/path@digest into path and digest.
func splitRef(ref string) (repo, dgst string) {
	name, d, _ := strings.Cut(ref, "@")
	_, repo, _ = strings.Cut(name, "/")
	return repo, d
}

// allBlobs returns the blobs of every tagged manifest of the registry.
func allBlobs(t *testing.T, host string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for repo, tags := range catalog(t, host) {
		for _, tag := range tags {
			blobs(t, host, repo, tag, out)
		}
	}
	return out
}

// TestDelete mirrors two releases and two bundles through the oc-mirror
// symlink, then deletes one release and one bundle with delete --generate
// and delete --delete-yaml-file, and checks that exactly their manifests
// went, that what they share with what stays was kept, that gc frees the
// bytes nothing references any more, and that all that is left validates.
func TestDelete(t *testing.T) {
	bin := ocMirror(t)
	up := startUpstream(t)
	dst := testenv.StartFerry(t, testenv.FerryOptions{})
	host := up.reg.Host
	catalogRef := host + "/redhat/redhat-operator-index:v4.16"
	isc := writeFile(t, filepath.Join(t.TempDir(), "isc.yaml"), fmt.Sprintf(`kind: ImageSetConfiguration
apiVersion: mirror.openshift.io/v2alpha1
mirror:
  platform:
    architectures: [amd64]
    channels:
    - name: stable-4.16
      minVersion: 4.16.1
      maxVersion: 4.16.2
  operators:
  - catalog: %s
    packages:
    - name: aws-load-balancer-operator
      channels:
      - name: stable-v1
        minVersion: 1.0.0
        maxVersion: 1.0.1
`, catalogRef))
	disc := writeFile(t, filepath.Join(t.TempDir(), "delete-isc.yaml"), fmt.Sprintf(`kind: DeleteImageSetConfiguration
apiVersion: mirror.openshift.io/v2alpha1
delete:
  platform:
    architectures: [amd64]
    channels:
    - name: stable-4.16
      minVersion: 4.16.1
      maxVersion: 4.16.1
  operators:
  - catalog: %s
    packages:
    - name: aws-load-balancer-operator
      channels:
      - name: stable-v1
        minVersion: 1.0.0
        maxVersion: 1.0.0
`, catalogRef))
	ws := t.TempDir()
	tls := []string{"--src-tls-verify=false", "--dest-tls-verify=false"}
	if _, code := run(t, up.env, bin, append([]string{"-c", isc, "--workspace", "file://" + ws, "docker://" + dst.Host, "--v2"}, tls...)...); code != 0 {
		t.Fatalf("m2m: exit %d, want 0", code)
	}

	// What should go and what should stay, from the upstream's description.
	r1, r2 := up.release(t, "4.16.1"), up.release(t, "4.16.2")
	b1, b2 := up.bundle(t, "v4.16", "aws-load-balancer-operator", "1.0.0"), up.bundle(t, "v4.16", "aws-load-balancer-operator", "1.0.1")
	stays := map[string]bool{}
	for _, c := range r2.Components {
		stays[c.Image.Digest] = true
	}
	for _, ref := range b2.RelatedImages {
		_, d := splitRef(ref)
		stays[d] = true
	}
	var goneComps, sharedComps []string
	for _, c := range r1.Components {
		if stays[c.Image.Digest] {
			sharedComps = append(sharedComps, c.Image.Digest)
		} else {
			goneComps = append(goneComps, c.Image.Digest)
		}
	}
	var goneOps, sharedOps [][2]string
	for _, ref := range append([]string{b1.Image.ByDigest()}, b1.RelatedImages...) {
		repo, d := splitRef(ref)
		if stays[d] {
			sharedOps = append(sharedOps, [2]string{repo, d})
		} else {
			goneOps = append(goneOps, [2]string{repo, d})
		}
	}
	if len(goneComps) == 0 || len(sharedComps) == 0 || len(goneOps) == 0 || len(sharedOps) == 0 {
		t.Fatalf("the fixture must have unique and shared components (%d, %d) and related images (%d, %d)", len(goneComps), len(sharedComps), len(goneOps), len(sharedOps))
	}
	for _, d := range append(goneComps, sharedComps...) {
		if f := testenv.GetManifest(t, dst.Host, "openshift/release", d); f.Status != http.StatusOK {
			t.Fatalf("component %s was not mirrored (status %d)", d, f.Status)
		}
	}
	before := allBlobs(t, dst.Host)

	// Step 1: generate; nothing is deleted.
	out, code := run(t, up.env, bin, append([]string{"delete", "--generate", "-c", disc, "--workspace", "file://" + ws, "docker://" + dst.Host, "--v2"}, tls...)...)
	if code != 0 {
		t.Fatalf("delete --generate: exit %d, want 0", code)
	}
	listFile := filepath.Join(ws, "working-dir", "delete", "delete-images.yaml")
	data, err := os.ReadFile(listFile)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
		Items      []struct {
			ImageName      string `json:"imageName"`
			ImageReference string `json:"imageReference"`
			Type           string `json:"type"`
		} `json:"items"`
	}
	if err := yaml.UnmarshalStrict(data, &list); err != nil {
		t.Fatalf("%s: %v", listFile, err)
	}
	if list.Kind != "DeleteImageList" || list.APIVersion != "mirror.openshift.io/v2alpha1" {
		t.Errorf("%s: kind %q apiVersion %q", listFile, list.Kind, list.APIVersion)
	}
	types := map[string]int{}
	for _, it := range list.Items {
		types[it.Type]++
		if strings.Contains(it.ImageReference, "4.16.2") {
			t.Errorf("the delete list names the release that stays: %s", it.ImageReference)
		}
	}
	if types["ocpRelease"] != 1 || types["ocpReleaseContent"] != len(r1.Components) || types["operatorBundle"] != 1 {
		t.Errorf("delete list types %v, want 1 ocpRelease, %d ocpReleaseContent, 1 operatorBundle", types, len(r1.Components))
	}
	if !strings.Contains(out, "nothing was deleted") {
		t.Errorf("generate does not say nothing was deleted:\n%s", out)
	}
	if f := testenv.GetManifest(t, dst.Host, "openshift/release-images", "4.16.1-x86_64"); f.Status != http.StatusOK {
		t.Fatalf("delete --generate deleted the release (status %d)", f.Status)
	}

	// Step 2: delete what the file names.
	out, code = run(t, nil, bin, "delete", "--delete-yaml-file", listFile, "docker://"+dst.Host, "--v2", "--dest-tls-verify=false")
	if code != 0 {
		t.Fatalf("delete: exit %d, want 0", code)
	}
	if f := testenv.GetManifest(t, dst.Host, "openshift/release-images", "4.16.1-x86_64"); f.Status != http.StatusNotFound {
		t.Errorf("release 4.16.1 still resolves (status %d)", f.Status)
	}
	if f := testenv.GetManifest(t, dst.Host, "openshift/release-images", r1.Image.Digest); f.Status != http.StatusNotFound {
		t.Errorf("release 4.16.1's manifest is still there by digest (status %d)", f.Status)
	}
	if f := testenv.GetManifest(t, dst.Host, "openshift/release-images", "4.16.2-x86_64"); f.Status != http.StatusOK || f.Digest != r2.Image.Digest {
		t.Errorf("release 4.16.2: status %d digest %s, want %s", f.Status, f.Digest, r2.Image.Digest)
	}
	for _, d := range goneComps {
		if f := testenv.GetManifest(t, dst.Host, "openshift/release", d); f.Status != http.StatusNotFound {
			t.Errorf("component %s only 4.16.1 used is still there (status %d)", d, f.Status)
		}
	}
	for _, c := range r2.Components {
		if f := testenv.GetManifest(t, dst.Host, "openshift/release", c.Image.Digest); f.Status != http.StatusOK {
			t.Errorf("component %s of 4.16.2 was deleted (status %d)", c.Name, f.Status)
		}
	}
	for _, tag := range catalog(t, dst.Host)["openshift/release"] {
		if strings.HasPrefix(tag, "4.16.1-") {
			t.Errorf("tag openshift/release:%s of the deleted release is left", tag)
		}
	}
	for _, g := range goneOps {
		if f := testenv.GetManifest(t, dst.Host, g[0], g[1]); f.Status != http.StatusNotFound {
			t.Errorf("%s@%s, only bundle 1.0.0 used, is still there (status %d)", g[0], g[1], f.Status)
		}
	}
	for _, ref := range append([]string{b2.Image.ByDigest()}, b2.RelatedImages...) {
		repo, d := splitRef(ref)
		if f := testenv.GetManifest(t, dst.Host, repo, d); f.Status != http.StatusOK {
			t.Errorf("%s@%s of bundle 1.0.1 was deleted (status %d)", repo, d, f.Status)
		}
	}
	if f := testenv.GetManifest(t, dst.Host, "redhat/redhat-operator-index", "v4.16"); f.Status != http.StatusOK {
		t.Errorf("the catalog was deleted (status %d)", f.Status)
	}
	if !strings.Contains(out, "kept") || !strings.Contains(out, "still used by") {
		t.Errorf("the report does not say what was kept and why:\n%s", out)
	}

	// gc frees exactly the blobs no manifest left uses.
	after := allBlobs(t, dst.Host)
	var want int64
	for d, size := range before {
		if _, ok := after[d]; !ok {
			want += size
		}
	}
	if want == 0 {
		t.Fatal("the delete left no blob unreferenced; the test checks nothing")
	}
	if got := number(t, out, `will free about [^(]*\((\d+) bytes\)`); got != want {
		t.Errorf("delete announced %d bytes for gc, want %d", got, want)
	}
	gcOut, code := testenv.RunFerry(t, nil, "gc", "--data-dir", dst.DataDir, "--grace", "0s", "--dry-run")
	if code != 0 {
		t.Fatalf("gc --dry-run: exit %d", code)
	}
	if got := number(t, gcOut, `would delete \d+ blobs \([^,]*, (\d+) bytes\)`); got != want {
		t.Errorf("gc --dry-run would free %d bytes, want %d", got, want)
	}
	gcOut, code = testenv.RunFerry(t, nil, "gc", "--data-dir", dst.DataDir, "--grace", "0s")
	if code != 0 {
		t.Fatalf("gc: exit %d", code)
	}
	if got := number(t, gcOut, `deleted \d+ blobs \([^,]*, (\d+) bytes\)`); got != want {
		t.Errorf("gc freed %d bytes, want %d", got, want)
	}
	crane := testenv.Tool(t, "crane")
	for repo, tags := range catalog(t, dst.Host) {
		for _, tag := range tags {
			ref := dst.Host + "/" + repo + ":" + tag
			if out, code := run(t, nil, crane, "validate", "--insecure", "--remote", ref); code != 0 {
				t.Errorf("crane validate %s after delete and gc: exit %d\n%s", ref, code, out)
			}
		}
	}
}

func number(t *testing.T, out, pattern string) int64 {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("output has no %q:\n%s", pattern, out)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}
