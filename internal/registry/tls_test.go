package registry_test

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
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestGivenCertificateHTTP2 serves with --tls-cert/--tls-key and pulls a
// blob over HTTP/2, whose response writer has no ReadFrom: the
// metrics wrapper must still copy the whole blob.
func TestGivenCertificateHTTP2(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	host := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	cmd := exec.Command(testenv.FerryBinary(t), "serve", "--listen", host, "--data-dir", filepath.Join(dir, "data"),
		"--tls-cert", certFile, "--tls-key", keyFile, "--auth=off")
	log := &testenv.LogBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM); cmd.Wait() })

	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	base := "https://" + host
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := hc.Get(base + "/v2/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferry serve with --tls-cert never answered: %v\n%s", err, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	data := bytes.Repeat([]byte("h2 blob "), 1<<17) // 1 MiB
	d := digest.FromBytes(data)
	resp, err := hc.Post(base+"/v2/tls/app/blobs/uploads/?digest="+string(d), "application/octet-stream", bytes.NewReader(data))
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("push over HTTPS: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = hc.Get(base + "/v2/tls/app/blobs/" + string(d))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Fatalf("blob over %s: status %d, %d bytes, %v; want %d bytes\n%s", resp.Proto, resp.StatusCode, len(got), err, len(data), log.String())
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("served over %s, want HTTP/2", resp.Proto)
	}
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ferry test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// startTLS runs ferry serve with TLS (generated unless args give a
// certificate) and returns its host:port once it accepts connections.
func startTLS(t *testing.T, dataDir string, args ...string) string {
	t.Helper()
	host := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	cmd := exec.Command(testenv.FerryBinary(t), append([]string{"serve", "--listen", host, "--data-dir", dataDir, "--auth=off"}, args...)...)
	log := &testenv.LogBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM); cmd.Wait() })
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		c, err := net.Dial("tcp", host)
		if err == nil {
			c.Close()
			return host
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferry serve never listened: %v\n%s", err, log.String())
		}
	}
}

// TestGeneratedCAOnlySignsServerNames: a certificate for quay.io signed
// with the key of the CA that `ferry serve` generated (the one clusters
// are told to trust) is refused by Go's verifier; the server's own
// certificate is accepted.
func TestGeneratedCAOnlySignsServerNames(t *testing.T) {
	dataDir := t.TempDir()
	host := startTLS(t, dataDir, "--hostname", "mirror.example.lan")
	pair, err := tls.LoadX509KeyPair(filepath.Join(dataDir, "tls", "ca.crt"), filepath.Join(dataDir, "tls", "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(pair.Leaf)

	conn, err := tls.Dial("tcp", host, &tls.Config{RootCAs: pool, ServerName: "mirror.example.lan"})
	if err != nil {
		t.Fatalf("handshake with the server trusting its CA: %v", err)
	}
	conn.Close()

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "quay.io"}, DNSNames: []string{"quay.io"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, pair.Leaf, &key.PublicKey, pair.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := x509.ParseCertificate(der)
	if _, err := forged.Verify(x509.VerifyOptions{Roots: pool, DNSName: "quay.io"}); err == nil {
		t.Fatal("a quay.io certificate signed with the generated CA's key verifies: the CA has no name constraints")
	} else if _, ok := err.(x509.CertificateInvalidError); !ok {
		t.Errorf("quay.io certificate refused for another reason than its name: %v", err)
	}
}

// TestTLS12RefusesCBCSuites: a TLS 1.2 client offering only CBC suites
// gets no handshake, with the generated CA and with --tls-cert; an AEAD
// suite is accepted.
func TestTLS12RefusesCBCSuites(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := selfSigned(t, dir)
	for name, host := range map[string]string{
		"generated":  startTLS(t, filepath.Join(dir, "gen")),
		"--tls-cert": startTLS(t, filepath.Join(dir, "given"), "--tls-cert", certFile, "--tls-key", keyFile),
	} {
		dial := func(suite uint16) error {
			c, err := tls.Dial("tcp", host, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12,
				CipherSuites: []uint16{suite}})
			if err == nil {
				c.Close()
			}
			return err
		}
		for _, cbc := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256} {
			if err := dial(cbc); err == nil {
				t.Errorf("%s: TLS 1.2 handshake with %s succeeded", name, tls.CipherSuiteName(cbc))
			}
		}
		if err := dial(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256); err != nil {
			t.Errorf("%s: TLS 1.2 with AES-GCM: %v", name, err)
		}
	}
}
