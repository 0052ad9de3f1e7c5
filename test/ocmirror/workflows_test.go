package ocmirror_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

func pushRandom(t testing.TB, ref string) v1.Hash {
	t.Helper()
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestWorkflows runs the three workflows with the command lines of
// oc-mirror v2's documentation through the oc-mirror symlink, and checks
// the mirrored content by digest, the working-dir layout and the exit codes.
func TestWorkflows(t *testing.T) {
	bin := ocMirror(t)
	up := testenv.StartDockerRegistry(t)
	app := pushRandom(t, up.Host+"/app/web:1.0")
	tool := pushRandom(t, up.Host+"/tools/cli:2")
	isc := writeFile(t, filepath.Join(t.TempDir(), "isc.yaml"), fmt.Sprintf(`kind: ImageSetConfiguration
apiVersion: mirror.openshift.io/v2alpha1
mirror:
  additionalImages:
  - name: %[1]s/app/web:1.0
  - name: %[1]s/tools/cli:2
`, up.Host))
	check := func(t *testing.T, host, prefix string) {
		t.Helper()
		for repo, want := range map[string]v1.Hash{"app/web:1.0": app, "tools/cli:2": tool} {
			r, tag, _ := strings.Cut(repo, ":")
			if f := testenv.GetManifest(t, host, prefix+r, tag); f.Status != http.StatusOK || f.Digest != want.String() {
				t.Errorf("%s/%s%s: status %d digest %s, want %s", host, prefix, repo, f.Status, f.Digest, want)
			}
		}
	}
	layout := func(t *testing.T, dir string, resources bool) {
		t.Helper()
		logs, _ := filepath.Glob(filepath.Join(dir, "working-dir", "logs", "oc-mirror-*.log"))
		if len(logs) == 0 {
			t.Errorf("no working-dir/logs/oc-mirror-<time>.log in %s", dir)
		}
		if resources {
			if _, err := os.Stat(filepath.Join(dir, "working-dir", "cluster-resources", "itms-oc-mirror.yaml")); err != nil {
				t.Errorf("cluster resources: %v", err)
			}
		}
	}

	t.Run("m2m", func(t *testing.T) {
		dst := testenv.StartFerry(t, testenv.FerryOptions{})
		ws := t.TempDir()
		_, code := run(t, nil, bin, "-c", isc, "--workspace", "file://"+ws, "docker://"+dst.Host+"/mirror", "--v2",
			"--src-tls-verify=false", "--dest-tls-verify=false")
		if code != 0 {
			t.Fatalf("exit %d, want 0", code)
		}
		check(t, dst.Host, "mirror/")
		layout(t, ws, true)
	})
	t.Run("m2d then d2m", func(t *testing.T) {
		archive := t.TempDir()
		if _, code := run(t, nil, bin, "-c", isc, "file://"+archive, "--v2", "--src-tls-verify=false"); code != 0 {
			t.Fatalf("m2d: exit %d, want 0", code)
		}
		layout(t, archive, false)
		dst := testenv.StartFerry(t, testenv.FerryOptions{})
		if _, code := run(t, nil, bin, "-c", isc, "--from", "file://"+archive, "docker://"+dst.Host, "--v2", "--dest-tls-verify=false"); code != 0 {
			t.Fatalf("d2m: exit %d, want 0", code)
		}
		check(t, dst.Host, "")
		layout(t, archive, true)
	})
	t.Run("missing additional image exits 8", func(t *testing.T) {
		dst := testenv.StartFerry(t, testenv.FerryOptions{})
		bad := writeFile(t, filepath.Join(t.TempDir(), "isc.yaml"), fmt.Sprintf(`kind: ImageSetConfiguration
apiVersion: mirror.openshift.io/v2alpha1
mirror:
  additionalImages:
  - name: %[1]s/app/web:1.0
  - name: %[1]s/app/gone:1.0
`, up.Host))
		ws := t.TempDir()
		out, code := run(t, nil, bin, "-c", bad, "--workspace", "file://"+ws, "docker://"+dst.Host, "--v2", "--src-tls-verify=false", "--dest-tls-verify=false")
		if code != 8 {
			t.Errorf("exit %d, want 8 (oc-mirror's additional images bit)", code)
		}
		errs, _ := filepath.Glob(filepath.Join(ws, "working-dir", "logs", "mirroring_errors_*.txt"))
		if len(errs) != 1 {
			t.Fatalf("want one working-dir/logs/mirroring_errors_<time>.txt, got %v", errs)
		}
		data, _ := os.ReadFile(errs[0])
		if !strings.Contains(string(data), "app/gone:1.0") {
			t.Errorf("%s does not name the missing image:\n%s", errs[0], data)
		}
		if !strings.Contains(out, "app/gone") {
			t.Errorf("output does not name the missing image")
		}
		check := testenv.GetManifest(t, dst.Host, "app/web", "1.0")
		if check.Digest != app.String() {
			t.Errorf("the image that exists was not mirrored")
		}
	})
	t.Run("destination credentials on the command line", func(t *testing.T) {
		dst := testenv.StartFerry(t, testenv.FerryOptions{Secure: true})
		pw, err := os.ReadFile(filepath.Join(dst.DataDir, "initial-admin-password"))
		if err != nil {
			t.Fatal(err)
		}
		admin := strings.TrimSpace(string(pw))
		base := []string{"-c", isc, "docker://" + dst.Host, "--v2", "--src-tls-verify=false", "--dest-tls-verify=false"}
		// No auth file anywhere: without credentials the push is refused.
		env := []string{"REGISTRY_AUTH_FILE=", "XDG_RUNTIME_DIR=" + t.TempDir(), "DOCKER_CONFIG=" + t.TempDir()}
		if _, code := run(t, env, bin, append(base, "--workspace", "file://"+t.TempDir())...); code == 0 {
			t.Fatal("an authenticated registry took a push without credentials")
		}
		for _, creds := range [][]string{{"--dest-creds", "admin:" + admin}, {"--dest-username", "admin", "--dest-password", admin}} {
			if _, code := run(t, env, bin, append(append(base, "--workspace", "file://"+t.TempDir()), creds...)...); code != 0 {
				t.Errorf("%s: exit %d, want 0", creds[0], code)
			}
		}
		req, _ := http.NewRequest(http.MethodHead, "http://"+dst.Host+"/v2/app/web/manifests/1.0", nil)
		req.SetBasicAuth("admin", admin)
		req.Header.Set("Accept", testenv.ManifestAccept)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Content-Digest") != app.String() {
			t.Errorf("app/web:1.0 at the authenticated registry: %d %s", resp.StatusCode, resp.Header.Get("Docker-Content-Digest"))
		}
		// Deleting needs the delete action in the token: admin has it.
		ws := t.TempDir()
		disc := writeFile(t, filepath.Join(t.TempDir(), "delete.yaml"), fmt.Sprintf("kind: DeleteImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\ndelete:\n  additionalImages:\n  - name: %s/app/web:1.0\n", up.Host))
		if _, code := run(t, env, bin, "delete", "--generate", "-c", disc, "--workspace", "file://"+ws, "docker://"+dst.Host, "--v2", "--src-tls-verify=false"); code != 0 {
			t.Fatalf("delete --generate: exit %d", code)
		}
		list := filepath.Join(ws, "working-dir", "delete", "delete-images.yaml")
		if _, code := run(t, env, bin, "delete", "--delete-yaml-file", list, "docker://"+dst.Host, "--v2", "--dest-tls-verify=false"); code == 0 {
			t.Error("an authenticated registry took a delete without credentials")
		}
		if _, code := run(t, env, bin, "delete", "--delete-yaml-file", list, "docker://"+dst.Host, "--v2", "--dest-tls-verify=false", "--dest-creds", "admin:"+admin); code != 0 {
			t.Errorf("delete with --dest-creds: exit %d, want 0", code)
		}
		req, _ = http.NewRequest(http.MethodHead, "http://"+dst.Host+"/v2/app/web/manifests/1.0", nil)
		req.SetBasicAuth("admin", admin)
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
			t.Errorf("app/web:1.0 after the delete: %v %v, want 404", resp.StatusCode, err)
		}
		out, code := run(t, env, bin, append(base, "--workspace", "file://"+t.TempDir(), "--dest-creds", "admin")...)
		if code != 1 || !strings.Contains(out, "USERNAME:PASSWORD") {
			t.Errorf("--dest-creds without a password: exit %d, want 1 asking for USERNAME:PASSWORD", code)
		}
	})
	t.Run("no destination", func(t *testing.T) {
		out, code := run(t, nil, bin, "-c", isc, "--v2")
		if code != 1 || !strings.Contains(out, "destination") {
			t.Errorf("exit %d, want 1 and a message naming the destination:\n%s", code, out)
		}
	})
	t.Run("through ferry oc-mirror", func(t *testing.T) {
		out, code := run(t, nil, testenv.FerryBinary(t), "oc-mirror", "list", "operators", "--catalogs", "--version", "4.16", "--v2")
		if code != 0 || !strings.Contains(out, "registry.redhat.io/redhat/redhat-operator-index:v4.16") {
			t.Errorf("ferry oc-mirror list operators: exit %d:\n%s", code, out)
		}
	})
}
