package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestConsoleAdminUsers: an administrator creates a user, grants it pull
// on a prefix and deletes it again from the admin page; the user sees
// what the grant allows, and its session ends with the deletion.
func TestConsoleAdminUsers(t *testing.T) {
	srv := startProtected(t)
	img, _ := random.Image(64, 1)
	for _, repo := range []string{"team/a/tool", "team/b/tool"} {
		ref, _ := name.ParseReference(srv.Host+"/"+repo+":1", name.Insecure)
		if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "root", Password: rootPW})); err != nil {
			t.Fatal(err)
		}
	}
	root := newWebClient(t, srv.URL)
	root.login("root", rootPW)
	tok := root.csrf("/admin")

	code, body, _ := root.post("/admin/users", url.Values{"csrf": {tok}, "name": {"carol"}, "password": {"short"}}, nil)
	if code != http.StatusBadRequest || !strings.Contains(body, "at least 8 characters") {
		t.Errorf("short password: %d", code)
	}
	code, body, _ = root.post("/admin/users", url.Values{"csrf": {tok}, "name": {"bad name"}, "password": {"carol-secret-1"}}, nil)
	if code != http.StatusBadRequest || !strings.Contains(body, "invalid user name") {
		t.Errorf("name with a space: %d", code)
	}
	if code, _, _ := root.post("/admin/users", url.Values{"csrf": {tok}, "name": {"carol"}, "password": {"carol-secret-1"}}, nil); code != http.StatusSeeOther {
		t.Fatalf("create carol: %d", code)
	}
	if code, _, _ := root.post("/admin/grants", url.Values{"csrf": {tok}, "user": {"carol"}, "perm": {"pull"}, "prefix": {"team/a/"}}, nil); code != http.StatusSeeOther {
		t.Fatalf("grant carol: %d", code)
	}
	if out := ferryUser(t, srv.DataDir, "", "list"); !strings.Contains(out, "carol") || !strings.Contains(out, "team/a") {
		t.Errorf("ferry user list after the console's changes:\n%s", out)
	}

	carol := newWebClient(t, srv.URL)
	carol.login("carol", "carol-secret-1")
	_, body = carol.get("/repositories")
	if !strings.Contains(body, "team/a/tool") || strings.Contains(body, "team/b/tool") {
		t.Errorf("carol (pull on team/a) sees:\n%s", body)
	}
	if code, _, _ := root.post("/admin/users/delete", url.Values{"csrf": {tok}, "name": {"root"}}, nil); code != http.StatusBadRequest {
		t.Errorf("root deleting itself: %d, want 400", code)
	}
	if code, _, _ := root.post("/admin/users/delete", url.Values{"csrf": {tok}, "name": {"carol"}}, nil); code != http.StatusSeeOther {
		t.Fatalf("delete carol: %d", code)
	}
	if code, _ := carol.get("/repositories"); code != http.StatusSeeOther {
		t.Errorf("carol's session after her deletion: %d, want a redirect to sign in", code)
	}
}
