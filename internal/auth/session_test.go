package auth

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-mirror/ferry/internal/store"
	"github.com/ferry-mirror/ferry/internal/store/sqlstore"
)

// TestSession: a console session is valid for its user, is never a
// bearer token (nor a bearer token a session), and ends with its
// credential, with the user, and at its expiry.
func TestSession(t *testing.T) {
	ctx := context.Background()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h, _ := HashPassword("pw-alice-1")
	if err := st.CreateUser(ctx, "alice", h); err != nil {
		t.Fatal(err)
	}
	st.AddGrant(ctx, "alice", store.Grant{Prefix: "ocp", Perm: Pull})
	a, err := New(ctx, Options{Store: st, Mode: On, Box: testBox(t)})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/repositories", nil)

	if _, _, err := a.OpenSession(ctx, "127.0.0.1", "alice", "wrong"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	s, exp, err := a.OpenSession(ctx, "127.0.0.1", "alice", "pw-alice-1")
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(exp); d < SessionLifetime-time.Minute || d > SessionLifetime {
		t.Errorf("session expires in %v, want %v", d, SessionLifetime)
	}
	id, err := a.Session(req, s)
	if err != nil || id.User != "alice" || !id.Can("ocp/x", Pull) || id.Can("other", Pull) || id.IsAdmin() {
		t.Fatalf("session identity: %+v, %v", id, err)
	}
	if _, err := a.verifyToken(ctx, s); err == nil {
		t.Error("a session is accepted as a bearer token")
	}
	bearer := a.signToken(ctx, claims{Subject: "alice", Credential: "p:" + passwordFingerprint(h),
		IssuedAt: time.Now().Unix(), Expires: time.Now().Add(TokenLifetime).Unix()})
	if _, err := a.Session(req, bearer); err == nil {
		t.Error("a bearer token is accepted as a session")
	}
	if id, err := a.Session(req, ""); err != nil || !id.Anonymous || id.Can("ocp/x", Pull) {
		t.Errorf("no session: %+v, %v", id, err)
	}

	// Expired: the clock moves past the session's life.
	a.now = func() time.Time { return time.Now().Add(SessionLifetime + time.Minute) }
	if _, err := a.Session(req, s); err == nil {
		t.Error("an expired session is accepted")
	}
	a.now = time.Now

	// A new password ends it.
	h2, _ := HashPassword("pw-alice-2")
	st.SetPassword(ctx, "alice", h2)
	if _, err := a.Session(req, s); err == nil {
		t.Error("a session survives a password change")
	}
	// A robot token's session ends with the token.
	secret, tid, th, _ := NewRobotSecret()
	st.CreateToken(ctx, &store.Token{ID: tid, User: "alice", SecretHash: th})
	rs, _, err := a.OpenSession(ctx, "127.0.0.1", "alice", secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Session(req, rs); err != nil {
		t.Fatalf("robot token session: %v", err)
	}
	st.DeleteToken(ctx, tid)
	if _, err := a.Session(req, rs); err == nil {
		t.Error("a session survives its robot token's revocation")
	}
}
