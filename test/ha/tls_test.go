package ha

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/jackc/pgx/v5"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// startTLSReplica runs ferry serve with generated TLS (no --plain-http)
// on the shared stores and returns its address and data dir.
func startTLSReplica(t *testing.T, storeArgs, env []string) (string, string, *testenv.LogBuffer) {
	t.Helper()
	dir := t.TempDir()
	host := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	log := &testenv.LogBuffer{}
	cmd := exec.Command(testenv.FerryBinary(t), append([]string{"serve", "--listen", host, "--data-dir", dir, "--hostname", "mirror.ha.test", "--auth=off"}, storeArgs...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
	})
	return host, dir, log
}

// TestReplicasShareGeneratedCA: replicas on shared stores that generate
// their TLS certificates all chain to one CA, so a cluster that trusts the
// CA file of any replica reaches every replica behind the load balancer.
func TestReplicasShareGeneratedCA(t *testing.T) {
	pg := testenv.StartPostgres(t)
	m := testenv.StartMinIO(t)
	db := pg.NewDatabase(t)
	args := []string{"--metadata", db, "--blob-store", m.BlobStoreURL(testenv.BucketName())}
	// Replicas sharing a store share the key that seals the CA in it.
	env := append(m.Env(), "FERRY_SECRETS_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	hostA, dirA, logA := startTLSReplica(t, args, env)
	hostB, dirB, logB := startTLSReplica(t, args, env)

	caFile := filepath.Join(dirA, "tls", "ca.crt")
	var ca []byte
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(caFile); err == nil && len(b) > 0 {
			ca = b
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("replica A wrote no CA at %s:\n%s", caFile, logA.String())
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	client := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	for _, h := range []struct {
		host string
		log  *testenv.LogBuffer
	}{{hostA, logA}, {hostB, logB}} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var err error
		for ctx.Err() == nil {
			var resp *http.Response
			if resp, err = client.Get("https://" + h.host + "/v2/"); err == nil {
				resp.Body.Close()
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		cancel()
		if err != nil {
			t.Fatalf("replica %s over HTTPS trusting replica A's CA: %v\n%s", h.host, err, h.log.String())
		}
	}
	caB, _ := os.ReadFile(filepath.Join(dirB, "tls", "ca.crt"))
	if string(caB) != string(ca) {
		t.Error("replica B's CA file differs from replica A's")
	}

	// Push through A, pull through B, trusting only the one CA.
	img, err := random.Image(64<<10, 2)
	if err != nil {
		t.Fatal(err)
	}
	refA, _ := name.ParseReference(hostA + "/ha/tls:1")
	refB, _ := name.ParseReference(hostB + "/ha/tls:1")
	if err := remote.Write(refA, img, remote.WithTransport(tr)); err != nil {
		t.Fatalf("push through A: %v", err)
	}
	got, err := remote.Get(refB, remote.WithTransport(tr))
	if err != nil {
		t.Fatalf("pull through B: %v", err)
	}
	if want, _ := img.Digest(); got.Digest != want {
		t.Errorf("B serves %s, pushed %s", got.Digest, want)
	}

	// Whoever reads the database does not get the CA's key.
	conn, err := pgx.Connect(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var stored string
	if err := conn.QueryRow(context.Background(), `SELECT secret FROM signing_keys WHERE id = 2`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "ferry-sealed:v1:") || strings.Contains(stored, "PRIVATE KEY") {
		t.Errorf("the shared CA is stored unsealed in PostgreSQL: %.60s…", stored)
	}
}
