// Package console_test drives the web console of a real `ferry serve`
// with headless Chromium (chromedp) and plain HTTP clients, after a real
// `ferry mirror` of the synthetic upstream's release, catalog and images.
package console_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ferry-mirror/ferry/internal/fixtures"
	"github.com/ferry-mirror/ferry/internal/testenv"
)

// Users of the protected registry.
const (
	rootPW  = "root-secret-123"
	alicePW = "alice-secret-1" // pull on ocp/
	evePW   = "eve-secret-22"  // pull on ocp/library only
)

type upstream struct {
	u       *fixtures.Upstream
	reg     *testenv.Server
	srv     *fixtures.Servers
	keyFile string
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	up := testenv.StartUpstream(t, fixtures.Options{Seed: 11})
	return &upstream{u: up.Upstream, reg: up.Registry, srv: up.Servers, keyFile: up.KeyFile}
}

// ferryUser runs `ferry user ...` against a data dir.
func ferryUser(t *testing.T, dataDir, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(testenv.FerryBinary(t), append(append([]string{"user"}, args...), "--data-dir", dataDir)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("ferry user %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// startProtected starts ferry serve (authentication on) with root
// (admin), alice (pull on ocp/) and eve (pull on ocp/library).
func startProtected(t *testing.T, extra ...string) *testenv.Server {
	t.Helper()
	dir := t.TempDir()
	ferryUser(t, dir, rootPW+"\n", "add", "root", "--password-stdin")
	ferryUser(t, dir, "", "grant", "root", "admin", "*")
	ferryUser(t, dir, alicePW+"\n", "add", "alice", "--password-stdin")
	ferryUser(t, dir, "", "grant", "alice", "pull", "ocp/")
	ferryUser(t, dir, evePW+"\n", "add", "eve", "--password-stdin")
	ferryUser(t, dir, "", "grant", "eve", "pull", "ocp/library")
	return testenv.StartFerry(t, testenv.FerryOptions{DataDir: dir, Args: extra, Secure: true})
}

// writeAuthFile writes a containers auth.json (also a docker config.json)
// for host.
func writeAuthFile(t *testing.T, path, host, user, pw string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pw))}}})
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// artifacts is where screenshots go: $FERRY_ARTIFACTS/<test> or a
// temporary directory.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("FERRY_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	dir = filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser starts a headless Chromium with a fresh profile.
func browser(t *testing.T) context.Context {
	t.Helper()
	bin := testenv.Tool(t, "chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first run starts the browser, which lives as long as its context:
	// no timeout on this one.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// do runs browser steps, failing the test with what it was doing.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs one browser action that returns a value.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// open navigates to a console page and waits for its main content.
func open(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	do(t, ctx, "open "+url, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("main")))
}

// text is the visible text of the first element matching a CSS selector.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return get(t, ctx, "text of "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// screenshot saves the whole page as dir/name.png.
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png := get(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// signIn signs in through the form.
func signIn(t *testing.T, ctx context.Context, base, user, pw string) {
	t.Helper()
	do(t, ctx, "sign in as "+user,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#user")),
		chromedp.SendKeys(chromedp.CSS("#user"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), pw),
		chromedp.Click(chromedp.CSS("#sign-in")),
		chromedp.WaitVisible(chromedp.CSS("#signed-in-user")),
	)
	if who := text(t, ctx, "#signed-in-user"); who != user {
		t.Fatalf("signed in as %q, want %q", who, user)
	}
}

// webClient is a plain HTTP client with a cookie jar, as a browser has.
type webClient struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newWebClient(t *testing.T, base string) *webClient {
	jar, _ := cookiejar.New(nil)
	return &webClient{t: t, base: base, hc: &http.Client{Jar: jar, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// get returns the status and body of a console page.
func (c *webClient) get(path string) (int, string) {
	c.t.Helper()
	resp, err := c.hc.Get(c.base + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// csrf reads the token of a page's forms.
func (c *webClient) csrf(path string) string {
	c.t.Helper()
	_, body := c.get(path)
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		c.t.Fatalf("no CSRF token on %s:\n%s", path, body)
	}
	return m[1]
}

func (c *webClient) post(path string, form url.Values, header http.Header) (int, string, *http.Response) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp
}

// login signs in with the form and checks the redirect.
func (c *webClient) login(user, pw string) {
	c.t.Helper()
	tok := c.csrf("/login")
	code, body, resp := c.post("/login", url.Values{"csrf": {tok}, "user": {user}, "password": {pw}, "next": {"/repositories"}}, nil)
	if code != http.StatusSeeOther || resp.Header.Get("Location") != "/repositories" {
		c.t.Fatalf("sign in as %s: %d %s\n%s", user, code, resp.Header.Get("Location"), body)
	}
}

func registryDelete(t *testing.T, host, repo, ref, user, pw string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, fmt.Sprintf("http://%s/v2/%s/manifests/%s", host, repo, ref), nil)
	req.SetBasicAuth(user, pw)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE %s@%s: %d", repo, ref, resp.StatusCode)
	}
}

// startUpload opens a blob upload as root and sends part of it, leaving
// it in progress.
func startUpload(t *testing.T, host, repo string, part []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+host+"/v2/"+repo+"/blobs/uploads/", nil)
	req.SetBasicAuth("root", rootPW)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start upload: %d", resp.StatusCode)
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ = http.NewRequest(http.MethodPatch, loc.String(), strings.NewReader(string(part)))
	req.SetBasicAuth("root", rootPW)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload chunk: %d", resp.StatusCode)
	}
}
