package lookaside

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

func write(t *testing.T, path, body string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestScopes: the most specific scope wins, across files; sigstore is the
// old name of lookaside; default-docker is the fallback.
func TestScopes(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.yaml"), `
default-docker:
  lookaside: https://default.example/sigs
docker:
  registry.redhat.io:
    sigstore: https://registry.redhat.io/containers/sigstore
`)
	write(t, filepath.Join(dir, "b.yaml"), `
docker:
  registry.redhat.io/ubi9:
    lookaside: https://ubi.example/
  registry.redhat.io/ubi9/ubi:9.4:
    lookaside: file:///srv/sigs
`)
	write(t, filepath.Join(dir, "ignored.yml.bak"), "not: [yaml")
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromString("x")
	for _, x := range []struct{ repo, tag, want string }{
		{"registry.redhat.io/rhel9/support-tools", "", "https://registry.redhat.io/containers/sigstore"},
		{"registry.redhat.io/ubi9/ubi", "9.3", "https://ubi.example"},
		{"registry.redhat.io/ubi9/ubi", "9.4", "file:///srv/sigs"},
		{"registry.redhat.io:443/ubi9/ubi", "", "https://default.example/sigs"},
		{"quay.io/a/b", "", "https://default.example/sigs"},
	} {
		if got := c.base(x.repo, x.tag, d); got != x.want {
			t.Errorf("%s:%s: lookaside %q, want %q", x.repo, x.tag, got, x.want)
		}
	}
}

// TestLoadErrors: conflicting or malformed files are refused, naming them.
func TestLoadErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"syntax", map[string]string{"a.yaml": "docker: [\n"}, "does not parse"},
		{"typo", map[string]string{"a.yaml": "docker:\n  quay.io:\n    lookasid: https://x\n"}, "lookasid"},
		{"top-level typo", map[string]string{"a.yaml": "dokcer:\n  quay.io: {}\n"}, "dokcer"},
		{"two defaults", map[string]string{"a.yaml": "default-docker:\n  lookaside: https://a\n", "b.yaml": "default-docker:\n  lookaside: https://b\n"}, "default-docker is also set in"},
		{"scope twice", map[string]string{"a.yaml": "docker:\n  quay.io:\n    lookaside: https://a\n", "b.yaml": "docker:\n  quay.io:\n    lookaside: https://b\n"}, `"quay.io" is also set in`},
		{"bad url", map[string]string{"a.yaml": "docker:\n  quay.io:\n    lookaside: ftp://a\n"}, "not an http(s):// or file:// URL"},
		{"both names", map[string]string{"a.yaml": "docker:\n  quay.io:\n    lookaside: https://a\n    sigstore: https://b\n"}, "differ"},
	} {
		dir := t.TempDir()
		var last string
		for n, body := range c.files {
			p := write(t, filepath.Join(dir, n), body)
			if n > last {
				last = p
			}
		}
		_, err := Load(dir)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), dir) {
			t.Errorf("%s: error %v, want one naming a file in %s and saying %q", c.name, err, dir, c.want)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "--registries.d") {
		t.Errorf("a missing --registries.d directory: %v", err)
	}
}

// TestFetch: signature-1, -2, ... are read until the server answers 404,
// from a web server or a file:// tree laid out the same way.
func TestFetch(t *testing.T) {
	site := t.TempDir()
	d := digest.FromString("img")
	sigDir := filepath.Join(site, "ns", "app@sha256="+d.Encoded())
	write(t, filepath.Join(sigDir, "signature-1"), "one")
	write(t, filepath.Join(sigDir, "signature-2"), "two")
	write(t, filepath.Join(sigDir, "signature-4"), "after a gap: not read")
	srv := httptest.NewServer(http.FileServer(http.Dir(site)))
	defer srv.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer broken.Close()

	dir := t.TempDir()
	write(t, filepath.Join(dir, "x.yaml"), "docker:\n  web.example:\n    lookaside: "+srv.URL+"\n  files.example:\n    lookaside: file://"+site+"\n  broken.example:\n    lookaside: "+broken.URL+"\n")
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, repo := range []string{"web.example/ns/app", "files.example/ns/app"} {
		sigs, err := c.Fetch(ctx, repo, "1", d)
		if err != nil || len(sigs) != 2 || string(sigs[0]) != "one" || string(sigs[1]) != "two" {
			t.Errorf("%s: got %q, %v; want [one two]", repo, sigs, err)
		}
		if sigs, err := c.Fetch(ctx, repo, "", digest.FromString("unsigned")); err != nil || len(sigs) != 0 {
			t.Errorf("%s unsigned: got %q, %v; want none", repo, sigs, err)
		}
	}
	if _, err := c.Fetch(ctx, "broken.example/ns/app", "", d); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("a failing lookaside: %v; want the 503 reported, not taken for no signature", err)
	}
	if _, err := c.Fetch(ctx, "quay.io/ns/app", "", d); err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "lookaside") {
		t.Errorf("no lookaside configured: %v", err)
	}
}
