package auth_test

import (
	"strings"
	"testing"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestUserCommands: each `ferry user` command does what it says, and bad
// input gets an error naming the next step.
func TestUserCommands(t *testing.T) {
	dir := t.TempDir()
	d := []string{"--data-dir", dir}
	setupUsers(t, d...)
	list := mustUser(t, "", append([]string{"list"}, d...)...)
	for _, want := range []string{"alice  pull:ocp/…", "bob    push:every repository"} {
		if !strings.Contains(list, want) {
			t.Errorf("user list lacks %q:\n%s", want, list)
		}
	}
	if strings.Contains(list, "$2a$") {
		t.Errorf("user list shows password hashes:\n%s", list)
	}
	bad := []struct {
		stdin string
		args  []string
		want  string
	}{
		{"another-pw-1\n", []string{"add", "alice", "--password-stdin"}, "exists already"},
		{"short\n", []string{"add", "dave", "--password-stdin"}, "too short"},
		{"", []string{"add", "dave"}, "--password-stdin"},
		{"", []string{"grant", "alice", "write", "ocp"}, "pull, push, delete or admin"},
		{"", []string{"grant", "nobody", "pull", "ocp"}, "no user nobody"},
		{"", []string{"revoke", "alice", "push", "ocp"}, "has no push permission"},
		{"", []string{"token", "revoke", "0123456789abcdef"}, "no token"},
		{"", []string{"delete", "nobody"}, "no user nobody"},
	}
	for _, b := range bad {
		if _, err := ferryUser(t, b.stdin, append(b.args, d...)...); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("ferry user %s: %v; want an error saying %q", strings.Join(b.args, " "), err, b.want)
		}
	}

	s := testenv.StartFerry(t, testenv.FerryOptions{DataDir: dir, Secure: true})
	pushRandom(t, s, "ocp/app:1", "bob", bobPW)
	mustUser(t, "", append([]string{"delete", "alice"}, d...)...)
	if st, _, _ := apiError(t, "GET", s.URL+"/v2/ocp/app/tags/list", "alice", alicePW); st != 401 {
		t.Errorf("deleted user alice: %d, want 401", st)
	}
	if list := mustUser(t, "", append([]string{"list"}, d...)...); strings.Contains(list, "alice") {
		t.Errorf("deleted user still listed:\n%s", list)
	}
	// The last user gone, the registry stays protected (across restarts:
	// see TestLastUserDeletedStaysProtected).
	mustUser(t, "", append([]string{"delete", "bob"}, d...)...)
	if st, _, _ := apiError(t, "GET", s.URL+"/v2/", "", ""); st != 401 {
		t.Errorf("after deleting every user: /v2/ %d, want 401", st)
	}
}
