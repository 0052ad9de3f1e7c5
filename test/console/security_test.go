package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ferry-mirror/ferry/internal/runreport"
	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestConsoleSecurity checks, over HTTP against a real mirror, what an
// attacker or a curious user would try: markup in names, labels and
// queries, forged form posts, admin pages as a pull-only user, and
// repositories of others.
func TestConsoleSecurity(t *testing.T) {
	m := mirror(t)
	base := m.srv.URL
	root := newWebClient(t, base)
	root.login("root", rootPW)

	t.Run("markup renders as text", func(t *testing.T) {
		tag := pushMarkupReport(t, m.srv.Host)
		for _, path := range []string{
			"/run?tag=" + tag, "/runs", // a run report
			"/image?repo=ocp/library/xss&ref=v1", // label and annotation
			"/repository?name=" + url.QueryEscape(markup),
			"/image?repo=ocp/library/xss&ref=" + url.QueryEscape(markup),
			"/image?repo=" + url.QueryEscape(markup) + "&ref=v1",
			"/repositories?q=" + url.QueryEscape(markup),
			"/catalogs?repo=" + url.QueryEscape(markup) + "&tag=" + url.QueryEscape(markup),
			"/login?next=" + url.QueryEscape("/"+markup),
		} {
			_, body := root.get(path)
			if strings.Contains(body, "<script>document") || strings.Contains(body, "<img src=x") {
				t.Errorf("%s renders the markup as HTML", path)
			}
			if !strings.Contains(body, "&lt;script&gt;document") {
				t.Errorf("%s does not show the markup as text", path)
			}
		}
		// The sign-in page says only what the console wrote.
		if _, body := root.get("/login?msg=Call+555-0100+to+unlock&ended=Call+555"); strings.Contains(body, "555") {
			t.Error("the sign-in page shows text from its URL")
		}
		resp, err := http.Get(base + "/repositories")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("Content-Security-Policy %q must allow only the console's own scripts", csp)
		}
	})

	t.Run("registry names cannot carry markup", func(t *testing.T) {
		// The other way markup could reach a page: a repository or tag
		// named with it. The registry refuses both names.
		img, _ := random.Image(64, 1)
		for _, ref := range []string{m.srv.Host + "/ocp/<script>:v1", m.srv.Host + "/ocp/x:<script>"} {
			r, err := name.ParseReference(ref, name.Insecure, name.WeakValidation)
			if err != nil {
				continue // not even a reference
			}
			if err := remote.Write(r, img, remote.WithAuth(&authn.Basic{Username: "root", Password: rootPW})); err == nil {
				t.Errorf("push %s accepted", ref)
			}
		}
	})

	t.Run("forged posts", func(t *testing.T) {
		tok := root.csrf("/admin")
		form := url.Values{"user": {"alice"}, "description": {"forged"}}
		if code, _, _ := root.post("/admin/tokens", form, nil); code != http.StatusForbidden {
			t.Errorf("token creation without the CSRF token: %d, want 403", code)
		}
		other := newWebClient(t, base)
		other.login("eve", evePW)
		form.Set("csrf", other.csrf("/repositories"))
		if code, _, _ := root.post("/admin/tokens", form, nil); code != http.StatusForbidden {
			t.Errorf("token creation with another session's CSRF token: %d, want 403", code)
		}
		form.Set("csrf", tok)
		if code, _, _ := root.post("/admin/tokens", form, http.Header{"Sec-Fetch-Site": {"cross-site"}}); code != http.StatusForbidden {
			t.Errorf("cross-site post: %d, want 403", code)
		}
		if _, body := root.get("/admin"); strings.Contains(body, "forged") {
			t.Fatal("a forged post created a token")
		}
		// The same form from the page works: the checks above refuse for
		// the forgery, not for the form.
		if code, body, _ := root.post("/admin/tokens", form, nil); code != http.StatusOK || !strings.Contains(body, `id="new-token"`) {
			t.Errorf("token creation from the admin page: %d", code)
		}
		anon := newWebClient(t, base)
		if code, _, _ := anon.post("/login", url.Values{"user": {"root"}, "password": {rootPW}}, nil); code != http.StatusForbidden {
			t.Errorf("sign-in without the CSRF token: %d, want 403", code)
		}
	})

	t.Run("pull-only user", func(t *testing.T) {
		alice := newWebClient(t, base)
		alice.login("alice", alicePW)
		if _, body := alice.get("/repositories"); strings.Contains(body, `href="/admin"`) {
			t.Error("alice's pages link to the admin view")
		}
		for _, path := range []string{"/admin", "/storage"} {
			if code, _ := alice.get(path); code != http.StatusForbidden {
				t.Errorf("alice GET %s: %d, want 403", path, code)
			}
		}
		tok := alice.csrf("/repositories")
		for _, path := range []string{"/admin/tokens", "/admin/tokens/revoke", "/admin/grants", "/admin/grants/revoke"} {
			form := url.Values{"csrf": {tok}, "user": {"alice"}, "perm": {"admin"}, "prefix": {""}, "id": {"x"}}
			if code, _, _ := alice.post(path, form, nil); code != http.StatusForbidden {
				t.Errorf("alice POST %s: %d, want 403", path, code)
			}
		}
		if out := ferryUser(t, m.srv.DataDir, "", "list"); strings.Contains(out, "alice  admin") {
			t.Errorf("alice got admin:\n%s", out)
		}
	})

	t.Run("repositories of others", func(t *testing.T) {
		eve := newWebClient(t, base)
		eve.login("eve", evePW)
		_, body := eve.get("/repositories")
		if !strings.Contains(body, "ocp/library/xss") {
			t.Errorf("eve does not see ocp/library/xss, which she may pull:\n%s", body)
		}
		if _, body := eve.get("/runs"); strings.Contains(body, "run-") {
			t.Error("eve, without pull on ferry/runs, sees run reports")
		}
		for _, path := range []string{"/repositories", "/repositories?q=openshift", "/releases", "/catalogs", "/runs"} {
			_, body := eve.get(path)
			for _, secret := range []string{"ocp/openshift/release", "redhat-operator-index", m.version} {
				if strings.Contains(body, secret) {
					t.Errorf("eve sees %q on %s", secret, path)
				}
			}
		}
		// Opened by URL, a repository eve may not pull answers exactly as
		// one that does not exist.
		tag := m.version + "-x86_64"
		for _, path := range []string{"/repository?name=%s", "/image?repo=%s&ref=" + tag, "/catalogs?repo=%s&tag=v4.16"} {
			for _, repo := range []string{"ocp/openshift/release-images", "ocp/redhat/redhat-operator-index"} {
				code, body := eve.get(fmt.Sprintf(path, repo))
				codeNone, bodyNone := eve.get(fmt.Sprintf(path, "ocp/no/such"))
				if code != http.StatusNotFound || code != codeNone || strings.ReplaceAll(body, repo, "ocp/no/such") != bodyNone {
					t.Errorf("eve opening %s: %d, unlike a repository that does not exist (%d)", fmt.Sprintf(path, repo), code, codeNone)
				}
			}
		}
	})

	t.Run("session ends with the password", func(t *testing.T) {
		alice := newWebClient(t, base)
		alice.login("alice", alicePW)
		var session string
		u, _ := url.Parse(base)
		for _, c := range alice.hc.Jar.Cookies(u) {
			if c.Name == "ferry_session" {
				session = c.Value
			}
		}
		// A session is no bearer token.
		req, _ := http.NewRequest(http.MethodGet, base+"/v2/ocp/library/xss/tags/list", nil)
		req.Header.Set("Authorization", "Bearer "+session)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("the session cookie as a bearer token: %d, want 401", resp.StatusCode)
		}
		ferryUser(t, m.srv.DataDir, "alice-new-password\n", "passwd", "alice", "--password-stdin")
		code, _ := alice.get("/repositories")
		if code != http.StatusSeeOther {
			t.Errorf("after a password change the old session still works: %d", code)
		}
	})
}

