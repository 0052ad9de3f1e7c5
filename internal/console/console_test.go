package console

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ferry-mirror/ferry/internal/auth"
	"github.com/ferry-mirror/ferry/internal/secretbox"
	"github.com/ferry-mirror/ferry/internal/store"
	"github.com/ferry-mirror/ferry/internal/store/fs"
	"github.com/ferry-mirror/ferry/internal/store/sqlstore"
)

// TestCookiesOverTLS: behind TLS both cookies are Secure, so a browser
// never sends them over plain HTTP.
func TestCookiesOverTLS(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	blobs, err := fs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	hash, _ := auth.HashPassword("pw-root-1")
	meta.CreateUser(ctx, "root", hash)
	meta.AddGrant(ctx, "root", store.Grant{Perm: auth.Admin})
	text, _ := secretbox.Generate()
	box, _ := secretbox.Parse(text)
	a, err := auth.New(ctx, auth.Options{Store: meta, Mode: auth.On, Box: box})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Meta: meta, Blobs: blobs, Auth: a, Users: meta})
	if err != nil {
		t.Fatal(err)
	}
	h := c.Handler()

	req := httptest.NewRequest(http.MethodGet, "https://mirror.lan/login", nil)
	req.TLS = &tls.ConnectionState{}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	csrfCookie := rec.Result().Cookies()[0]
	if !csrfCookie.Secure || !csrfCookie.HttpOnly || csrfCookie.SameSite != http.SameSiteStrictMode {
		t.Errorf("CSRF cookie over TLS: %+v", csrfCookie)
	}
	tok := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(rec.Body.String())[1]
	form := url.Values{"csrf": {tok}, "user": {"root"}, "password": {"pw-root-1"}}
	req = httptest.NewRequest(http.MethodPost, "https://mirror.lan/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.TLS = &tls.ConnectionState{}
	req.AddCookie(csrfCookie)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("sign in: %d\n%s", rec.Code, rec.Body)
	}
	var found bool
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == sessionCookie {
			found = true
			if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.MaxAge <= 0 {
				t.Errorf("session cookie over TLS: %+v", ck)
			}
		}
	}
	if !found {
		t.Fatal("no session cookie")
	}
}
