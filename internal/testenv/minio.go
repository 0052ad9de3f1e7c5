package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// MinIO is a throwaway S3 server (MinIO) on 127.0.0.1.
type MinIO struct {
	Host      string // 127.0.0.1:port, the S3 endpoint
	AccessKey string
	SecretKey string
	Log       *LogBuffer

	cmd  *exec.Cmd
	done chan error
}

// StartMinIO runs `minio server` on a temporary directory and free
// loopback ports (S3 and console); it is stopped when the test ends.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	bin := Tool(t, "minio")
	m := &MinIO{AccessKey: "ferrytest", SecretKey: "ferrytest-secret", Log: &LogBuffer{}}
	m.Host = "127.0.0.1:" + strconv.Itoa(FreePort(t))
	console := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	m.cmd = exec.Command(bin, "server", t.TempDir(), "--address", m.Host, "--console-address", console, "--quiet")
	m.cmd.Env = append(m.cmd.Environ(),
		"MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=on")
	m.cmd.Stdout, m.cmd.Stderr = m.Log, m.Log
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start minio: %v", err)
	}
	m.done = make(chan error, 1)
	go func() { m.done <- m.cmd.Wait() }()
	t.Cleanup(m.stop)
	if err := m.waitReady(60 * time.Second); err != nil {
		t.Fatalf("minio did not become ready: %v\n%s", err, m.Log.String())
	}
	return m
}

func (m *MinIO) waitReady(limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	ready := func(status int) bool { return status == http.StatusOK }
	return waitHTTP(ctx, "http://"+m.Host+"/minio/health/ready", ready, 100*time.Millisecond, m.done, "minio")
}

func (m *MinIO) stop() {
	if m.cmd == nil {
		return
	}
	stopGroup(m.cmd.Process.Pid, syscall.SIGTERM, m.done)
	m.cmd = nil
}

// Pause stops the MinIO process (SIGSTOP): connections stay open and
// requests hang, as with a stalled storage node, until Resume.
func (m *MinIO) Pause() error { return syscall.Kill(-m.cmd.Process.Pid, syscall.SIGSTOP) }

// Resume continues a paused MinIO (SIGCONT).
func (m *MinIO) Resume() error { return syscall.Kill(-m.cmd.Process.Pid, syscall.SIGCONT) }

// BucketName returns a fresh bucket name (the bucket itself is created by
// whoever uses it, as Ferry's S3 store does on start).
func BucketName() string {
	var b [6]byte
	rand.Read(b[:])
	return "ferry-" + hex.EncodeToString(b[:])
}

// BlobStoreURL returns the --blob-store value for bucket on this server.
func (m *MinIO) BlobStoreURL(bucket string) string {
	return "s3://" + bucket + "?endpoint=" + m.Host + "&region=us-east-1&insecure=true"
}

// Env returns the credentials in the environment variables Ferry reads.
func (m *MinIO) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey}
}
