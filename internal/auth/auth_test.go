package auth

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-mirror/ferry/internal/store"
	"github.com/ferry-mirror/ferry/internal/store/sqlstore"
)

func TestAllowed(t *testing.T) {
	grants := []store.Grant{{Prefix: "ocp", Perm: Pull}, {Prefix: "team/a", Perm: Push}, {Prefix: "old", Perm: Delete}}
	cases := []struct {
		repo, action string
		want         bool
	}{
		{"ocp", Pull, true}, {"ocp/release", Pull, true}, {"ocp2/x", Pull, false}, {"ocp/release", Push, false},
		{"team/a/x", Push, true}, {"team/a/x", Pull, true}, {"team/a/x", Delete, false}, {"team/ab", Pull, false},
		{"old/x", Delete, true}, {"old/x", Pull, true}, {"old/x", Push, false}, {"other", Pull, false},
	}
	for _, c := range cases {
		if got := Allowed(grants, c.repo, c.action); got != c.want {
			t.Errorf("Allowed(%s, %s) = %v, want %v", c.repo, c.action, got, c.want)
		}
	}
	if !Allowed([]store.Grant{{Prefix: "", Perm: Admin}}, "any/thing", Delete) {
		t.Error("admin on every repository does not allow delete")
	}
	for in, want := range map[string]string{"*": "", "/": "", "ocp/": "ocp", " a/b/ ": "a/b"} {
		if got := NormalizePrefix(in); got != want {
			t.Errorf("NormalizePrefix(%q) = %q, want %q", in, got, want)
		}
	}
	if _, err := ParsePerm("write"); err == nil || !strings.Contains(err.Error(), "pull, push, delete or admin") {
		t.Errorf("ParsePerm(write): %v", err)
	}
}

func TestBearerToken(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := signer{key: []byte("k1")}
	tok := s.sign(claims{Subject: "alice", IssuedAt: now.Unix(), Expires: now.Add(time.Minute).Unix()})
	if c, err := s.verify(tok, now); err != nil || c.Subject != "alice" {
		t.Fatalf("verify = %+v, %v", c, err)
	}
	if _, err := s.verify(tok, now.Add(2*time.Minute)); err == nil {
		t.Error("expired token accepted")
	}
	if _, err := (signer{key: []byte("k2")}).verify(tok, now); err == nil {
		t.Error("token accepted under another key")
	}
	// Another subject with the original signature.
	other := s.sign(claims{Subject: "admin", IssuedAt: now.Unix(), Expires: now.Add(time.Minute).Unix()})
	_, sig, _ := strings.Cut(tok, ".")
	otherPayload, _, _ := strings.Cut(other, ".")
	if _, err := s.verify(otherPayload+"."+sig, now); err == nil {
		t.Error("forged payload accepted")
	}
	for _, bad := range []string{"", ".", "abc", tok + "x"} {
		if _, err := s.verify(bad, now); err == nil {
			t.Errorf("verify(%q) accepted", bad)
		}
	}
}

func TestRobotSecret(t *testing.T) {
	secret, id, hash, err := NewRobotSecret()
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := robotID(secret); !ok || got != id || hashSecret(secret) != hash {
		t.Fatalf("robotID(%q) = %q, %v; id %s", secret, got, ok, id)
	}
	if _, ok := robotID("ordinary-password"); ok {
		t.Error("a password taken for a robot token")
	}
}

// TestAuthorizer runs the whole decision over a real SQLite store.
func TestAuthorizer(t *testing.T) {
	ctx := context.Background()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := New(ctx, Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if on, _ := a.Enforced(ctx); on {
		t.Fatal("enforced with no users")
	}
	h, err := HashPassword("password-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateUser(ctx, "u", h); err != nil {
		t.Fatal(err)
	}
	if err := st.AddGrant(ctx, "u", store.Grant{Prefix: "ocp", Perm: Pull}); err != nil {
		t.Fatal(err)
	}
	a.usersAt = time.Time{} // skip the cache delay
	req := func(user, pw string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "http://reg.lan/v2/token", nil)
		if user != "" {
			r.SetBasicAuth(user, pw)
		}
		w := httptest.NewRecorder()
		a.ServeToken(w, r)
		return w
	}
	if w := req("u", "password-1"); w.Code != 200 || !strings.Contains(w.Body.String(), `"access_token"`) {
		t.Errorf("token for good password: %d %s", w.Code, w.Body)
	}
	if w := req("u", "password-2"); w.Code != 401 {
		t.Errorf("token for wrong password: %d", w.Code)
	}
	if w := req("", ""); w.Code != 401 {
		t.Errorf("token without credentials (no anonymous pull): %d", w.Code)
	}
	r := httptest.NewRequest("GET", "http://reg.lan/v2/other/tags/list", nil)
	r.SetBasicAuth("u", "password-1")
	_, err = a.Authorize(r, "other", Pull)
	if rf, ok := err.(*Refusal); !ok || rf.Challenge() != "" {
		t.Errorf("pull other: %v, want a 403 refusal", err)
	}
	r = httptest.NewRequest("GET", "http://reg.lan/v2/ocp/tags/list", nil)
	_, err = a.Authorize(r, "ocp", Pull)
	if rf, ok := err.(*Refusal); !ok || !strings.Contains(rf.Challenge(), `scope="repository:ocp:pull"`) {
		t.Errorf("anonymous pull: %v, want a 401 with the scope", err)
	}
	if _, err := HashPassword("short"); err == nil {
		t.Error("a 5-character password accepted")
	}
}
