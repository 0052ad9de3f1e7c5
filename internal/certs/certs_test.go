package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable time source for renewal tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func caPool(t *testing.T, m *Manager) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(m.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no PEM certificate", m.CAFile())
	}
	return pool
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// served performs a handshake and returns the certificate the config serves.
func served(t *testing.T, m *Manager, serverName string) *x509.Certificate {
	t.Helper()
	c, err := m.TLSConfig().GetCertificate(&tls.ClientHelloInfo{ServerName: serverName})
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf
}

func TestNewManagerCreatesCAAndServerCertificate(t *testing.T) {
	dir := t.TempDir()
	m, err := NewManager(dir, []string{"mirror.example.lan", "10.0.0.7"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.CAFile() != filepath.Join(dir, "ca.crt") {
		t.Errorf("CAFile() = %s, want %s", m.CAFile(), filepath.Join(dir, "ca.crt"))
	}
	ca := readCert(t, m.CAFile())
	if !ca.IsCA {
		t.Error("CA certificate is not marked as a CA")
	}
	if life := ca.NotAfter.Sub(time.Now()); life < 9*365*24*time.Hour || life > 11*365*24*time.Hour {
		t.Errorf("CA valid for %v more, want about 10 years", life)
	}
	leaf := served(t, m, "mirror.example.lan")
	if life := leaf.NotAfter.Sub(time.Now()); life < 360*24*time.Hour || life > 370*24*time.Hour {
		t.Errorf("server certificate valid for %v more, want about 1 year", life)
	}
	for _, c := range []*x509.Certificate{ca, leaf} {
		if k, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
			t.Errorf("%s key %T, want ECDSA P-256", c.Subject.CommonName, c.PublicKey)
		}
	}
	for f, want := range map[string]os.FileMode{"ca.crt": 0o644, "ca.key": 0o600, "server.crt": 0o644, "server.key": 0o600} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", f, fi.Mode().Perm(), want)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		var got []string
		for _, e := range entries {
			got = append(got, e.Name())
		}
		t.Errorf("directory holds %v, want only the four PEM files (no temp files left)", got)
	}
}

