package auth_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestOpenWithAuthOff: an open registry is asked for with --auth=off, and
// serve says loudly in its log that anyone may push.
func TestOpenWithAuthOff(t *testing.T) {
	s := testenv.StartFerry(t, testenv.FerryOptions{})
	pushRandom(t, s, "any/app:1", "", "")
	if st, _, _ := apiError(t, "GET", s.URL+"/v2/any/app/tags/list", "", ""); st != 200 {
		t.Fatalf("open registry: tags/list answered %d", st)
	}
	if !strings.Contains(s.Log.String(), "AUTHENTICATION IS OFF") {
		t.Errorf("no warning in the log of an open registry:\n%s", s.Log.String())
	}
}

// TestStatusCodes: 401 UNAUTHORIZED with a Bearer challenge for missing or
// wrong credentials, 403 DENIED for a user without the permission.
func TestStatusCodes(t *testing.T) {
	s := startProtected(t)
	pushRandom(t, s, "ocp/app:1", "bob", bobPW)
	pushRandom(t, s, "other/app:1", "bob", bobPW)

	st, code, h := apiError(t, "GET", s.URL+"/v2/", "", "")
	if st != 401 || code != "UNAUTHORIZED" || !strings.HasPrefix(h.Get("WWW-Authenticate"), `Bearer realm="http://`+s.Host+`/v2/token"`) {
		t.Errorf("GET /v2/ without credentials: %d %s %q", st, code, h.Get("WWW-Authenticate"))
	}
	if st, code, _ := apiError(t, "GET", s.URL+"/v2/ocp/app/tags/list", "alice", "wrong-password"); st != 401 || code != "UNAUTHORIZED" {
		t.Errorf("wrong password: %d %s", st, code)
	}
	if st, code, _ := apiError(t, "GET", s.URL+"/v2/ocp/app/tags/list", "nobody", alicePW); st != 401 || code != "UNAUTHORIZED" {
		t.Errorf("unknown user: %d %s", st, code)
	}
	if st, _, _ := apiError(t, "GET", s.URL+"/v2/ocp/app/tags/list", "alice", alicePW); st != 200 {
		t.Errorf("alice pulls ocp/app: %d", st)
	}
	if st, code, _ := apiError(t, "POST", s.URL+"/v2/ocp/app/blobs/uploads/", "alice", alicePW); st != 403 || code != "DENIED" {
		t.Errorf("alice pushes to ocp/app: %d %s", st, code)
	}
	if st, code, _ := apiError(t, "GET", s.URL+"/v2/other/app/tags/list", "alice", alicePW); st != 403 || code != "DENIED" {
		t.Errorf("alice pulls other/app: %d %s", st, code)
	}
	if st, code, _ := apiError(t, "DELETE", s.URL+"/v2/ocp/app/manifests/1", "bob", bobPW); st != 403 || code != "DENIED" {
		t.Errorf("bob (push, no delete) deletes: %d %s", st, code)
	}
	if st, _, _ := apiError(t, "POST", s.URL+"/v2/ocp/app/blobs/uploads/", "bob", bobPW); st != 202 {
		t.Errorf("bob starts an upload: %d", st)
	}
	if strings.Contains(s.Log.String(), alicePW) || strings.Contains(s.Log.String(), "wrong-password") {
		t.Errorf("a password is in the server log")
	}
}

// TestCranePermissions: crane auth login; alice (pull on ocp/) reads ocp/,
// cannot push there, cannot read other/, and her catalog shows only ocp/.
func TestCranePermissions(t *testing.T) {
	s := startProtected(t)
	want := pushRandom(t, s, "ocp/app:1", "bob", bobPW)
	pushRandom(t, s, "other/app:1", "bob", bobPW)
	c := newClient(t)
	c.run("crane", "auth", "login", s.Host, "-u", "alice", "-p", alicePW)

	if got := strings.TrimSpace(c.run("crane", "digest", "--insecure", s.Host+"/ocp/app:1")); got != want.String() {
		t.Errorf("alice: crane digest ocp/app:1 = %q, want %s", got, want)
	}
	if out, err := c.try("crane", "tag", "--insecure", s.Host+"/ocp/app:1", "2"); err == nil || !strings.Contains(out, "DENIED") {
		t.Errorf("alice tagged in ocp/ (pull only): err %v\n%s", err, out)
	}
	if out, err := c.try("crane", "digest", "--insecure", s.Host+"/other/app:1"); err == nil || !strings.Contains(out, "DENIED") {
		t.Errorf("alice read other/app: err %v\n%s", err, out)
	}
	if got := strings.Fields(c.run("crane", "catalog", "--insecure", s.Host)); len(got) != 1 || got[0] != "ocp/app" {
		t.Errorf("alice's catalog: %q, want only ocp/app", got)
	}
}

