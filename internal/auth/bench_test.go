package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/ferry-mirror/ferry/internal/store"
	"github.com/ferry-mirror/ferry/internal/store/sqlstore"
)

// benchAuthorizer is an Authorizer over SQLite with user u (pull on ocp).
func benchAuthorizer(b *testing.B) *Authorizer {
	ctx := context.Background()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(b.TempDir(), "m.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	h, _ := HashPassword("password-1")
	if err := st.CreateUser(ctx, "u", h); err != nil {
		b.Fatal(err)
	}
	if err := st.AddGrant(ctx, "u", store.Grant{Prefix: "ocp", Perm: Pull}); err != nil {
		b.Fatal(err)
	}
	a, err := New(ctx, Options{Store: st, Mode: On, Box: testBox(b)})
	if err != nil {
		b.Fatal(err)
	}
	return a
}

// BenchmarkAuthorize measures the per-request cost of each credential kind.
func BenchmarkAuthorize(b *testing.B) {
	a := benchAuthorizer(b)
	cred, err := a.checkBasic(context.Background(), "127.0.0.1", "u", "password-1")
	if err != nil {
		b.Fatal(err)
	}
	now := a.now()
	tok := a.signToken(context.Background(), claims{Subject: "u", Credential: cred, IssuedAt: now.Unix(), Expires: now.Add(TokenLifetime).Unix()})
	kinds := map[string]func(r *http.Request){
		"bearer":       func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) },
		"basic-cached": func(r *http.Request) { r.SetBasicAuth("u", "password-1") },
	}
	for name, set := range kinds {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				r := httptest.NewRequest("GET", "http://reg/v2/ocp/x/manifests/1", nil)
				set(r)
				if _, err := a.Authorize(r, "ocp/x", Pull); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("basic-bcrypt", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			clear(a.basic)
			r := httptest.NewRequest("GET", "http://reg/v2/ocp/x/manifests/1", nil)
			r.SetBasicAuth("u", "password-1")
			if _, err := a.Authorize(r, "ocp/x", Pull); err != nil {
				b.Fatal(err)
			}
		}
	})
}
