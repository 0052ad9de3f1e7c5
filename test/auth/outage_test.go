package auth_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestUserStoreOutage restarts PostgreSQL under a replica with
// authentication on: logins and authenticated requests get 503 with
// Retry-After while it is down, never 500, and work again once it is
// back, without restarting the replica.
func TestUserStoreOutage(t *testing.T) {
	pg := testenv.StartPostgres(t)
	db := pg.NewDatabase(t)
	setupUsers(t, "--metadata", db)
	m := testenv.StartMinIO(t)
	s := testenv.StartFerry(t, testenv.FerryOptions{
		Args: []string{"--metadata", db, "--blob-store", m.BlobStoreURL(testenv.BucketName())},
		Env:  append(m.Env(), sharedSecretsKey), Secure: true,
	})
	get := func(url string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.SetBasicAuth("bob", bobPW)
		resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	token := s.URL + "/v2/token?service=" + s.Host + "&scope=repository:team/app:pull"
	tags := s.URL + "/v2/team/app/tags/list"
	if resp := get(token); resp.StatusCode != http.StatusOK {
		t.Fatalf("login before the outage: %d", resp.StatusCode)
	}
	pg.Stop()
	for _, u := range []string{token, tags} {
		if resp := get(u); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("GET %s with PostgreSQL down: %d, Retry-After %q; want 503 with Retry-After", u, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	for get(token).StatusCode != http.StatusOK {
		if time.Since(back) > 10*time.Second {
			t.Fatal("login still failing 10 s after PostgreSQL came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resp := get(tags); resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusOK {
		t.Errorf("tags of a repository nobody pushed after recovery: %d, want 404", resp.StatusCode)
	}
}