// TestSkopeoCredentials: skopeo copies between repositories with --creds,
// and a wrong password is refused.
func TestSkopeoCredentials(t *testing.T) {
	s := startProtected(t)
	want := pushRandom(t, s, "ocp/app:1", "bob", bobPW)
	c := newClient(t)
	c.run("skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--src-creds", "bob:"+bobPW, "--dest-creds", "bob:"+bobPW,
		"docker://"+s.Host+"/ocp/app:1", "docker://"+s.Host+"/ocp/copy:1")
	out := c.run("skopeo", "inspect", "--tls-verify=false", "--creds", "alice:"+alicePW, "--format", "{{.Digest}}", "docker://"+s.Host+"/ocp/copy:1")
	if strings.TrimSpace(out) != want.String() {
		t.Errorf("copied digest %q, want %s", out, want)
	}
	if out, err := c.try("skopeo", "inspect", "--tls-verify=false", "--creds", "alice:not-her-password", "docker://"+s.Host+"/ocp/copy:1"); err == nil {
		t.Errorf("skopeo with a wrong password succeeded:\n%s", out)
	}
	if out, err := c.try("skopeo", "inspect", "--tls-verify=false", "docker://"+s.Host+"/ocp/copy:1"); err == nil {
		t.Errorf("skopeo without credentials succeeded:\n%s", out)
	}
}

// TestRobotToken: a robot token from `ferry user token create` works as
// the user's password with podman login and stops working once revoked.
func TestRobotToken(t *testing.T) {
	dir := t.TempDir()
	setupUsers(t, "--data-dir", dir)
	tok := strings.TrimSpace(mustUser(t, "", "token", "create", "bob", "--description", "ci", "--data-dir", dir))
	if !strings.HasPrefix(tok, "ferry_") {
		t.Fatalf("token create printed %q", tok)
	}
	s := testenv.StartFerry(t, testenv.FerryOptions{DataDir: dir, Secure: true})
	pushRandom(t, s, "ocp/robot:1", "bob", tok)

	c := newClient(t)
	c.run("skopeo", "login", "--tls-verify=false", "-u", "bob", "-p", tok, s.Host)
	c.run("skopeo", "inspect", "--tls-verify=false", "docker://"+s.Host+"/ocp/robot:1")

	list := mustUser(t, "", "token", "list", "bob", "--data-dir", dir)
	id := strings.Split(tok, "_")[1]
	if !strings.Contains(list, id) || !strings.Contains(list, "ci") || strings.Contains(list, tok) {
		t.Fatalf("token list (must show id and description, never the secret):\n%s", list)
	}
	mustUser(t, "", "token", "revoke", id, "--data-dir", dir)
	if st, _, _ := apiError(t, "GET", s.URL+"/v2/ocp/robot/tags/list", "bob", tok); st != 401 {
		t.Errorf("revoked token: %d, want 401", st)
	}
	if out, err := c.try("skopeo", "login", "--tls-verify=false", "-u", "bob", "-p", tok, s.Host); err == nil {
		t.Errorf("login with a revoked token succeeded:\n%s", out)
	}
}

// TestAnonymousPull: with --anonymous-pull, clients without credentials
// pull, but still cannot push.
func TestAnonymousPull(t *testing.T) {
	s := startProtected(t, "--anonymous-pull")
	want := pushRandom(t, s, "other/app:1", "bob", bobPW)
	c := newClient(t)
	if got := strings.TrimSpace(c.run("crane", "digest", "--insecure", s.Host+"/other/app:1")); got != want.String() {
		t.Errorf("anonymous crane digest = %q, want %s", got, want)
	}
	c.run("skopeo", "inspect", "--tls-verify=false", "docker://"+s.Host+"/other/app:1")
	if st, _, _ := apiError(t, "GET", s.URL+"/v2/other/app/manifests/1", "", ""); st != 200 {
		t.Errorf("anonymous GET manifest: %d", st)
	}
	if out, err := c.try("crane", "tag", "--insecure", s.Host+"/other/app:1", "2"); err == nil {
		t.Errorf("anonymous push succeeded:\n%s", out)
	}
	if st, code, _ := apiError(t, "POST", s.URL+"/v2/other/app/blobs/uploads/", "", ""); st != 401 || code != "UNAUTHORIZED" {
		t.Errorf("anonymous upload: %d %s", st, code)
	}
}

