package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// startRegistry starts the registry under test: ferry serve, or the
// reference registry named by FERRY_E2E_REGISTRY when triaging a failure.
func startRegistry(t *testing.T) *testenv.Server {
	t.Helper()
	switch os.Getenv("FERRY_E2E_REGISTRY") {
	case "":
		return testenv.StartFerry(t, testenv.FerryOptions{})
	case "distribution-v3":
		return testenv.StartDistributionV3(t)
	default:
		t.Fatalf("FERRY_E2E_REGISTRY=%q: want distribution-v3 or nothing", os.Getenv("FERRY_E2E_REGISTRY"))
		return nil
	}
}

// ferryOnly skips tests of behaviour the reference registry lacks.
func ferryOnly(t *testing.T) {
	t.Helper()
	if r := os.Getenv("FERRY_E2E_REGISTRY"); r != "" {
		t.Skipf("tests Ferry-only behaviour; FERRY_E2E_REGISTRY=%s", r)
	}
}

// run runs a client with an isolated HOME, so no user configuration or
// credentials leak in, and fails the test with its output on error.
func run(t *testing.T, home string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(t, home, nil, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(t *testing.T, home string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	return runIn(t, "", home, env, name, args...)
}

// runIn runs a client in dir, for clients that read and write files by
// relative name.
func runIn(t *testing.T, dir, home string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// An empty auth file: podman refuses a REGISTRY_AUTH_FILE that is missing.
	auth := filepath.Join(home, "auth.json")
	if _, err := os.Stat(auth); err != nil {
		if err := os.WriteFile(auth, []byte(`{"auths":{}}`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.CommandContext(ctx, testenv.Tool(t, name), args...)
	cmd.Env = append(os.Environ(), "HOME="+home, "DOCKER_CONFIG="+filepath.Join(home, ".docker"),
		"REGISTRY_AUTH_FILE="+filepath.Join(home, "auth.json"), "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_RUNTIME_DIR="+filepath.Join(home, "run"))
	cmd.Env = append(cmd.Env, env...)
	cmd.Dir = dir
	var buf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	err := cmd.Run()
	return buf.String(), err
}

// exchange is one HTTP request and its response, kept to print on failure.
type exchange struct {
	Method, URL string
	Status      int
	Header      http.Header
	Body        []byte
}

func (e exchange) String() string {
	body := e.Body
	if len(body) > 512 {
		body = append(body[:512:512], "..."...)
	}
	return fmt.Sprintf("%s %s -> %d %v %s", e.Method, e.URL, e.Status, e.Header, body)
}

// do sends one request to the registry and reads the whole response.
func do(t *testing.T, method, rawURL string, header http.Header, body io.Reader) exchange {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, rawURL, err)
	}
	return exchange{Method: method, URL: rawURL, Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// resolve turns a Location header, absolute or relative, into a URL.
func resolve(t *testing.T, base, location string) string {
	t.Helper()
	b, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	l, err := url.Parse(location)
	if err != nil {
		t.Fatalf("Location %q: %v", location, err)
	}
	return b.ResolveReference(l).String()
}

// tags lists a repository's tags through the API.
func tags(t *testing.T, s *testenv.Server, repo string) []string {
	t.Helper()
	e := do(t, http.MethodGet, s.URL+"/v2/"+repo+"/tags/list", nil, nil)
	if e.Status == http.StatusNotFound {
		return nil
	}
	if e.Status != http.StatusOK {
		t.Fatalf("tags list: %v", e)
	}
	var list struct {
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(e.Body, &list); err != nil {
		t.Fatalf("tags list: %v: %v", err, e)
	}
	return list.Tags
}

// newHash returns the hash for a digest algorithm name.
func newHash(alg string) (hash.Hash, bool) {
	switch alg {
	case "sha256":
		return sha256.New(), true
	case "sha512":
		return sha512.New(), true
	}
	return nil, false
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
