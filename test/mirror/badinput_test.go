package mirror_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, filepath.Join(dir, "good.yaml"), `apiVersion: mirror.openshift.io/v2alpha1
kind: ImageSetConfiguration
mirror:
  additionalImages:
  - name: 127.0.0.1:1/x/y:1
`)
	unknown := writeFile(t, filepath.Join(dir, "unknown.yaml"), `apiVersion: mirror.openshift.io/v2alpha1
kind: ImageSetConfiguration
mirror:
  additionalImages:
  - name: 127.0.0.1:1/x/y:1
    tagg: oops
`)
	ws := "file://" + filepath.Join(dir, "ws")
	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"unknown field", []string{"-c", unknown, "--workspace", ws, "docker://127.0.0.1:1"}, 1, []string{"unknown.yaml:6", "tagg"}},
		{"missing config file", []string{"-c", filepath.Join(dir, "nope.yaml"), "--workspace", ws, "docker://127.0.0.1:1"}, 1, []string{"nope.yaml"}},
		{"no config flag", []string{"--workspace", ws, "docker://127.0.0.1:1"}, 1, []string{"--config"}},
		{"destination without scheme", []string{"-c", good, "--workspace", ws, "127.0.0.1:1/mirror"}, 1, []string{"docker://<registry>", "file://<dir>"}},
		{"docker destination without from or workspace", []string{"-c", good, "docker://127.0.0.1:1"}, 1, []string{"--from", "--workspace"}},
		{"from without file scheme", []string{"-c", good, "--from", dir, "docker://127.0.0.1:1"}, 1, []string{"--from", "file://"}},
		{"missing archive folder", []string{"-c", good, "--from", "file://" + filepath.Join(dir, "no-archive"), "docker://127.0.0.1:1"}, 1, []string{"no-archive", "does not exist"}},
		{"folder without archive", []string{"-c", good, "--from", "file://" + dir, "docker://127.0.0.1:1"}, 1, []string{"ferry-archive.json"}},
		{"destination with a tag", []string{"-c", good, "--workspace", ws, "docker://127.0.0.1:1/mirror:v1"}, 1, []string{"tag"}},
		{"destination not running", []string{"-c", good, "--workspace", ws, "docker://127.0.0.1:1/m", "--dest-tls-verify=false"}, 1, []string{"127.0.0.1:1", "does not answer"}},
		{"bad since", []string{"-c", good, "--since", "last week", "file://" + dir}, 1, []string{"yyyy-mm-dd"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, code := ferry(t, nil, append([]string{"mirror"}, c.args...)...)
			if code != c.code {
				t.Errorf("exit code %d, want %d", code, c.code)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not mention %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "panic") {
				t.Errorf("ferry panicked:\n%s", out)
			}
		})
	}
}

func TestDryRun(t *testing.T) {
	src := testenv.StartDockerRegistry(t)
	u := buildUpstream(t, src.Host)
	dst := testenv.StartDistributionV3(t)
	dir := t.TempDir()
	isc := writeFile(t, filepath.Join(dir, "isc.yaml"), u.isc("  - name: "+src.Host+"/does/not-exist:1\n"))
	_, code := ferry(t, nil, "mirror", "-c", isc, "--workspace", "file://"+dir, "docker://"+dst.Host+"/mirror", "--dry-run", "--dest-tls-verify=false")
	if code != 0 {
		t.Fatalf("dry run exited %d", code)
	}
	mapping, err := os.ReadFile(filepath.Join(dir, "working-dir", "dry-run", "mapping.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := "docker://" + src.Host + "/app/alpha:1.0=docker://" + dst.Host + "/mirror/app/alpha:1.0"
	if !strings.Contains(string(mapping), want) {
		t.Errorf("mapping.txt lacks %q:\n%s", want, mapping)
	}
	if strings.Contains(string(mapping), "blocked/secret") {
		t.Errorf("mapping.txt names a blocked image:\n%s", mapping)
	}
	missing, err := os.ReadFile(filepath.Join(dir, "working-dir", "dry-run", "missing.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(missing), "does/not-exist:1") {
		t.Errorf("missing.txt lacks the missing image:\n%s", missing)
	}
	if repos := testenv.Catalog(t, dst.Host); len(repos) != 0 {
		t.Errorf("a dry run pushed %v", repos)
	}
}
