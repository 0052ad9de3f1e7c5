package console_test

import (
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// sharedSecretsKey is what every replica of one store is given.
const sharedSecretsKey = "FERRY_SECRETS_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// TestSessionAcrossReplicas: a sign-in on one replica is a session on
// every replica sharing the stores (no sticky load balancer needed), and a
// password change on the shared store ends it on all of them.
func TestSessionAcrossReplicas(t *testing.T) {
	pg := testenv.StartPostgres(t)
	db := pg.NewDatabase(t)
	m := testenv.StartMinIO(t)
	env := append(m.Env(), sharedSecretsKey)
	user := func(stdin string, args ...string) {
		t.Helper()
		cmd := exec.Command(testenv.FerryBinary(t), append(append([]string{"user"}, args...), "--metadata", db)...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ferry user %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	user(alicePW+"\n", "add", "alice", "--password-stdin")
	user("", "grant", "alice", "pull", "ocp/")
	args := []string{"--metadata", db, "--blob-store", m.BlobStoreURL(testenv.BucketName())}
	a := testenv.StartFerry(t, testenv.FerryOptions{Args: args, Env: env, Secure: true})
	b := testenv.StartFerry(t, testenv.FerryOptions{Args: args, Env: env, Secure: true})

	ca := newWebClient(t, a.URL)
	ca.login("alice", alicePW)
	au, _ := url.Parse(a.URL)
	bu, _ := url.Parse(b.URL)
	// The load balancer's name is the same for both; here the replicas
	// have their own ports, so hand B the cookies A set.
	session := ca.hc.Jar.Cookies(au)
	cb := newWebClient(t, b.URL)
	cb.hc.Jar.SetCookies(bu, session)
	code, body := cb.get("/repositories")
	if code != http.StatusOK || !strings.Contains(body, `id="signed-in-user">alice<`) {
		t.Fatalf("replica B with replica A's session: %d\n%.300s", code, body)
	}
	// A form from A's page posts to B: the CSRF token holds too.
	tok := ca.csrf("/repositories")
	if code, _, resp := cb.post("/logout", url.Values{"csrf": {tok}}, nil); code != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Errorf("sign out on B with A's form: %d", code)
	}

	user("a-new-password-1\n", "passwd", "alice", "--password-stdin")
	for _, r := range []*testenv.Server{a, b} {
		c := newWebClient(t, r.URL)
		u, _ := url.Parse(r.URL)
		c.hc.Jar.SetCookies(u, session)
		if code, _ := c.get("/repositories"); code != http.StatusSeeOther {
			t.Errorf("%s: the session survived the password change: %d", r.Host, code)
		}
	}
}
