package ocmirror_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestDeleteBadInput: files that do not fit the destination delete
// nothing and say why; a registry that refuses DELETE is reported per
// image and the run goes on.
func TestDeleteBadInput(t *testing.T) {
	bin := ocMirror(t)
	up := testenv.StartDockerRegistry(t)
	web := pushRandom(t, up.Host+"/app/web:1.0")
	cli := pushRandom(t, up.Host+"/tools/cli:2")
	isc := writeFile(t, filepath.Join(t.TempDir(), "isc.yaml"), fmt.Sprintf(`kind: ImageSetConfiguration
apiVersion: mirror.openshift.io/v2alpha1
mirror:
  additionalImages:
  - name: %[1]s/app/web:1.0
  - name: %[1]s/tools/cli:2
`, up.Host))
	disc := writeFile(t, filepath.Join(t.TempDir(), "delete-isc.yaml"), fmt.Sprintf(`kind: DeleteImageSetConfiguration
apiVersion: mirror.openshift.io/v2alpha1
delete:
  additionalImages:
  - name: %[1]s/app/web:1.0
  - name: %[1]s/tools/cli:2
`, up.Host))
	dst := testenv.StartFerry(t, testenv.FerryOptions{})
	ws := t.TempDir()
	tls := []string{"--src-tls-verify=false", "--dest-tls-verify=false"}
	if _, code := run(t, nil, bin, append([]string{"-c", isc, "--workspace", "file://" + ws, "docker://" + dst.Host, "--v2"}, tls...)...); code != 0 {
		t.Fatalf("m2m: exit %d", code)
	}
	if _, code := run(t, nil, bin, append([]string{"delete", "--generate", "--delete-id", "apps", "-c", disc, "--workspace", "file://" + ws, "docker://" + dst.Host, "--v2"}, tls...)...); code != 0 {
		t.Fatalf("delete --generate: exit %d", code)
	}
	listFile := filepath.Join(ws, "working-dir", "delete", "delete-images-apps.yaml")
	good, err := os.ReadFile(listFile)
	if err != nil {
		t.Fatalf("--delete-id apps: %v", err)
	}
	intact := func(t *testing.T) {
		t.Helper()
		if f := testenv.GetManifest(t, dst.Host, "app/web", "1.0"); f.Status != http.StatusOK || f.Digest != web.String() {
			t.Errorf("app/web:1.0 was touched: status %d", f.Status)
		}
		if f := testenv.GetManifest(t, dst.Host, "tools/cli", "2"); f.Status != http.StatusOK || f.Digest != cli.String() {
			t.Errorf("tools/cli:2 was touched: status %d", f.Status)
		}
	}
	cases := []struct {
		name, file string
		dest       string
		want       []string
	}{
		{"an image the destination lacks", strings.Replace(string(good), "items:\n", fmt.Sprintf("items:\n- imageName: docker://%[1]s/app/gone:1.0\n  imageReference: docker://%[2]s/app/gone:1.0\n  type: generic\n", up.Host, dst.Host), 1),
			dst.Host, []string{"app/gone:1.0", "nothing was deleted", "not in docker://" + dst.Host}},
		{"not YAML", "items: [unclosed\n", dst.Host, []string{"does not parse", "DeleteImageList"}},
		{"a configuration instead of the list", "kind: DeleteImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nitems: []\n", dst.Host, []string{"kind is \"DeleteImageSetConfiguration\"", "--generate"}},
		{"another destination", string(good), dst.Host + "/elsewhere", []string{"not under docker://" + dst.Host + "/elsewhere", "nothing was deleted"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := writeFile(t, filepath.Join(t.TempDir(), "delete-images.yaml"), c.file)
			out, code := run(t, nil, bin, "delete", "--delete-yaml-file", f, "docker://"+c.dest, "--v2", "--dest-tls-verify=false")
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not say %q", w)
				}
			}
			if strings.Contains(out, "panic") || strings.Contains(out, "goroutine") {
				t.Errorf("crashed:\n%s", out)
			}
			intact(t)
		})
	}

	t.Run("registry refusing DELETE", func(t *testing.T) {
		dst.Args = append(dst.Args, "--read-only")
		dst.Restart()
		out, code := run(t, nil, bin, "delete", "--delete-yaml-file", listFile, "docker://"+dst.Host, "--v2", "--dest-tls-verify=false")
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		for _, ref := range []string{"app/web:1.0", "tools/cli:2"} {
			if !strings.Contains(out, dst.Host+"/"+ref+": the registry refuses to delete") {
				t.Errorf("output does not report %s as refused:\n%s", ref, out)
			}
		}
		reports, _ := filepath.Glob(filepath.Join(ws, "working-dir", "logs", "delete_errors_*.txt"))
		if len(reports) == 0 {
			t.Errorf("no working-dir/logs/delete_errors_<time>.txt")
		}
		intact(t)
	})

	t.Run("ferry mirror delete", func(t *testing.T) {
		out, code := testenv.RunFerry(t, nil, "mirror", "delete", "--dry-run", "--delete-yaml-file", listFile, "docker://"+dst.Host, "--dest-tls-verify=false")
		if code != 0 || !strings.Contains(out, "would delete 2 manifests") {
			t.Errorf("exit %d, want 0 and \"would delete 2 manifests\"", code)
		}
		intact(t)
	})
	t.Run("dry run", func(t *testing.T) {
		out, code := run(t, nil, bin, "delete", "--dry-run", "--delete-yaml-file", listFile, "docker://"+dst.Host, "--v2", "--dest-tls-verify=false")
		if code != 0 || !strings.Contains(out, "would delete 2 manifests") {
			t.Errorf("exit %d, want 0 and \"would delete 2 manifests\"", code)
		}
		intact(t)
	})
}
