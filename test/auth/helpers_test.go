// Package auth_test checks authentication and permissions of real `ferry
// serve` processes with real clients: skopeo, podman, crane, regctl, oras,
// and ferry mirror.
package auth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

const (
	alicePW = "alice-secret-1"
	bobPW   = "bob-secret-22"
	// sharedSecretsKey is what every replica on one store is given, as
	// the README tells HA operators to do.
	sharedSecretsKey = "FERRY_SECRETS_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
)

// ferryUser runs `ferry user ...` on a data dir (or --metadata URL given
// in args) and returns stdout; stdin feeds --password-stdin.
func ferryUser(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.FerryBinary(t), append([]string{"user"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%w: %s", err, errb.String())
	}
	return out.String(), nil
}

func mustUser(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := ferryUser(t, stdin, args...)
	if err != nil {
		t.Fatalf("ferry user %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// setupUsers creates alice (pull on ocp/) and bob (push everywhere) in the
// store that store args select.
func setupUsers(t *testing.T, storeArgs ...string) {
	t.Helper()
	mustUser(t, alicePW+"\n", append([]string{"add", "alice", "--password-stdin"}, storeArgs...)...)
	mustUser(t, "", append([]string{"grant", "alice", "pull", "ocp/"}, storeArgs...)...)
	mustUser(t, bobPW+"\n", append([]string{"add", "bob", "--password-stdin"}, storeArgs...)...)
	mustUser(t, "", append([]string{"grant", "bob", "push", "*"}, storeArgs...)...)
}

// startProtected starts ferry serve with alice and bob defined.
func startProtected(t *testing.T, extra ...string) *testenv.Server {
	t.Helper()
	dir := t.TempDir()
	setupUsers(t, "--data-dir", dir)
	return testenv.StartFerry(t, testenv.FerryOptions{DataDir: dir, Args: extra, Secure: true})
}

// pushRandom pushes a small random image as user/pw and returns its digest.
func pushRandom(t *testing.T, s *testenv.Server, repo, user, pw string) v1.Hash {
	t.Helper()
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(s.Host+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: user, Password: pw})); err != nil {
		t.Fatalf("push %s as %s: %v", ref, user, err)
	}
	d, _ := img.Digest()
	return d
}

// client runs a command-line client with a private home, auth file and
// docker config, so tests never touch the host's credentials.
type client struct {
	t    *testing.T
	home string
	env  []string
}

func newClient(t *testing.T) *client {
	home := t.TempDir()
	auth := filepath.Join(home, "auth.json")
	if err := os.WriteFile(auth, []byte(`{"auths":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return &client{t: t, home: home, env: []string{"HOME=" + home, "DOCKER_CONFIG=" + filepath.Join(home, ".docker"),
		"REGISTRY_AUTH_FILE=" + auth, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "XDG_RUNTIME_DIR=" + filepath.Join(home, "run")}}
}

func (c *client) authFile() string { return filepath.Join(c.home, "auth.json") }

func (c *client) try(tool string, args ...string) (string, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.Tool(c.t, tool), args...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Dir = c.home
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c *client) run(tool string, args ...string) string {
	c.t.Helper()
	out, err := c.try(tool, args...)
	if err != nil {
		c.t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
	return out
}

// writeAuthFile writes a containers auth.json holding user/pw for host.
func writeAuthFile(t *testing.T, path, host, user, pw string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pw))}}})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// apiError is one request's status and OCI error code.
func apiError(t *testing.T, method, url, user, pw string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if user != "" {
		req.SetBasicAuth(user, pw)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	code := ""
	if len(body.Errors) > 0 {
		code = body.Errors[0].Code
	}
	return resp.StatusCode, code, resp.Header
}