// TestConsoleCookies checks the session cookie a browser receives.
func TestConsoleCookies(t *testing.T) {
	srv := startProtected(t)
	c := newWebClient(t, srv.URL)
	tok := c.csrf("/login")
	_, _, resp := c.post("/login", url.Values{"csrf": {tok}, "user": {"root"}, "password": {rootPW}}, nil)
	var found bool
	for _, h := range resp.Header.Values("Set-Cookie") {
		if !strings.HasPrefix(h, "ferry_session=") {
			continue
		}
		found = true
		for _, want := range []string{"HttpOnly", "SameSite=Strict", "Expires=", "Path=/"} {
			if !strings.Contains(h, want) {
				t.Errorf("session cookie lacks %s: %s", want, h)
			}
		}
	}
	if !found {
		t.Fatal("no session cookie after signing in")
	}
	// The console takes every path but the registry's own.
	for path, want := range map[string]string{"/healthz": "ok", "/metrics": "go_goroutines", "/v2/": "UNAUTHORIZED"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), want) || resp.Header.Get("Content-Security-Policy") != "" {
			t.Errorf("%s is not the registry's (%d):\n%.200s", path, resp.StatusCode, b)
		}
	}
	// Wrong password: no session.
	c2 := newWebClient(t, srv.URL)
	tok = c2.csrf("/login")
	code, body, resp := c2.post("/login", url.Values{"csrf": {tok}, "user": {"root"}, "password": {"nope"}}, nil)
	if code != http.StatusUnauthorized || !strings.Contains(body, "Wrong user name") || strings.Contains(strings.Join(resp.Header.Values("Set-Cookie"), ";"), "ferry_session=e") {
		t.Errorf("wrong password: %d", code)
	}
}

