package mirror_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestPrefixedAdditionalImages: additionalImages names written as oc-mirror
// users write them: docker://<reference>, and oci://<folder> for an OCI
// layout on the mirror host (an image, and a multi-architecture list).
func TestPrefixedAdditionalImages(t *testing.T) {
	src := testenv.StartDockerRegistry(t)
	u := buildUpstream(t, src.Host)
	dst := startFerry(t)
	dir := t.TempDir()

	img := must(random.Image(2048, 2))
	single := filepath.Join(dir, "single")
	lp := must(layout.Write(single, empty.Index))
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	arm := must(random.Image(1024, 1))
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	multi := filepath.Join(dir, "multi-tool")
	lp = must(layout.Write(multi, empty.Index))
	if err := lp.AppendIndex(idx); err != nil {
		t.Fatal(err)
	}

	isc := writeFile(t, filepath.Join(dir, "isc.yaml"), `apiVersion: mirror.openshift.io/v2alpha1
kind: ImageSetConfiguration
mirror:
  additionalImages:
  - name: docker://`+src.Host+`/app/alpha:1.0
  - name: oci://`+single+`
    targetRepo: local/app
    targetTag: v1
  - name: oci://`+multi+`
`)
	ws := filepath.Join(dir, "ws")
	if _, code := ferry(t, nil, "mirror", "-c", isc, "--workspace", "file://"+ws, "docker://"+dst.Host+"/mirror", "--dest-tls-verify=false"); code != 0 {
		t.Fatalf("m2m exited %d", code)
	}
	testenv.AssertDigest(t, dst.Host, "mirror/app/alpha", "1.0", u.Alpha.String())
	testenv.AssertDigest(t, dst.Host, "mirror/local/app", "v1", must(img.Digest()).String())
	// No targetRepo: the folder's name, tagged latest, as oc-mirror names it.
	testenv.AssertDigest(t, dst.Host, "mirror/multi-tool", "latest", must(idx.Digest()).String())
}

// TestKeyInAnotherCase: oc-mirror reads keys without regard to case, so
// Ferry does too, and says which spelling is the usual one.
func TestKeyInAnotherCase(t *testing.T) {
	src := testenv.StartDockerRegistry(t)
	buildUpstream(t, src.Host)
	dir := t.TempDir()
	isc := writeFile(t, filepath.Join(dir, "isc.yaml"), "apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n  additionalimages:\n  - name: "+src.Host+"/app/alpha:1.0\n---\n")
	out, code := ferry(t, nil, "mirror", "-c", isc, "--workspace", "file://"+dir, "docker://127.0.0.1:1/mirror", "--dry-run")
	if code != 0 {
		t.Fatalf("dry run exited %d", code)
	}
	if want := isc + ":4: mirror.additionalImages: written additionalimages; read as additionalImages"; !strings.Contains(out, want) {
		t.Errorf("output lacks the warning %q:\n%s", want, out)
	}
	mapping, err := os.ReadFile(filepath.Join(dir, "working-dir", "dry-run", "mapping.txt"))
	if err != nil || !strings.Contains(string(mapping), src.Host+"/app/alpha:1.0=docker://127.0.0.1:1/mirror/app/alpha:1.0") {
		t.Errorf("mapping.txt (%v):\n%s", err, mapping)
	}
}
