package mirror_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// destination is a registry the mirror writes to.
type destination struct {
	name  string
	start func(t *testing.T) *testenv.Server
}

// destinations lists the registries every workflow is checked against.
func destinations() []destination {
	return []destination{
		{"ferry", startFerry},
		{"distribution-v3", func(t *testing.T) *testenv.Server { return testenv.StartDistributionV3(t) }},
		{"docker-registry", func(t *testing.T) *testenv.Server { return testenv.StartDockerRegistry(t) }},
	}
}

// startFerry starts `ferry serve` with its defaults.
func startFerry(t *testing.T) *testenv.Server {
	return testenv.StartFerry(t, testenv.FerryOptions{})
}

// ferry runs the built ferry binary and returns its combined output and
// exit code.
func ferry(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	return testenv.RunFerry(t, env, args...)
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

// count reads "<n> <word>" from a summary line.
func count(t *testing.T, out, pattern string) int {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("output has no %q:\n%s", pattern, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

type manifestDoc struct {
	Manifests []struct {
		Digest   string `json:"digest"`
		Platform *struct {
			Architecture string `json:"architecture"`
		} `json:"platform"`
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

func assertAbsent(t *testing.T, host, repo, ref string) {
	t.Helper()
	if f := testenv.GetManifest(t, host, repo, ref); f.Status != http.StatusNotFound {
		t.Errorf("%s/%s:%s: status %d, want 404 (it must not be mirrored)", host, repo, ref, f.Status)
	}
}

func sigTag(hash fmt.Stringer) string {
	return strings.Replace(hash.String(), ":", "-", 1)
}
