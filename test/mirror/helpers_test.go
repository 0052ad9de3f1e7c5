package mirror_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

const accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, " +
	"application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"

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

type fetched struct {
	status    int
	mediaType string
	digest    string // of the body
	body      []byte
}

func getManifest(t *testing.T, host, repo, ref string) fetched {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/v2/"+repo+"/manifests/"+ref, nil)
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("get %s/%s:%s: %v", host, repo, ref, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	sum := sha256.Sum256(body)
	return fetched{status: resp.StatusCode, mediaType: resp.Header.Get("Content-Type"), digest: "sha256:" + hex.EncodeToString(sum[:]), body: body}
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

// assertDigest checks repo:ref resolves to want and that its whole tree
// (child manifests, config, layers) is readable with the right sizes.
func assertDigest(t *testing.T, host, repo, ref, want string) {
	t.Helper()
	f := getManifest(t, host, repo, ref)
	if f.status != http.StatusOK {
		t.Errorf("%s/%s:%s: status %d, want 200", host, repo, ref, f.status)
		return
	}
	if f.digest != want {
		t.Errorf("%s/%s:%s: digest %s, want %s (unchanged from upstream)", host, repo, ref, f.digest, want)
		return
	}
	assertTree(t, host, repo, f)
}

func assertTree(t *testing.T, host, repo string, f fetched) {
	t.Helper()
	var doc manifestDoc
	if err := json.Unmarshal(f.body, &doc); err != nil {
		t.Fatalf("manifest %s: %v", f.digest, err)
	}
	for _, c := range doc.Manifests {
		cf := getManifest(t, host, repo, c.Digest)
		if cf.status != http.StatusOK || cf.digest != c.Digest {
			t.Errorf("%s/%s: child %s: status %d digest %s", host, repo, c.Digest, cf.status, cf.digest)
			continue
		}
		assertTree(t, host, repo, cf)
	}
	type blob struct {
		d string
		n int64
	}
	var blobs []blob
	if doc.Config != nil {
		blobs = append(blobs, blob{doc.Config.Digest, doc.Config.Size})
	}
	for _, l := range doc.Layers {
		blobs = append(blobs, blob{l.Digest, l.Size})
	}
	for _, b := range blobs {
		resp, err := http.Get("http://" + host + "/v2/" + repo + "/blobs/" + b.d)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		sum := sha256.Sum256(data)
		if resp.StatusCode != http.StatusOK || "sha256:"+hex.EncodeToString(sum[:]) != b.d || int64(len(data)) != b.n {
			t.Errorf("%s/%s: blob %s: status %d, %d bytes (want %d), content digest sha256:%x", host, repo, b.d, resp.StatusCode, len(data), b.n, sum)
		}
	}
}

func assertAbsent(t *testing.T, host, repo, ref string) {
	t.Helper()
	if f := getManifest(t, host, repo, ref); f.status != http.StatusNotFound {
		t.Errorf("%s/%s:%s: status %d, want 404 (it must not be mirrored)", host, repo, ref, f.status)
	}
}

func sigTag(hash fmt.Stringer) string {
	return strings.Replace(hash.String(), ":", "-", 1)
}
