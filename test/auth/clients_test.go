package auth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// podmanClient gives podman private storage and configuration.
func podmanClient(t *testing.T) *client {
	c := newClient(t)
	testenv.Tool(t, "podman")
	storage := fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n", filepath.Join(c.home, "root"), filepath.Join(c.home, "runroot"))
	conf := fmt.Sprintf("[engine]\nevents_logger = \"file\"\ncgroup_manager = \"cgroupfs\"\nevents_logfile_path = %q\n", filepath.Join(c.home, "events.log"))
	for n, body := range map[string]string{"storage.conf": storage, "containers.conf": conf, "registries.conf": "unqualified-search-registries = []\n"} {
		if err := os.WriteFile(filepath.Join(c.home, n), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c.env = append(c.env, "CONTAINERS_STORAGE_CONF="+filepath.Join(c.home, "storage.conf"),
		"CONTAINERS_CONF="+filepath.Join(c.home, "containers.conf"), "CONTAINERS_REGISTRIES_CONF="+filepath.Join(c.home, "registries.conf"))
	return c
}

// TestPodmanLoginPushPull: podman login refuses a wrong password, then
// logs in, pulls and pushes; alice cannot push where she may only pull.
func TestPodmanLoginPushPull(t *testing.T) {
	s := startProtected(t)
	pushRandom(t, s, "ocp/app:1", "bob", bobPW)
	c := podmanClient(t)
	if out, err := c.try("podman", "login", "--tls-verify=false", "-u", "bob", "-p", "wrong-password", s.Host); err == nil {
		t.Fatalf("podman login with a wrong password succeeded:\n%s", out)
	}
	c.run("podman", "login", "--tls-verify=false", "-u", "bob", "-p", bobPW, s.Host)
	c.run("podman", "pull", "--tls-verify=false", s.Host+"/ocp/app:1")
	c.run("podman", "tag", s.Host+"/ocp/app:1", s.Host+"/ocp/pushed:2")
	c.run("podman", "push", "--tls-verify=false", s.Host+"/ocp/pushed:2")
	if st, _, _ := apiError(t, "GET", s.URL+"/v2/ocp/pushed/manifests/2", "alice", alicePW); st != 200 {
		t.Errorf("podman-pushed image: alice GET manifest %d", st)
	}
	c.run("podman", "login", "--tls-verify=false", "-u", "alice", "-p", alicePW, s.Host)
	c.run("podman", "tag", s.Host+"/ocp/app:1", s.Host+"/ocp/alice:1")
	if out, err := c.try("podman", "push", "--tls-verify=false", s.Host+"/ocp/alice:1"); err == nil {
		t.Errorf("alice (pull only) pushed with podman:\n%s", out)
	}
}

// TestRegctl: regctl logs in and copies an image; tag list as alice.
func TestRegctl(t *testing.T) {
	s := startProtected(t)
	want := pushRandom(t, s, "ocp/app:1", "bob", bobPW)
	c := newClient(t)
	c.run("regctl", "--host", "reg="+s.Host+",tls=disabled", "registry", "login", s.Host, "-u", "bob", "-p", bobPW)
	// Logged in, the ping of `registry set` passes and the setting sticks.
	c.run("regctl", "registry", "set", "--tls", "disabled", s.Host)
	c.run("regctl", "image", "copy", s.Host+"/ocp/app:1", s.Host+"/ocp/regctl:1")
	if got := strings.TrimSpace(c.run("regctl", "image", "digest", s.Host+"/ocp/regctl:1")); got != want.String() {
		t.Errorf("regctl copy: digest %s, want %s", got, want)
	}
	c.run("regctl", "registry", "login", s.Host, "-u", "alice", "-p", alicePW)
	if tags := c.run("regctl", "tag", "ls", s.Host+"/ocp/regctl"); strings.TrimSpace(tags) != "1" {
		t.Errorf("regctl tag ls as alice: %q", tags)
	}
	if out, err := c.try("regctl", "image", "copy", s.Host+"/ocp/app:1", s.Host+"/ocp/alice:1"); err == nil {
		t.Errorf("alice (pull only) copied with regctl:\n%s", out)
	}
}

// TestOras: oras logs in, pushes and pulls an artifact.
func TestOras(t *testing.T) {
	s := startProtected(t)
	c := newClient(t)
	cfg := filepath.Join(c.home, "oras.json")
	if err := os.WriteFile(filepath.Join(c.home, "hello.txt"), []byte("hello from oras\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.run("oras", "login", "--plain-http", "--registry-config", cfg, "-u", "bob", "-p", bobPW, s.Host)
	c.run("oras", "push", "--plain-http", "--registry-config", cfg, s.Host+"/ocp/artifact:1", "hello.txt")
	if err := os.Remove(filepath.Join(c.home, "hello.txt")); err != nil {
		t.Fatal(err)
	}
	c.run("oras", "pull", "--plain-http", "--registry-config", cfg, s.Host+"/ocp/artifact:1")
	if b, err := os.ReadFile(filepath.Join(c.home, "hello.txt")); err != nil || string(b) != "hello from oras\n" {
		t.Errorf("oras pull: %q %v", b, err)
	}
	if out, err := c.try("oras", "login", "--plain-http", "--registry-config", cfg, "-u", "bob", "-p", "wrong-password", s.Host); err == nil {
		t.Errorf("oras login with a wrong password succeeded:\n%s", out)
	}
}

// TestReplicasShareTokens: two replicas on one PostgreSQL; a user added
// through --metadata, a bearer token issued by replica A is accepted by
// replica B.
func TestReplicasShareTokens(t *testing.T) {
	pg := testenv.StartPostgres(t)
	db := pg.NewDatabase(t)
	setupUsers(t, "--metadata", db)
	m := testenv.StartMinIO(t)
	args := []string{"--metadata", db, "--blob-store", m.BlobStoreURL(testenv.BucketName())}
	a := testenv.StartFerry(t, testenv.FerryOptions{Args: args, Env: append(m.Env(), sharedSecretsKey), Secure: true})
	b := testenv.StartFerry(t, testenv.FerryOptions{Args: args, Env: append(m.Env(), sharedSecretsKey), Secure: true})

	req, _ := http.NewRequest("GET", a.URL+"/v2/token?service="+a.Host+"&scope=repository:ocp/app:pull", nil)
	req.SetBasicAuth("alice", alicePW)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		IssuedAt    string `json:"issued_at"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != 200 || tok.Token == "" || tok.AccessToken != tok.Token || tok.ExpiresIn < 60 || tok.IssuedAt == "" {
		t.Fatalf("token from replica A: %d %+v", resp.StatusCode, tok)
	}
	bearer := func(s *testenv.Server, path, token string) int {
		req, _ := http.NewRequest("GET", s.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := bearer(b, "/v2/", tok.Token); st != 200 {
		t.Errorf("replica B refused replica A's token: %d", st)
	}
	if st := bearer(b, "/v2/other/app/tags/list", tok.Token); st != 403 {
		t.Errorf("replica B, alice on other/: %d, want 403", st)
	}
	if st := bearer(b, "/v2/", tok.Token[:len(tok.Token)-2]+"AA"); st != 401 {
		t.Errorf("replica B, tampered token: %d, want 401", st)
	}
	// Clients too: push through A, pull through B as bob.
	want := pushRandom(t, a, "ocp/ha:1", "bob", bobPW)
	c := newClient(t)
	out := c.run("skopeo", "inspect", "--tls-verify=false", "--creds", "alice:"+alicePW, "--format", "{{.Digest}}", "docker://"+b.Host+"/ocp/ha:1")
	if strings.TrimSpace(out) != want.String() {
		t.Errorf("pull through replica B: %q, want %s", out, want)
	}
}

// TestMirrorIntoProtectedFerry: ferry mirror (m2m) authenticates to a
// protected ferry with --authfile, and is refused without it.
func TestMirrorIntoProtectedFerry(t *testing.T) {
	src := testenv.StartDockerRegistry(t)
	want := pushRandom(t, src, "library/app:1.0", "", "")
	dst := startProtected(t)
	dir := t.TempDir()
	isc := testenv.WriteImageSetConfig(t, "  additionalImages:\n  - name: "+src.Host+"/library/app:1.0\n")
	authFile := filepath.Join(dir, "auth.json")
	writeAuthFile(t, authFile, dst.Host, "bob", bobPW)
	mirror := func(extra ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		args := append([]string{"mirror", "-c", isc, "--workspace", "file://" + filepath.Join(dir, "ws"), "docker://" + dst.Host + "/ocp", "--v2",
			"--src-tls-verify=false", "--dest-tls-verify=false", "--retry-times=1", "--retry-delay=100ms"}, extra...)
		cmd := exec.CommandContext(ctx, testenv.FerryBinary(t), args...)
		cmd.Env = append(os.Environ(), "HOME="+dir, "REGISTRY_AUTH_FILE=", "DOCKER_CONFIG="+filepath.Join(dir, ".docker"), "XDG_RUNTIME_DIR="+filepath.Join(dir, "run"))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := mirror(); err == nil {
		t.Errorf("mirror into a protected ferry without credentials succeeded:\n%s", out)
	}
	if out, err := mirror("--authfile", authFile); err != nil {
		t.Fatalf("mirror with --authfile: %v\n%s", err, out)
	}
	if st, _, h := apiError(t, "HEAD", dst.URL+"/v2/ocp/library/app/manifests/1.0", "alice", alicePW); st != 200 || h.Get("Docker-Content-Digest") != want.String() {
		t.Errorf("mirrored image: %d digest %s, want %s", st, h.Get("Docker-Content-Digest"), want)
	}
}
