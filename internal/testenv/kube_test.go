package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder keeps the errors of a check that is meant to fail.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recorder) Helper() {}

func TestAssertKubernetesObjects(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "idms.yaml"), []byte("---\napiVersion: config.openshift.io/v1\nkind: ImageDigestMirrorSet\nmetadata:\n  name: idms-generic-0\nspec:\n  imageDigestMirrors: []\n---\napiVersion: config.openshift.io/v1\nkind: ImageDigestMirrorSet\nmetadata:\n  name: idms-release-0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "cm.json"), []byte(`{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}},{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}]}`), 0o644)
	got := AssertKubernetesObjects(t, dir)
	if strings.Join(got, " ") != "ConfigMap/a ConfigMap/b ImageDigestMirrorSet/idms-generic-0 ImageDigestMirrorSet/idms-release-0" {
		t.Errorf("objects = %v", got)
	}

	os.WriteFile(filepath.Join(dir, "install-config-snippet.yaml"), []byte("imageDigestSources:\n- source: quay.io/a\n  mirrors: [m.lan/a]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "registries.conf"), []byte("unqualified-search-registries = []\n"), 0o644)
	r := &recorder{TB: t}
	AssertKubernetesObjects(r, dir)
	all := strings.Join(r.errs, "\n")
	for _, want := range []string{"install-config-snippet.yaml: document 0 is not a Kubernetes object", "registries.conf is not a .yaml, .yml or .json file"} {
		if !strings.Contains(all, want) {
			t.Errorf("errors lack %q:\n%s", want, all)
		}
	}
}
