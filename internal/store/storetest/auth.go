package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/ferry-mirror/ferry/internal/store"
)

// AuthStore runs the suite every store.AuthStore backend passes. open
// returns a store on an empty backend; calling it twice on the same
// backend (second return: a second store on the same data) is how the
// signing key is shown to be shared.
func AuthStore(t *testing.T, open func(t *testing.T) (store.AuthStore, store.AuthStore)) {
	ctx := context.Background()
	t.Run("Users", func(t *testing.T) {
		s, _ := open(t)
		if has, err := s.HasUsers(ctx); err != nil || has {
			t.Fatalf("empty store HasUsers = %v, %v", has, err)
		}
		if err := s.CreateUser(ctx, "alice", "h1"); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateUser(ctx, "alice", "h2"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("duplicate user: %v, want ErrConflict", err)
		}
		if has, _ := s.HasUsers(ctx); !has {
			t.Error("HasUsers false after CreateUser")
		}
		if err := s.SetPassword(ctx, "alice", "h3"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetPassword(ctx, "nobody", "h"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SetPassword of unknown user: %v", err)
		}
		u, err := s.User(ctx, "alice")
		if err != nil || u.PasswordHash != "h3" || u.Created.IsZero() {
			t.Fatalf("User = %+v, %v", u, err)
		}
		if _, err := s.User(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("User(nobody): %v", err)
		}
	})
	t.Run("Grants", func(t *testing.T) {
		s, _ := open(t)
		must(t, s.CreateUser(ctx, "bob", "h"))
		must(t, s.CreateUser(ctx, "alice", "h"))
		must(t, s.AddGrant(ctx, "bob", store.Grant{Prefix: "ocp", Perm: "pull"}))
		must(t, s.AddGrant(ctx, "bob", store.Grant{Prefix: "ocp", Perm: "pull"})) // idempotent
		must(t, s.AddGrant(ctx, "bob", store.Grant{Prefix: "", Perm: "push"}))
		if err := s.AddGrant(ctx, "nobody", store.Grant{Prefix: "", Perm: "pull"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("grant to unknown user: %v", err)
		}
		u, err := s.User(ctx, "bob")
		must(t, err)
		want := []store.Grant{{Prefix: "", Perm: "push"}, {Prefix: "ocp", Perm: "pull"}}
		if !reflect.DeepEqual(u.Grants, want) {
			t.Errorf("grants %+v, want %+v", u.Grants, want)
		}
		us, err := s.Users(ctx)
		must(t, err)
		if len(us) != 2 || us[0].Name != "alice" || len(us[0].Grants) != 0 || us[1].Name != "bob" || len(us[1].Grants) != 2 {
			t.Errorf("Users = %+v", us)
		}
		must(t, s.RemoveGrant(ctx, "bob", store.Grant{Prefix: "ocp", Perm: "pull"}))
		if err := s.RemoveGrant(ctx, "bob", store.Grant{Prefix: "ocp", Perm: "pull"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second RemoveGrant: %v", err)
		}
	})
	t.Run("TokensAndDelete", func(t *testing.T) {
		s, _ := open(t)
		must(t, s.CreateUser(ctx, "ci", "h"))
		must(t, s.AddGrant(ctx, "ci", store.Grant{Prefix: "", Perm: "push"}))
		must(t, s.CreateToken(ctx, &store.Token{ID: "t1", User: "ci", SecretHash: "x1", Description: "jenkins"}))
		must(t, s.CreateToken(ctx, &store.Token{ID: "t2", User: "ci", SecretHash: "x2"}))
		if err := s.CreateToken(ctx, &store.Token{ID: "t3", User: "nobody", SecretHash: "x"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("token for unknown user: %v", err)
		}
		tk, err := s.Token(ctx, "t1")
		if err != nil || tk.User != "ci" || tk.SecretHash != "x1" || tk.Description != "jenkins" {
			t.Fatalf("Token = %+v, %v", tk, err)
		}
		ts, err := s.Tokens(ctx, "ci")
		if err != nil || len(ts) != 2 {
			t.Fatalf("Tokens = %+v, %v", ts, err)
		}
		must(t, s.DeleteToken(ctx, "t2"))
		if err := s.DeleteToken(ctx, "t2"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second DeleteToken: %v", err)
		}
		// Deleting a user takes its grants and tokens with it.
		must(t, s.DeleteUser(ctx, "ci"))
		if _, err := s.Token(ctx, "t1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("token of a deleted user: %v", err)
		}
		must(t, s.CreateUser(ctx, "ci", "h"))
		if u, _ := s.User(ctx, "ci"); len(u.Grants) != 0 {
			t.Errorf("a re-created user inherited grants %+v", u.Grants)
		}
		if err := s.DeleteUser(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeleteUser(nobody): %v", err)
		}
	})
	t.Run("SecretFirstWins", func(t *testing.T) {
		a, b := open(t)
		ca, err := a.Secret(ctx, store.SecretSharedCA, "ca-a")
		must(t, err)
		cb, err := b.Secret(ctx, store.SecretSharedCA, "ca-b")
		must(t, err)
		key, err := b.Secret(ctx, store.SecretSigningKeys, "key-b")
		must(t, err)
		if ca != "ca-a" || cb != "ca-a" || key != "key-b" {
			t.Errorf("shared CAs %q and %q, signing keys %q; want ca-a twice and the signing keys apart", ca, cb, key)
		}
	})
	t.Run("SwapSecret", func(t *testing.T) {
		a, b := open(t)
		_, err := a.Secret(ctx, store.SecretSigningKeys, "v1")
		must(t, err)
		ok, err := a.SwapSecret(ctx, store.SecretSigningKeys, "v1", "v2")
		must(t, err)
		if !ok {
			t.Fatal("swap from the stored value refused")
		}
		// b read v1 before a's swap: its swap must lose, not overwrite.
		ok, err = b.SwapSecret(ctx, store.SecretSigningKeys, "v1", "v3")
		must(t, err)
		if ok {
			t.Error("swap from a stale value succeeded")
		}
		got, err := b.Secret(ctx, store.SecretSigningKeys, "ignored")
		must(t, err)
		if got != "v2" {
			t.Errorf("secret = %q, want v2", got)
		}
		ok, err = b.SwapSecret(ctx, store.SecretAuthEnabled, "", "x")
		must(t, err)
		if ok {
			t.Error("swap of a secret never stored succeeded")
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
