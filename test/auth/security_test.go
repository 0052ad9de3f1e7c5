package auth_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/ferry-mirror/ferry/internal/secretbox"
	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestSecureByDefault: a first `ferry serve` with no flags refuses
// anonymous pushes, creates the admin with a random password shown once
// and kept in a 0600 file, and keeps its data private to its user.
func TestSecureByDefault(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := testenv.StartFerry(t, testenv.FerryOptions{DataDir: dir, Secure: true})
	if st, code, _ := apiError(t, "POST", s.URL+"/v2/any/app/blobs/uploads/", "", ""); st != 401 || code != "UNAUTHORIZED" {
		t.Errorf("anonymous upload on a first serve: %d %s, want 401", st, code)
	}
	if st, _, _ := apiError(t, "DELETE", s.URL+"/v2/any/app/manifests/sha256:"+strings.Repeat("0", 64), "", ""); st != 401 {
		t.Errorf("anonymous delete on a first serve: %d, want 401", st)
	}
	pwFile := filepath.Join(dir, "initial-admin-password")
	b, err := os.ReadFile(pwFile)
	if err != nil {
		t.Fatalf("no initial admin password file: %v\n%s", err, s.Log.String())
	}
	pw := strings.TrimSpace(string(b))
	if len(pw) < 20 || !strings.Contains(s.Log.String(), pw) {
		t.Errorf("password %q: too short, or not shown in serve's output", pw)
	}
	pushRandom(t, s, "ocp/app:1", "admin", pw)
	if st, _, _ := apiError(t, "GET", s.URL+"/v2/ocp/app/tags/list", "admin", "wrong-password"); st != 401 {
		t.Errorf("admin with a wrong password: %d", st)
	}

	// Private data: the dir 0700, every file in it 0600.
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode: %v %v, want 0700", fi.Mode().Perm(), err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || e.IsDir() {
			continue
		}
		files = append(files, e.Name())
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", e.Name(), fi.Mode().Perm())
		}
	}
	for _, want := range []string{"metadata.db", "metadata.db-wal", "secrets.key", "initial-admin-password"} {
		if !strings.Contains(strings.Join(files, " "), want) {
			t.Errorf("no %s in the data dir (files: %v)", want, files)
		}
	}

	// A restart creates no second admin and keeps the first password.
	s.Stop()
	s2 := testenv.StartFerry(t, testenv.FerryOptions{DataDir: dir, Secure: true})
	if strings.Contains(s2.Log.String(), "created the initial admin") {
		t.Error("a restart created the admin again")
	}
	if st, _, _ := apiError(t, "GET", s2.URL+"/v2/ocp/app/tags/list", "admin", pw); st != 200 {
		t.Errorf("admin after restart: %d", st)
	}
}

// TestLastUserDeletedStaysProtected: deleting every user never reopens
// the registry, not after a restart, and not with --auth=off.
func TestLastUserDeletedStaysProtected(t *testing.T) {
	dir := t.TempDir()
	s := testenv.StartFerry(t, testenv.FerryOptions{DataDir: dir, Secure: true})
	mustUser(t, "", "delete", "admin", "--data-dir", dir)
	s.Stop()
	s = testenv.StartFerry(t, testenv.FerryOptions{DataDir: dir, Secure: true})
	if st, _, _ := apiError(t, "POST", s.URL+"/v2/x/app/blobs/uploads/", "", ""); st != 401 {
		t.Errorf("anonymous upload after deleting the last user and a restart: %d, want 401", st)
	}
	if _, err := os.Stat(filepath.Join(dir, "initial-admin-password")); err != nil {
		t.Errorf("password file: %v", err)
	}
	if !strings.Contains(s.Log.String(), "nobody can log in") {
		t.Errorf("no warning that nobody can log in:\n%s", s.Log.String())
	}
	s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, testenv.FerryBinary(t), "serve", "--plain-http", "--listen", "127.0.0.1:0", "--data-dir", dir, "--auth=off").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "stays on") {
		t.Errorf("--auth=off on a store that had authentication: err %v\n%s", err, out)
	}
}

