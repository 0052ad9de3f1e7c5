// Package ocmirror_test runs Ferry through a symlink named oc-mirror with
// the command lines oc-mirror v2's documentation gives, against real
// registries: Debian's docker-registry as the upstream and ferry serve as
// the mirror.
package ocmirror_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// ocMirror returns the path of a symlink named oc-mirror to the built
// ferry binary, as `make install-oc-mirror` or a user makes it.
func ocMirror(t testing.TB) string {
	t.Helper()
	link := filepath.Join(t.TempDir(), "oc-mirror")
	if err := os.Symlink(testenv.FerryBinary(t), link); err != nil {
		t.Fatal(err)
	}
	return link
}

// run runs bin with args and returns the combined output and exit code.
func run(t testing.TB, env []string, bin string, args ...string) (string, int) {
	t.Helper()
	return testenv.RunBinary(t, env, bin, args...)
}

func writeFile(t testing.TB, path, data string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// blobs returns the config and layer digests, with sizes, of repo@ref and
// of the manifests it lists.
func blobs(t testing.TB, host, repo, ref string, into map[string]int64) {
	t.Helper()
	f := testenv.GetManifest(t, host, repo, ref)
	if f.Status != http.StatusOK {
		t.Fatalf("%s/%s@%s: status %d", host, repo, ref, f.Status)
	}
	var doc struct {
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
		Config *struct {
			Digest string `json:"digest"`
			Size   int64  `json:"size"`
		} `json:"config"`
		Layers []struct {
			Digest string `json:"digest"`
			Size   int64  `json:"size"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(f.Body, &doc); err != nil {
		t.Fatal(err)
	}
	for _, m := range doc.Manifests {
		blobs(t, host, repo, m.Digest, into)
	}
	if doc.Config != nil {
		into[doc.Config.Digest] = doc.Config.Size
	}
	for _, l := range doc.Layers {
		into[l.Digest] = l.Size
	}
}

// catalog lists every repository and tag of a registry.
func catalog(t testing.TB, host string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, r := range testenv.Catalog(t, host) {
		out[r] = testenv.Tags(t, host, r)
	}
	return out
}
