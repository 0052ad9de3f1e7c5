package release_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestDryRunListsGeneratedImages: mapping.txt of a dry run names every
// image the run would push, the ones Ferry builds too: the filtered
// catalog (from the catalog it filters, as oc-mirror lists it) and the
// update graph image.
func TestDryRunListsGeneratedImages(t *testing.T) {
	up := startUpstream(t)
	cat := up.u.Catalogs[0]
	cfg := testenv.WriteImageSetConfig(t, `  platform:
    graph: true
    release: `+up.u.Releases[0].Image.ByTag()+`
  operators:
  - catalog: `+cat.Image.ByTag()+`
`)
	dst := testenv.StartFerry(t, testenv.FerryOptions{})
	ws := t.TempDir()
	out, code := ferry(t, up.env(), "mirror", "-c", cfg, "--workspace", "file://"+ws, "docker://"+dst.Host+"/ocp", "--dry-run",
		"--src-tls-verify=false", "--dest-tls-verify=false", "--graph-base-image", up.u.Additional[0].ByTag())
	if code != 0 {
		t.Fatalf("dry run exit %d:\n%s", code, out)
	}
	data, err := os.ReadFile(filepath.Join(ws, "working-dir", "dry-run", "mapping.txt"))
	if err != nil {
		t.Fatal(err)
	}
	mapping := string(data)
	catRepo := strings.SplitN(strings.TrimPrefix(cat.Image.ByTag(), up.reg.Host+"/"), ":", 2)[0]
	for _, want := range []string{
		"docker://" + cat.Image.ByTag() + "=docker://" + dst.Host + "/ocp/" + catRepo + ":",
		"=docker://" + dst.Host + "/ocp/openshift/graph-image:latest\n",
		"generated://openshift/graph-image@sha256:",
		"=docker://" + dst.Host + "/ocp/openshift/release-images:",
	} {
		if !strings.Contains(mapping, want) {
			t.Errorf("mapping.txt lacks %q:\n%s", want, mapping)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(mapping), "\n") {
		src, dst, ok := strings.Cut(line, "=")
		if !ok || !strings.Contains(src, "://") || !strings.HasPrefix(dst, "docker://") {
			t.Errorf("mapping.txt line %q is not source=docker://destination", line)
		}
	}
	if repos := testenv.Catalog(t, dst.Host); len(repos) != 0 {
		t.Errorf("a dry run pushed %v", repos)
	}
}