// TestReplicaOfProtectedStoreIsProtected: a new replica on a shared store
// whose users are all gone comes up protected.
func TestReplicaOfProtectedStoreIsProtected(t *testing.T) {
	pg := testenv.StartPostgres(t)
	db := pg.NewDatabase(t)
	m := testenv.StartMinIO(t)
	args := []string{"--metadata", db, "--blob-store", m.BlobStoreURL(testenv.BucketName())}
	env := append(m.Env(), sharedSecretsKey)
	a := testenv.StartFerry(t, testenv.FerryOptions{Args: args, Env: env, Secure: true})
	if !strings.Contains(a.Log.String(), "created the initial admin") {
		t.Fatalf("first replica created no admin:\n%s", a.Log.String())
	}
	mustUser(t, "", "delete", "admin", "--metadata", db)
	b := testenv.StartFerry(t, testenv.FerryOptions{Args: args, Env: env, Secure: true})
	if strings.Contains(b.Log.String(), "created the initial admin") {
		t.Error("second replica created another admin")
	}
	if st, _, _ := apiError(t, "POST", b.URL+"/v2/x/app/blobs/uploads/", "", ""); st != 401 {
		t.Errorf("anonymous upload to a new replica: %d, want 401", st)
	}
	// A replica given another secrets key cannot use the sealed keys, and
	// says which setting to fix.
	other := append(m.Env(), "FERRY_SECRETS_KEY=ZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY=")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.FerryBinary(t), append([]string{"serve", "--plain-http", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, args...)...)
	cmd.Env = append(os.Environ(), other...)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "FERRY_SECRETS_KEY") {
		t.Errorf("replica with another secrets key: err %v\n%s", err, out)
	}
}

// TestForgedTokenFromCopiedDatabase: whoever copies metadata.db cannot
// forge a token: the signing keys in it are sealed with secrets.key. The
// same forgery made with the unsealed key is accepted, which shows the
// forgery itself is well made.
func TestForgedTokenFromCopiedDatabase(t *testing.T) {
	dir := t.TempDir()
	s := testenv.StartFerry(t, testenv.FerryOptions{DataDir: dir, Secure: true})
	pushRandom(t, s, "ocp/app:1", "admin", adminPassword(t, dir))

	stolen := filepath.Join(t.TempDir(), "copy.db")
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, "metadata.db"+suffix))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(stolen+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("sqlite", stolen)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var stored, hash string
	if err := db.QueryRow(`SELECT secret FROM signing_keys WHERE id = 1`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT password_hash FROM users WHERE name = 'admin'`).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if !secretbox.Sealed(stored) {
		t.Fatalf("signing keys stored in plain text: %.40s…", stored)
	}
	sum := sha256.Sum256([]byte("ferry token credential\x00" + hash))
	now := time.Now()
	forge := func(kid string, key []byte) string {
		body, _ := json.Marshal(map[string]any{"kid": kid, "sub": "admin", "cred": "p:" + hex.EncodeToString(sum[:12]),
			"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()})
		p := base64.RawURLEncoding.EncodeToString(body)
		m := hmac.New(sha256.New, key)
		m.Write([]byte(p))
		return p + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	del := func(tok string) int {
		req, _ := http.NewRequest("DELETE", s.URL+"/v2/ocp/app/manifests/1", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// What the database gives: the sealed value, as the key and parts of it.
	for _, key := range []string{stored, strings.TrimPrefix(stored, "ferry-sealed:v1:")} {
		if st := del(forge("", []byte(key))); st != 401 {
			t.Errorf("token forged from the database: DELETE answered %d, want 401", st)
		}
	}
	// With the secrets key (which the database does not hold) the ring
	// opens, and the same forgery works.
	keyText, err := os.ReadFile(filepath.Join(dir, "secrets.key"))
	if err != nil {
		t.Fatal(err)
	}
	box, err := secretbox.Parse(string(keyText))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := box.Open("token signing keys", stored)
	if err != nil {
		t.Fatal(err)
	}
	var ring struct {
		Keys []struct {
			ID  string `json:"kid"`
			Key []byte `json:"key"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(plain), &ring); err != nil || len(ring.Keys) == 0 {
		t.Fatalf("ring: %v %s", err, plain)
	}
	k := ring.Keys[len(ring.Keys)-1]
	if st := del(forge(k.ID, k.Key)); st != 202 {
		t.Errorf("control: token made with the real key answered %d, want 202", st)
	}
}

