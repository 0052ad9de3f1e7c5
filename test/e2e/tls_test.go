package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-mirror/ferry/internal/testenv"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestTLSWithGeneratedCA starts ferry serve as a user does, with no
// certificate and no --plain-http: it must serve HTTPS with a certificate
// from its own CA and print the CA file's path, and a client that trusts
// only that file pushes and pulls over HTTPS by IP and by localhost.
func TestTLSWithGeneratedCA(t *testing.T) {
	ferryOnly(t)
	dataDir := t.TempDir()
	port := testenv.FreePort(t)
	host := "127.0.0.1:" + strconv.Itoa(port)
	log := &testenv.LogBuffer{}
	cmd := exec.Command(testenv.FerryBinary(t), "serve", "--listen", host, "--data-dir", dataDir, "--hostname", "mirror.e2e.test", "--auth=off")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
	})

	caFile := waitForCAPath(t, log)
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatalf("the CA path ferry printed, %s: %v", caFile, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no PEM certificate", caFile)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	waitHTTPS(t, client, "https://"+host+"/v2/", log)

	resp, err := client.Get("https://" + host + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	leaf := resp.TLS.PeerCertificates[0]
	for _, name := range []string{"mirror.e2e.test", "localhost", "127.0.0.1"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("server certificate does not cover %s: %v", name, err)
		}
	}

	// Push in-process with the CA as the only root.
	img := seedImage(t, true, 1100, 1101, "amd64")
	want := digestOf(t, img)
	ref, err := name.ParseReference("localhost:" + strconv.Itoa(port) + "/tls/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithTransport(client.Transport)); err != nil {
		t.Fatalf("push over HTTPS trusting the printed CA: %v", err)
	}

	// skopeo trusts the CA from a certificate directory, verification on.
	certDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(certDir, "ca.crt"), pem, 0o644); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	out := run(t, home, "skopeo", "inspect", "--cert-dir", certDir, "--format", "{{.Digest}}", "docker://"+host+"/tls/app:1")
	if got := strings.TrimSpace(out); got != want {
		t.Errorf("skopeo inspect over HTTPS: digest %q, want %s", got, want)
	}
	// crane reads SSL_CERT_FILE, like every Go client; no --insecure.
	out, err = runErr(t, home, []string{"SSL_CERT_FILE=" + caFile}, "crane", "digest", "localhost:"+strconv.Itoa(port)+"/tls/app:1")
	if err != nil || strings.TrimSpace(out) != want {
		t.Errorf("crane digest over HTTPS: %q, %v; want %s", out, err, want)
	}
	// And a client that does not trust the CA is refused.
	if _, err := runErr(t, home, nil, "skopeo", "inspect", "docker://"+host+"/tls/app:1"); err == nil {
		t.Error("skopeo without the CA trusted the server's certificate")
	}
}

// waitForCAPath finds the CA file path in ferry's start-up output.
func waitForCAPath(t *testing.T, log *testenv.LogBuffer) string {
	t.Helper()
	re := regexp.MustCompile(`(/[^\s"'=]+\.(crt|pem))`)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range re.FindAllString(log.String(), -1) {
			if _, err := os.Stat(m); err == nil && filepath.IsAbs(m) {
				return m
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("ferry serve did not print the path of its CA file within 30 s; output:\n%s", log.String())
	return ""
}

func waitHTTPS(t *testing.T, client *http.Client, url string, log *testenv.LogBuffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			return
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not reachable over HTTPS with the printed CA: %v\n%s", url, last, log.String())
}
