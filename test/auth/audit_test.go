package auth_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestAuditLog: pushes, deletes, logins (good and bad) and user,
// permission and token changes land in <data-dir>/audit.log as JSON lines
// with who, from where, on what and the result, and no secret does.
func TestAuditLog(t *testing.T) {
	dir := t.TempDir()
	s := testenv.StartFerry(t, testenv.FerryOptions{DataDir: dir, Secure: true})
	pw := adminPassword(t, dir)
	mustUser(t, alicePW+"\n", "add", "alice", "--password-stdin", "--data-dir", dir)
	mustUser(t, "", "grant", "alice", "pull", "ocp/", "--data-dir", dir)
	robot := strings.TrimSpace(mustUser(t, "", "token", "create", "alice", "--data-dir", dir))

	d := pushRandom(t, s, "ocp/app:1", "admin", pw)
	bearerToken(t, s, "alice", alicePW)
	const typedPassword = "Hunter2-typed-into-the-user-field"
	apiError(t, "GET", s.URL+"/v2/token?service=x", "alice", "wrong-password")
	apiError(t, "GET", s.URL+"/v2/token?service=x", typedPassword, "x")
	if st, _, _ := apiError(t, "DELETE", s.URL+"/v2/ocp/app/manifests/"+d.String(), "alice", alicePW); st != 403 {
		t.Errorf("alice (pull only) deletes: %d", st)
	}
	if st, _, _ := apiError(t, "DELETE", s.URL+"/v2/ocp/app/manifests/"+d.String(), "admin", pw); st != 202 {
		t.Errorf("admin deletes: %d", st)
	}

	raw, err := os.ReadFile(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{pw, alicePW, robot, typedPassword, "wrong-password"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("a secret is in the audit log: %q", secret)
		}
	}
	var events []map[string]any
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line is not JSON: %v: %s", err, sc.Text())
		}
		events = append(events, e)
	}
	find := func(want map[string]any) {
		t.Helper()
	next:
		for _, e := range events {
			for k, v := range want {
				if e[k] != v {
					continue next
				}
			}
			return
		}
		t.Errorf("no audit event with %v in:\n%s", want, raw)
	}
	find(map[string]any{"action": "user.add", "target": "alice", "result": "ok", "remote": "cli"})
	find(map[string]any{"action": "grant", "target": "alice pull ocp/", "result": "ok"})
	find(map[string]any{"action": "token.create", "target": "alice", "result": "ok"})
	find(map[string]any{"action": "push", "user": "admin", "repository": "ocp/app", "reference": "1", "digest": d.String(), "result": "ok", "remote": "127.0.0.1"})
	find(map[string]any{"action": "login", "user": "alice", "result": "ok", "detail": "password"})
	find(map[string]any{"action": "login", "user": "alice", "result": "failed"})
	find(map[string]any{"action": "login", "result": "failed", "detail": "unknown user name (not recorded)"})
	find(map[string]any{"action": "delete", "user": "alice", "repository": "ocp/app", "reference": d.String(), "result": "refused", "status": float64(403)})
	find(map[string]any{"action": "delete", "user": "admin", "repository": "ocp/app", "reference": d.String(), "result": "ok"})
	if fi, err := os.Stat(filepath.Join(dir, "audit.log")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("audit.log mode: %v %v, want 0600", fi.Mode().Perm(), err)
	}
}