// TestConsoleAnonymousPull: with --anonymous-pull, browsing needs no
// sign-in, and the admin view stays closed.
func TestConsoleAnonymousPull(t *testing.T) {
	srv := startProtected(t, "--anonymous-pull")
	img, _ := random.Image(64, 1)
	ref, _ := name.ParseReference(srv.Host+"/ocp/library/tool:1", name.Insecure)
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "root", Password: rootPW}), remote.WithContext(context.Background())); err != nil {
		t.Fatal(err)
	}
	anon := newWebClient(t, srv.URL)
	code, body := anon.get("/repositories")
	if code != http.StatusOK || !strings.Contains(body, "ocp/library/tool") {
		t.Fatalf("anonymous /repositories: %d\n%s", code, body)
	}
	if code, _ := anon.get("/admin"); code != http.StatusForbidden {
		t.Errorf("anonymous /admin: %d, want 403", code)
	}
	// Without --anonymous-pull the same visit is sent to sign in.
	closed := startProtected(t)
	if code, _ := newWebClient(t, closed.URL).get("/repositories"); code != http.StatusSeeOther {
		t.Errorf("anonymous /repositories without --anonymous-pull: %d, want 303 to sign in", code)
	}
}

// TestRunReportOnlyInFerry: a mirror run leaves its report in a Ferry
// destination only; another registry gets no repository it did not ask for.
func TestRunReportOnlyInFerry(t *testing.T) {
	up := startUpstream(t)
	cfg := testenv.WriteImageSetConfig(t, "  additionalImages:\n  - name: "+up.u.CosignSigned[0].Image.ByTag()+"\n")
	for _, dst := range []struct {
		name string
		srv  *testenv.Server
		want bool
	}{{"docker-registry", testenv.StartDockerRegistry(t), false}, {"ferry", testenv.StartFerry(t, testenv.FerryOptions{}), true}} {
		out, code := testenv.RunFerry(t, nil, "mirror", "-c", cfg, "--workspace", "file://"+t.TempDir(),
			"--src-tls-verify=false", "--dest-tls-verify=false", "docker://"+dst.srv.Host+"/mirror")
		if code != 0 {
			t.Fatalf("mirror to %s: exit %d\n%s", dst.name, code, out)
		}
		resp, err := http.Get(dst.srv.URL + "/v2/_catalog")
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ Repositories []string }
		json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if got := slices.Contains(doc.Repositories, runreport.Repo); got != dst.want {
			t.Errorf("%s: repositories %v; a run report there: %v, want %v", dst.name, doc.Repositories, got, dst.want)
		}
	}

	// A user who may push the mirror but not ferry/runs mirrors all the
	// same; the run is just not recorded, and the log says why.
	prot := startProtected(t)
	ferryUser(t, prot.DataDir, "", "grant", "alice", "push", "mirror")
	authFile := filepath.Join(t.TempDir(), "auth.json")
	writeAuthFile(t, authFile, prot.Host, "alice", alicePW)
	out, code := testenv.RunFerry(t, nil, "mirror", "-c", cfg, "--workspace", "file://"+t.TempDir(),
		"--src-tls-verify=false", "--dest-tls-verify=false", "--authfile", authFile, "docker://"+prot.Host+"/mirror")
	if code != 0 {
		t.Fatalf("mirror without push on ferry/runs: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "run report could not be recorded") {
		t.Errorf("the mirror does not say its report was not recorded:\n%s", out)
	}
	root := newWebClient(t, prot.URL)
	root.login("root", rootPW)
	if _, body := root.get("/runs"); strings.Contains(body, "run-") {
		t.Error("a run report was recorded without push permission on ferry/runs")
	}
}

// TestConsoleOpenRegistry: with --auth=off everyone browses everything,
// nobody administers through the console, and signing in says why not.
func TestConsoleOpenRegistry(t *testing.T) {
	srv := testenv.StartFerry(t, testenv.FerryOptions{})
	img, _ := random.Image(64, 1)
	ref, _ := name.ParseReference(srv.Host+"/team/tool:1", name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	c := newWebClient(t, srv.URL)
	if code, body := c.get("/repositories"); code != http.StatusOK || !strings.Contains(body, "team/tool") || !strings.Contains(body, "open registry") {
		t.Errorf("open registry /repositories: %d\n%.300s", code, body)
	}
	if code, _ := c.get("/admin"); code != http.StatusForbidden {
		t.Errorf("open registry /admin: %d, want 403", code)
	}
	tok := c.csrf("/login")
	code, body, _ := c.post("/login", url.Values{"csrf": {tok}, "user": {"x"}, "password": {"y"}}, nil)
	if code != http.StatusBadRequest || !strings.Contains(body, "authentication is off") {
		t.Errorf("sign in on an open registry: %d\n%.300s", code, body)
	}
}
