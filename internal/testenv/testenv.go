// Package testenv starts real registries and finds real clients for tests:
// the ferry binary built from this module, Debian's docker-registry (CNCF
// distribution 2.8) and CNCF distribution v3. Every server listens on
// 127.0.0.1 on a free port and is stopped when the test ends.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// InCI reports whether the tests run under CI, where every tool is installed
// and a missing one is a failure rather than a skip.
func InCI() bool { return os.Getenv("CI") != "" }

// Tool returns the path of an external program. Outside CI a missing tool
// skips the test; in CI it fails it, so a broken install step cannot hide.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := LookTool(name)
	if err != nil {
		if InCI() {
			t.Fatalf("%s is not installed: run scripts/install-test-deps.sh", name)
		}
		t.Skipf("%s is not installed (run scripts/install-test-deps.sh)", name)
	}
	return p
}

// LookTool finds name on PATH or in GOBIN / GOPATH/bin, where
// scripts/install-test-deps.sh puts Go tools.
func LookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if d := os.Getenv("GOPATH"); d != "" {
		dirs = append(dirs, filepath.Join(d, "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found", name)
}

// ModuleRoot returns the directory holding this module's go.mod.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// FerryBinary builds cmd/ferry once per test process and returns its path.
func FerryBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		// One folder for all test processes; each names its binary by its PID
		// and removes those of processes that have ended, so nothing piles up.
		dir := filepath.Join(os.TempDir(), "ferry-test-bin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			buildErr = err
			return
		}
		removeStaleBinaries(dir)
		buildPath = filepath.Join(dir, "ferry-"+strconv.Itoa(os.Getpid()))
		args := []string{"build", "-o", buildPath}
		if RaceEnabled {
			args = append(args, "-race")
			// A race-enabled binary sleeps a second at exit unless told
			// not to; tests run it hundreds of times.
			if os.Getenv("GORACE") == "" {
				_ = os.Setenv("GORACE", "atexit_sleep_ms=0")
			}
		}
		args = append(args, "./cmd/ferry")
		cmd := exec.Command("go", args...)
		cmd.Dir = ModuleRoot(t)
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/ferry: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

func removeStaleBinaries(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		pid, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "ferry-"))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Server is a registry process under test.
type Server struct {
	Host    string // 127.0.0.1:port
	URL     string // http://127.0.0.1:port
	DataDir string
	Args    []string
	Log     *LogBuffer

	t       testing.TB
	bin     string
	env     []string
	mu      sync.Mutex
	cmd     *exec.Cmd
	waitErr chan error
}

// FerryOptions tunes StartFerry.
type FerryOptions struct {
	DataDir string   // default: a new temporary directory
	Args    []string // extra flags for ferry serve
	Env     []string // extra environment variables
	// Secure keeps serve's default, authentication on; otherwise the
	// registry is open (--auth=off) unless Args has an --auth flag.
	Secure bool
}

// StartFerry runs `ferry serve --plain-http` on a free loopback port and
// waits until it answers /v2/.
func StartFerry(t testing.TB, opts FerryOptions) *Server {
	t.Helper()
	bin := FerryBinary(t)
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	port := FreePort(t)
	host := "127.0.0.1:" + strconv.Itoa(port)
	args := append([]string{"serve", "--plain-http", "--listen", host, "--data-dir", opts.DataDir}, opts.Args...)
	if !opts.Secure && !slices.ContainsFunc(opts.Args, func(a string) bool { return strings.HasPrefix(a, "--auth") }) {
		// Most tests need an open registry; serve's default is auth on.
		args = append(args, "--auth=off")
	}
	s := &Server{Host: host, URL: "http://" + host, DataDir: opts.DataDir, Args: args, t: t, bin: bin, env: opts.Env}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// StartDockerRegistry runs Debian's docker-registry (CNCF distribution 2.8)
// with deletes enabled on a free loopback port.
func StartDockerRegistry(t testing.TB) *Server {
	t.Helper()
	return startDistribution(t, Tool(t, "docker-registry"))
}

// StartDistributionV3 runs CNCF distribution v3 (installed as
// distribution-v3 by scripts/install-test-deps.sh).
func StartDistributionV3(t testing.TB) *Server {
	t.Helper()
	return startDistribution(t, Tool(t, "distribution-v3"))
}

// StartLenientRegistry runs distribution v3 with index validation off, so
// it stores and serves an index whose children are missing or are not
// digests at all: the hostile upstream that tests of ferry mirror need,
// which ferry serve and docker-registry refuse to hold.
func StartLenientRegistry(t testing.TB) *Server {
	t.Helper()
	return startDistribution(t, Tool(t, "distribution-v3"), "validation:\n  manifests:\n    indexes:\n      platforms: none\n")
}

func startDistribution(t testing.TB, bin string, extraConfig ...string) *Server {
	dir := t.TempDir()
	port := FreePort(t)
	host := "127.0.0.1:" + strconv.Itoa(port)
	conf := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  debug:
    addr: ""
`, filepath.Join(dir, "data"), host) + strings.Join(extraConfig, "")
	confPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &Server{Host: host, URL: "http://" + host, DataDir: dir, Args: []string{"serve", confPath}, t: t, bin: bin,
		env: []string{"OTEL_TRACES_EXPORTER=none"}}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	if err := s.Start(); err != nil {
		s.t.Fatal(err)
	}
}

// Start runs the process again after Kill or Stop, on the same port and
// data, and waits until it answers (nothing when it runs); unlike Restart it returns its failure,
// so it may be called outside the test's goroutine.
func (s *Server) Start() error {
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		return nil // running
	}
	cmd := exec.Command(s.bin, s.Args...)
	cmd.Env = append(os.Environ(), s.env...)
	if s.Log == nil {
		s.Log = &LogBuffer{}
	}
	cmd.Stdout = s.Log
	cmd.Stderr = s.Log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	s.cmd = cmd
	waitErr := make(chan error, 1)
	s.waitErr = waitErr
	go func() { waitErr <- cmd.Wait() }()
	s.mu.Unlock()
	if err := s.waitReady(30 * time.Second); err != nil {
		s.Kill()
		return fmt.Errorf("%s %s did not become ready: %v\n%s", filepath.Base(s.bin), strings.Join(s.Args, " "), err, s.Log.String())
	}
	return nil
}

func (s *Server) waitReady(limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	ready := func(status int) bool { return status == http.StatusOK || status == http.StatusUnauthorized }
	return waitHTTP(ctx, s.URL+"/v2/", ready, 50*time.Millisecond, s.waitErr, "process")
}

// Kill sends SIGKILL, as a crash or an OOM kill would, and waits for exit.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.waitErr
	s.cmd = nil
}

// Stop sends SIGTERM and waits up to 10 s before killing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	stopGroup(s.cmd.Process.Pid, syscall.SIGTERM, s.waitErr)
	s.cmd = nil
}

// CPUTime is the user plus system CPU the running process has used so
// far, read from /proc; benchmarks use it to tell where time goes.
func (s *Server) CPUTime() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are
	// the 14th and 15th fields of the whole line, in clock ticks (100/s).
	_, rest, _ := strings.Cut(string(data), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// Restart starts the same process again on the same port and data.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// LogBuffer collects a process's output; safe to read while it writes.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