// TestAuthOff: --auth=off serves openly even with users defined.
func TestAuthOff(t *testing.T) {
	s := startProtected(t, "--auth=off")
	pushRandom(t, s, "x/app:1", "", "")
	if st, _, _ := apiError(t, "GET", s.URL+"/v2/x/app/tags/list", "", ""); st != http.StatusOK {
		t.Errorf("--auth=off: %d", st)
	}
}

// TestUserAppliesToRunningServer: a user added while serve runs can log in
// within seconds, and a revoked grant stops working.
func TestUserAppliesToRunningServer(t *testing.T) {
	s := startProtected(t)
	pushRandom(t, s, "ocp/app:1", "bob", bobPW)
	mustUser(t, "carol-pw-123\n", "add", "carol", "--password-stdin", "--data-dir", s.DataDir)
	mustUser(t, "", "grant", "carol", "pull", "ocp", "--data-dir", s.DataDir)
	if st, _, _ := apiError(t, "GET", s.URL+"/v2/ocp/app/tags/list", "carol", "carol-pw-123"); st != 200 {
		t.Errorf("new user carol: %d", st)
	}
	mustUser(t, "", "revoke", "carol", "pull", "ocp/", "--data-dir", s.DataDir)
	if st, code, _ := apiError(t, "GET", s.URL+"/v2/ocp/app/tags/list", "carol", "carol-pw-123"); st != 403 || code != "DENIED" {
		t.Errorf("after revoke: %d %s", st, code)
	}
	mustUser(t, "new-password-9\n", "passwd", "carol", "--password-stdin", "--data-dir", s.DataDir)
	if st, _, _ := apiError(t, "GET", s.URL+"/v2/", "carol", "carol-pw-123"); st != 401 {
		t.Errorf("old password after passwd: %d", st)
	}
	if st, _, _ := apiError(t, "GET", s.URL+"/v2/", "carol", "new-password-9"); st != 200 {
		t.Errorf("new password after passwd: %d", st)
	}
}

// TestMountNeedsPullOnSource: a cross-repository mount must not hand a
// user a blob from a repository they may not read, whether the mount
// names the repository or leaves the registry to find one.
func TestMountNeedsPullOnSource(t *testing.T) {
	dir := t.TempDir()
	setupUsers(t, "--data-dir", dir)
	const carolPW = "carol-secret-333"
	mustUser(t, carolPW+"\n", "add", "carol", "--password-stdin", "--data-dir", dir)
	mustUser(t, "", "grant", "carol", "push", "team/", "--data-dir", dir)
	s := testenv.StartFerry(t, testenv.FerryOptions{DataDir: dir, Secure: true})

	secret := pushRandom(t, s, "secret/app:1", "bob", bobPW)
	layer := configDigest(t, s, "secret/app", secret.String(), "bob", bobPW)
	for _, q := range []string{"?mount=" + layer, "?mount=" + layer + "&from=secret/app"} {
		if st, _, _ := apiError(t, "POST", s.URL+"/v2/team/x/blobs/uploads/"+q, "carol", carolPW); st != 202 {
			t.Errorf("carol mounts a blob of secret/app (%s): %d, want 202 (a plain upload session)", q, st)
		}
	}
	if st, _, _ := apiError(t, "HEAD", s.URL+"/v2/team/x/blobs/"+layer, "carol", carolPW); st != 404 {
		t.Errorf("blob of secret/app readable in team/x after the mount attempts: %d", st)
	}

	own := pushRandom(t, s, "team/a:1", "carol", carolPW)
	mine := configDigest(t, s, "team/a", own.String(), "carol", carolPW)
	if st, _, _ := apiError(t, "POST", s.URL+"/v2/team/b/blobs/uploads/?mount="+mine+"&from=team/a", "carol", carolPW); st != 201 {
		t.Errorf("carol mounts her own blob from team/a into team/b: %d, want 201", st)
	}
}

// configDigest returns the config blob digest of repo@ref.
func configDigest(t *testing.T, s *testenv.Server, repo, ref, user, pw string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+"/v2/"+repo+"/manifests/"+ref, nil)
	req.SetBasicAuth(user, pw)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		Config struct{ Digest string } `json:"config"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || m.Config.Digest == "" {
		t.Fatalf("manifest %s@%s: status %d, %v", repo, ref, resp.StatusCode, err)
	}
	return m.Config.Digest
}