func TestServerCertificateCoversNames(t *testing.T) {
	m, err := NewManager(t.TempDir(), []string{"Mirror.Example.LAN.", "10.0.0.7", "[fd00::5]"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf := served(t, m, "")
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	pool := caPool(t, m)
	for _, name := range []string{"mirror.example.lan", "localhost", host, "127.0.0.1", "::1", "10.0.0.7", "fd00::5"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
			t.Errorf("certificate does not verify for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "other.example.lan", Roots: pool}); err == nil {
		t.Error("certificate verifies for a name it was not issued for")
	}
}

func TestBadHostnameIsRejected(t *testing.T) {
	_, err := NewManager(t.TempDir(), []string{"bad host!"}, nil)
	if err == nil {
		t.Fatal("NewManager accepted the hostname \"bad host!\"")
	}
	if !bytes.Contains([]byte(err.Error()), []byte(`"bad host!"`)) {
		t.Errorf("error %q does not name the bad hostname", err)
	}
}

func TestSecondManagerReusesCAAndCertificate(t *testing.T) {
	dir := t.TempDir()
	m1, err := NewManager(dir, []string{"mirror.lan"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ca1, _ := os.ReadFile(m1.CAFile())
	leaf1 := served(t, m1, "")

	m2, err := NewManager(dir, []string{"mirror.lan"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ca2, _ := os.ReadFile(m2.CAFile())
	if !bytes.Equal(ca1, ca2) {
		t.Error("second NewManager replaced the CA: clusters that trust it would break")
	}
	if leaf2 := served(t, m2, ""); !leaf1.Equal(leaf2) {
		t.Error("second NewManager with the same names issued a new server certificate")
	}
}

// TestNewHostnameIssuesNewCertificateUnderSameCA: a name the CA's
// constraints cover (a subdomain of a name it was made for, or a name
// under a wildcard) gets a new server certificate under the CA clusters
// already trust; a name outside them stops the start with the way out.
func TestNewHostnameIssuesNewCertificateUnderSameCA(t *testing.T) {
	dir := t.TempDir()
	m1, err := NewManager(dir, []string{"mirror.lan", "*.apps.corp"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf1 := served(t, m1, "")
	m2, err := NewManager(dir, []string{"mirror.lan", "*.apps.corp", "registry.mirror.lan", "quay.apps.corp"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf2 := served(t, m2, "")
	if leaf1.Equal(leaf2) {
		t.Fatal("adding a hostname did not issue a new server certificate")
	}
	// The first manager's pool is the CA clusters already trust.
	for _, name := range []string{"registry.mirror.lan", "quay.apps.corp"} {
		if _, err := leaf2.Verify(x509.VerifyOptions{DNSName: name, Roots: caPool(t, m1)}); err != nil {
			t.Errorf("new certificate for %s does not verify under the original CA: %v", name, err)
		}
	}
	if !leaf2.Equal(readCert(t, filepath.Join(dir, "server.crt"))) {
		t.Error("the new certificate was not stored in server.crt")
	}
	_, err = NewManager(dir, []string{"mirror.lan", "registry.other.lan"}, nil)
	if err == nil || !strings.Contains(err.Error(), "registry.other.lan") || !strings.Contains(err.Error(), "move "+dir+" away") {
		t.Errorf("a hostname outside the CA's constraints: %v; want an error naming it and saying to move the directory away", err)
	}
}

// TestCAIsNameConstrained: the generated CA signs only for the server's
// names; a certificate for quay.io made with its key is refused by Go's
// verifier, as by every client that honours name constraints.
func TestCAIsNameConstrained(t *testing.T) {
	dir := t.TempDir()
	m, err := NewManager(dir, []string{"mirror.lan", "10.0.0.5"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ca := readCert(t, m.CAFile())
	if !ca.PermittedDNSDomainsCritical || !slices.Contains(ca.PermittedDNSDomains, "mirror.lan") {
		t.Fatalf("CA constraints: critical %v, DNS %v", ca.PermittedDNSDomainsCritical, ca.PermittedDNSDomains)
	}
	pool := caPool(t, m)
	for _, c := range []struct {
		dns string
		ip  string
		ok  bool
	}{
		{dns: "mirror.lan", ok: true}, {dns: "localhost", ok: true}, {ip: "10.0.0.5", ok: true}, {ip: "127.0.0.1", ok: true},
		{dns: "quay.io"}, {dns: "registry.redhat.io"}, {dns: "evilmirror.lan"}, {ip: "10.0.0.6"}, {ip: "8.8.8.8"},
	} {
		tmpl := &x509.Certificate{NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		opts := x509.VerifyOptions{Roots: pool}
		if c.dns != "" {
			tmpl.DNSNames, opts.DNSName = []string{c.dns}, c.dns
		} else {
			tmpl.IPAddresses, opts.DNSName = []net.IP{net.ParseIP(c.ip)}, c.ip
		}
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		leaf, _, err := sign(tmpl, &key.PublicKey, m.ca.cert, m.ca.key)
		if err != nil {
			t.Fatal(err)
		}
		_, err = leaf.Verify(opts)
		if (err == nil) != c.ok {
			t.Errorf("certificate for %s%s signed with the CA key: verify error %v, want accepted=%v", c.dns, c.ip, err, c.ok)
		}
	}
}

// TestUnconstrainedCAKeepsWorking: a CA made before name constraints is
// kept (clusters trust it), any name is still served, and the log says how
// to replace it.
func TestUnconstrainedCAKeepsWorking(t *testing.T) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: "old Ferry CA"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true}
	_, der, err := sign(tmpl, &key.PublicKey, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := writePair(filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile), der, key); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	m, err := NewManager(dir, []string{"any.name.example"}, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if got := readCert(t, m.CAFile()); !bytes.Equal(got.Raw, der) {
		t.Fatal("the existing CA was replaced")
	}
	if _, err := served(t, m, "").Verify(x509.VerifyOptions{DNSName: "any.name.example", Roots: caPool(t, m)}); err != nil {
		t.Errorf("server certificate under the old CA: %v", err)
	}
	if !strings.Contains(log.String(), "no name constraints") || !strings.Contains(log.String(), "move the directory away") {
		t.Errorf("no warning about the unconstrained CA:\n%s", log.String())
	}
}

// TestHostNameOutsideAdoptedCAIsLeftOut: a replica whose machine name the
// shared CA does not cover still starts, serving the names it does.
func TestHostNameOutsideAdoptedCAIsLeftOut(t *testing.T) {
	lb, err := parseNames([]string{"mirror.lan"})
	if err != nil {
		t.Fatal(err)
	}
	first := &Manager{dir: t.TempDir(), names: lb, logger: slog.New(slog.DiscardHandler), opts: options{now: time.Now, caLifetime: time.Hour}}
	ca, err := first.createCA()
	if err != nil {
		t.Fatal(err)
	}
	withHost, _ := parseNames([]string{"mirror.lan", "replica-2"})
	m := &Manager{dir: first.dir, names: withHost, logger: slog.New(slog.DiscardHandler), ca: ca}
	if err := m.fitNames("replica-2"); err != nil {
		t.Fatalf("a machine name outside the shared CA stopped the start: %v", err)
	}
	if slices.Contains(m.names.dns, "replica-2") || !slices.Contains(m.names.dns, "mirror.lan") {
		t.Errorf("names served: %v; want mirror.lan without replica-2", m.names.dns)
	}
}

func TestRenewalWithoutRestart(t *testing.T) {
	clk := &clock{t: time.Now()}
	dir := t.TempDir()
	m, err := newManager(dir, []string{"mirror.lan"}, nil, options{now: clk.now, serverLifetime: 90 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	first := served(t, m, "")
	life := first.NotAfter.Sub(first.NotBefore)

	// With more than a third left, the same certificate is served.
	clk.advance(life/2 - backdate)
	if got := served(t, m, ""); !got.Equal(first) {
		t.Fatal("certificate renewed with more than a third of its lifetime left")
	}
	// Past two thirds, the next handshake gets a fresh one.
	clk.advance(life / 4)
	renewed := served(t, m, "")
	if renewed.Equal(first) {
		t.Fatal("certificate not renewed with less than a third of its lifetime left")
	}
	if !renewed.NotAfter.After(first.NotAfter) {
		t.Errorf("renewed certificate expires %v, not after the old %v", renewed.NotAfter, first.NotAfter)
	}
	if _, err := renewed.Verify(x509.VerifyOptions{DNSName: "mirror.lan", Roots: caPool(t, m), CurrentTime: clk.now()}); err != nil {
		t.Errorf("renewed certificate does not verify under the CA: %v", err)
	}
	if !renewed.Equal(readCert(t, filepath.Join(dir, "server.crt"))) {
		t.Error("renewed certificate not stored, a restart would serve the old one")
	}
	if got := served(t, m, ""); !got.Equal(renewed) {
		t.Error("renewed again on the next handshake")
	}
}

func TestRestartAfterLongDowntimeIssuesFreshCertificate(t *testing.T) {
	clk := &clock{t: time.Now()}
	dir := t.TempDir()
	opts := options{now: clk.now, serverLifetime: 30 * time.Hour}
	m1, err := newManager(dir, nil, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	old := served(t, m1, "")
	clk.advance(40 * time.Hour) // expired while the server was down
	m2, err := newManager(dir, nil, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	fresh := served(t, m2, "")
	if fresh.Equal(old) || !fresh.NotAfter.After(clk.now()) {
		t.Errorf("after downtime the server certificate expires %v at %v", fresh.NotAfter, clk.now())
	}
}

func TestCertificateNeverOutlivesCA(t *testing.T) {
	m, err := newManager(t.TempDir(), nil, nil, options{caLifetime: 48 * time.Hour, serverLifetime: 100 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ca := readCert(t, m.CAFile())
	if leaf := served(t, m, ""); leaf.NotAfter.After(ca.NotAfter) {
		t.Errorf("server certificate expires %v, after its CA %v", leaf.NotAfter, ca.NotAfter)
	}
}

func TestCorruptCAIsAnErrorNotReplaced(t *testing.T) {
	dir := t.TempDir()
	m, err := NewManager(dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.key"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(m.CAFile())
	if _, err := NewManager(dir, nil, nil); err == nil {
		t.Fatal("NewManager accepted a CA whose key is unreadable")
	}
	after, _ := os.ReadFile(m.CAFile())
	if !bytes.Equal(before, after) {
		t.Error("a trusted CA certificate was overwritten")
	}
}

func TestStrayKeyFromInterruptedFirstStartIsReplaced(t *testing.T) {
	dir := t.TempDir()
	// A crash between writing ca.key and ca.crt leaves only the key.
	if err := os.WriteFile(filepath.Join(dir, "ca.key"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewManager(dir, nil, nil); err != nil {
		t.Fatalf("NewManager after an interrupted first start: %v", err)
	}
}

func TestHandshakeVerifiesWithCA(t *testing.T) {
	m, err := NewManager(t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello over tls")
	}))
	// Wrap the listener ourselves: StartTLS would add httptest's own
	// certificate, which Go serves to clients that send no SNI (IPs).
	srv.Listener = tls.NewListener(srv.Listener, m.TLSConfig())
	srv.Start()
	defer srv.Close()

	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: caPool(t, m)}}}
	for _, host := range []string{"127.0.0.1", "localhost"} {
		resp, err := client.Get("https://" + net.JoinHostPort(host, port) + "/")
		if err != nil {
			t.Fatalf("GET via %s with the CA as the only root: %v", host, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "hello over tls" {
			t.Errorf("body %q", body)
		}
		if resp.TLS == nil || !slices.Contains(resp.TLS.PeerCertificates[0].DNSNames, "localhost") {
			t.Errorf("peer certificate %v lacks localhost", resp.TLS)
		}
	}

	// Without the CA the same server is untrusted: the test can fail.
	plain := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}}
	if resp, err := plain.Get("https://" + srv.Listener.Addr().String()); err == nil {
		resp.Body.Close()
		t.Error("handshake succeeded without trusting the CA")
	}
}

func TestConcurrentHandshakesRenewOnce(t *testing.T) {
	clk := &clock{t: time.Now()}
	m, err := newManager(t.TempDir(), nil, nil, options{now: clk.now, serverLifetime: 30 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	old := served(t, m, "")
	clk.advance(25 * time.Hour)

	got := make([]*x509.Certificate, 16)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			c, err := m.TLSConfig().GetCertificate(&tls.ClientHelloInfo{})
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = c.Leaf
		})
	}
	wg.Wait()
	renewed := served(t, m, "")
	if renewed.Equal(old) {
		t.Fatal("not renewed")
	}
	for i, c := range got {
		if c != nil && !c.Equal(renewed) {
			t.Errorf("handshake %d got certificate %v, want the single renewed one %v", i, c.SerialNumber, renewed.SerialNumber)
		}
	}
}

// TestReplicasShareOneCA: replicas that start empty end up with one CA,
// whichever offered first, so a cluster trusts one certificate for every
// replica behind the load balancer; a replica whose existing CA is not
// the shared one refuses to start rather than switching under its clients.
func TestReplicasShareOneCA(t *testing.T) {
	var mu sync.Mutex
	stored := ""
	share := func(candidate string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if stored == "" {
			stored = candidate
		}
		return stored, nil
	}
	a, err := NewSharedManager(t.TempDir(), []string{"mirror.example"}, nil, share)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSharedManager(t.TempDir(), []string{"mirror.example"}, nil, share)
	if err != nil {
		t.Fatal(err)
	}
	caA, _ := os.ReadFile(a.CAFile())
	caB, _ := os.ReadFile(b.CAFile())
	if string(caA) != string(caB) {
		t.Fatal("the replicas have different CA files")
	}
	for _, m := range []*Manager{a, b} {
		leaf := served(t, m, "mirror.example")
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: caPool(t, a), DNSName: "mirror.example"}); err != nil {
			t.Errorf("a replica's certificate does not verify with the shared CA: %v", err)
		}
	}
	// Restarting a replica keeps its (shared) CA.
	if _, err := NewSharedManager(filepath.Dir(b.CAFile()), []string{"mirror.example"}, nil, share); err != nil {
		t.Errorf("restart of a replica: %v", err)
	}
	own := t.TempDir()
	if _, err := NewManager(own, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSharedManager(own, nil, nil, share); err == nil || !strings.Contains(err.Error(), "move") {
		t.Errorf("a replica with its own older CA: %v; want a refusal that says to move it away", err)
	}
}