// TestTokensDieWithTheirCredential: a bearer token stops working at once
// when the password it came from changes, the robot token it came from is
// revoked, or its user is deleted, even if re-created with the same
// password.
func TestTokensDieWithTheirCredential(t *testing.T) {
	s := startProtected(t)
	pushRandom(t, s, "ocp/app:1", "bob", bobPW)
	dir := s.DataDir
	pull := func(tok string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", s.URL+"/v2/ocp/app/tags/list", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	tok := bearerToken(t, s, "alice", alicePW)
	if st := pull(tok); st != 200 {
		t.Fatalf("fresh token: %d", st)
	}
	mustUser(t, "alice-new-password\n", "passwd", "alice", "--password-stdin", "--data-dir", dir)
	if st := pull(tok); st != 401 {
		t.Errorf("token after its password changed: %d, want 401", st)
	}
	if st := pull(bearerToken(t, s, "alice", "alice-new-password")); st != 200 {
		t.Errorf("token with the new password: %d", st)
	}

	robot := strings.TrimSpace(mustUser(t, "", "token", "create", "bob", "--data-dir", dir))
	rtok := bearerToken(t, s, "bob", robot)
	other := strings.TrimSpace(mustUser(t, "", "token", "create", "bob", "--data-dir", dir))
	otok := bearerToken(t, s, "bob", other)
	ptok := bearerToken(t, s, "bob", bobPW)
	mustUser(t, "", "token", "revoke", strings.Split(robot, "_")[1], "--data-dir", dir)
	if st := pull(rtok); st != 401 {
		t.Errorf("token from a revoked robot token: %d, want 401", st)
	}
	if pull(otok) != 200 || pull(ptok) != 200 {
		t.Error("revoking one robot token ended tokens from other credentials of the same user")
	}

	mustUser(t, "", "delete", "bob", "--data-dir", dir)
	mustUser(t, bobPW+"\n", "add", "bob", "--password-stdin", "--data-dir", dir)
	mustUser(t, "", "grant", "bob", "push", "*", "--data-dir", dir)
	if st := pull(ptok); st != 401 {
		t.Errorf("token of a deleted user, re-created with the same password: %d, want 401", st)
	}
	if st := pull(bearerToken(t, s, "bob", bobPW)); st != 200 {
		t.Errorf("the re-created user's own token: %d", st)
	}
}

// TestRotateSigningKey: rotating the signing key on a running registry
// keeps tokens already issued valid (no downtime) and seals the new ring.
func TestRotateSigningKey(t *testing.T) {
	s := startProtected(t)
	pushRandom(t, s, "ocp/app:1", "bob", bobPW)
	tok := bearerToken(t, s, "alice", alicePW)
	out := mustUser(t, "", "rotate-signing-key", "--data-dir", s.DataDir)
	if !strings.Contains(out, "new signing key") || !strings.Contains(out, "2 key(s) kept") {
		t.Errorf("rotate-signing-key said:\n%s", out)
	}
	req, _ := http.NewRequest("GET", s.URL+"/v2/ocp/app/tags/list", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("token issued before the rotation: %d, want 200", resp.StatusCode)
	}
	// Without the secrets key the rotation cannot be done.
	if _, err := ferryUser(t, "", "rotate-signing-key", "--data-dir", s.DataDir, "--secrets-key-file", filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("rotation without the secrets key succeeded")
	}
}

func adminPassword(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "initial-admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// bearerToken logs in at /v2/token as docker clients do.
func bearerToken(t *testing.T, s *testenv.Server, user, pw string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+"/v2/token?service="+s.Host+"&scope=repository:ocp/app:pull", nil)
	req.SetBasicAuth(user, pw)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != 200 || tok.Token == "" {
		t.Fatalf("token for %s: %d %v", user, resp.StatusCode, err)
	}
	return tok.Token
}
