package auth

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-mirror/ferry/internal/secretbox"
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
	k1, _ := newRingKey(now)
	k2, _ := newRingKey(now)
	ring := &keyring{Keys: []ringKey{k1}}
	tok := sign(k1, claims{Subject: "alice", IssuedAt: now.Unix(), Expires: now.Add(time.Minute).Unix()})
	if c, err := ring.verify(tok, now, "", TokenLifetime); err != nil || c.Subject != "alice" {
		t.Fatalf("verify = %+v, %v", c, err)
	}
	if _, err := ring.verify(tok, now.Add(2*time.Minute), "", TokenLifetime); err == nil {
		t.Error("expired token accepted")
	}
	k2.ID = k1.ID // same id, another key: a forged signature
	if _, err := (&keyring{Keys: []ringKey{k2}}).verify(tok, now, "", TokenLifetime); err == nil {
		t.Error("token accepted under another key")
	}
	// Another subject with the original signature.
	other := sign(k1, claims{Subject: "admin", IssuedAt: now.Unix(), Expires: now.Add(time.Minute).Unix()})
	_, sig, _ := strings.Cut(tok, ".")
	otherPayload, _, _ := strings.Cut(other, ".")
	if _, err := ring.verify(otherPayload+"."+sig, now, "", TokenLifetime); err == nil {
		t.Error("forged payload accepted")
	}
	long := sign(k1, claims{Subject: "alice", IssuedAt: now.Unix(), Expires: now.Add(TokenLifetime + time.Second).Unix()})
	if _, err := ring.verify(long, now, "", TokenLifetime); err == nil {
		t.Error("a token living longer than the server's maximum accepted")
	}
	future := sign(k1, claims{Subject: "alice", IssuedAt: now.Add(time.Hour).Unix(), Expires: now.Add(time.Hour + time.Minute).Unix()})
	if _, err := ring.verify(future, now, "", TokenLifetime); err == nil {
		t.Error("a token issued in the future accepted")
	}
	for _, bad := range []string{"", ".", "abc", tok + "x"} {
		if _, err := ring.verify(bad, now, "", TokenLifetime); err == nil {
			t.Errorf("verify(%q) accepted", bad)
		}
	}
}

func TestKeyringPrune(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	old, _ := newRingKey(now.Add(-2 * time.Hour))
	mid, _ := newRingKey(now.Add(-time.Hour)) // replaced old an hour ago
	cur, _ := newRingKey(now.Add(-time.Minute))
	r := &keyring{Keys: []ringKey{old, mid, cur}}
	if !r.prune(now) {
		t.Fatal("nothing pruned")
	}
	// old's tokens are long expired; mid signed until a minute ago, so
	// its tokens still live.
	if len(r.Keys) != 2 || r.Keys[0].ID != mid.ID || r.Keys[1].ID != cur.ID {
		t.Errorf("kept %v, want mid and cur", r.Keys)
	}
	single := &keyring{Keys: []ringKey{old}}
	if single.prune(now) || len(single.Keys) != 1 {
		t.Error("the only key was pruned")
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
	a, err := New(ctx, Options{Store: st, Box: testBox(t)})
	if err != nil {
		t.Fatal(err)
	}
	if on, _ := a.Enforced(ctx); !on {
		t.Fatal("not enforced by default")
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

func testBox(t testing.TB) *secretbox.Box {
	t.Helper()
	text, err := secretbox.Generate()
	if err != nil {
		t.Fatal(err)
	}
	box, err := secretbox.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	return box
}
