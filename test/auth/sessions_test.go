package auth_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestUploadSessionQuotaAcrossReplicas: a user's open upload sessions are
// counted in the shared metadata store, so the limit holds whichever
// replica each session was opened on; other users are not affected, and
// cancelling a session makes room again.
func TestUploadSessionQuotaAcrossReplicas(t *testing.T) {
	pg := testenv.StartPostgres(t)
	db := pg.NewDatabase(t)
	setupUsers(t, "--metadata", db)
	mustUser(t, "carol-secret-3\n", "add", "carol", "--password-stdin", "--metadata", db)
	mustUser(t, "", "grant", "carol", "push", "*", "--metadata", db)
	m := testenv.StartMinIO(t)
	args := []string{"--metadata", db, "--blob-store", m.BlobStoreURL(testenv.BucketName()), "--max-uploads-per-user", "5"}
	a := testenv.StartFerry(t, testenv.FerryOptions{Args: args, Env: append(m.Env(), sharedSecretsKey), Secure: true})
	b := testenv.StartFerry(t, testenv.FerryOptions{Args: args, Env: append(m.Env(), sharedSecretsKey), Secure: true})

	open := func(s *testenv.Server, user, pw string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", s.URL+"/v2/team/app/blobs/uploads/", nil)
		req.SetBasicAuth(user, pw)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}
	var locations []string
	for i, s := range []*testenv.Server{a, a, a, b, b} {
		resp, body := open(s, "bob", bobPW)
		if resp.StatusCode != 202 {
			t.Fatalf("bob's session %d: %d %s, want 202", i+1, resp.StatusCode, body)
		}
		locations = append(locations, resp.Header.Get("Location"))
	}
	for _, s := range []*testenv.Server{a, b} {
		resp, body := open(s, "bob", bobPW)
		if resp.StatusCode != 429 || !strings.Contains(body, "TOOMANYREQUESTS") || resp.Header.Get("Retry-After") == "" ||
			!strings.Contains(body, "--max-uploads-per-user") {
			t.Errorf("bob's 6th session on %s: %d Retry-After %q %s; want 429 TOOMANYREQUESTS with Retry-After and a message naming the limit",
				s.Host, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	if resp, body := open(b, "carol", "carol-secret-3"); resp.StatusCode != 202 {
		t.Errorf("carol while bob is at his limit: %d %s, want 202", resp.StatusCode, body)
	}
	// Cancelling one of bob's sessions (opened on B) through A frees a slot.
	req, _ := http.NewRequest("DELETE", a.URL+locations[4], nil)
	req.SetBasicAuth("bob", bobPW)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("cancel a session: %d", resp.StatusCode)
	}
	if resp, body := open(b, "bob", bobPW); resp.StatusCode != 202 {
		t.Errorf("bob after cancelling a session: %d %s, want 202", resp.StatusCode, body)
	}
	// Pushing whole images still works for a user below the limit.
	pushRandom(t, a, "team/app:1", "carol", "carol-secret-3")
}
