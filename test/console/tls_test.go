package console_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestConsoleOverTLS: the console shares serve's HTTPS listener with the
// registry, its cookies are Secure there, and the health page shows the
// expiry of the very certificate the browser was served.
func TestConsoleOverTLS(t *testing.T) {
	dir := t.TempDir()
	ferryUser(t, dir, rootPW+"\n", "add", "root", "--password-stdin")
	ferryUser(t, dir, "", "grant", "root", "admin", "*")
	host := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	log := &testenv.LogBuffer{}
	cmd := exec.Command(testenv.FerryBinary(t), "serve", "--listen", host, "--data-dir", dir, "--hostname", "mirror.console.test")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
	})
	var ca []byte
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && len(ca) == 0; time.Sleep(100 * time.Millisecond) {
		ca, _ = os.ReadFile(filepath.Join(dir, "tls", "ca.crt"))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("no generated CA:\n%s", log.String())
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := "https://" + host
	var resp *http.Response
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err = hc.Get(base + "/login"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("GET /login over HTTPS: %v\n%s", err, log.String())
	}
	body := readAll(t, resp)
	served := resp.TLS.PeerCertificates[0]
	for _, h := range resp.Header.Values("Set-Cookie") {
		if !strings.Contains(h, "; Secure") {
			t.Errorf("cookie over HTTPS is not Secure: %s", h)
		}
	}
	tok := csrfRE.FindStringSubmatch(body)[1]
	resp, err = hc.PostForm(base+"/login", url.Values{"csrf": {tok}, "user": {"root"}, "password": {rootPW}})
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in over HTTPS: %d", resp.StatusCode)
	}
	for _, h := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(h, "ferry_session=") && !strings.Contains(h, "; Secure") {
			t.Errorf("session cookie over HTTPS is not Secure: %s", h)
		}
	}
	resp, err = hc.Get(base + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body = readAll(t, resp)
	want := `id="cert-expiry">` + served.NotAfter.UTC().Format("2006-01-02 15:04 UTC") + "<"
	if !strings.Contains(body, want) {
		t.Errorf("health page does not show the served certificate's expiry %s:\n%s", served.NotAfter, body)
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
