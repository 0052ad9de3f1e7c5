package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Postgres is a throwaway PostgreSQL server on 127.0.0.1.
type Postgres struct {
	Host string // 127.0.0.1:port
	Log  *LogBuffer

	t    testing.TB
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
	done chan error
}

// postgresBin finds the newest installed PostgreSQL server binaries
// (Debian puts them in /usr/lib/postgresql/<major>/bin, off PATH).
func postgresBin(t testing.TB) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return majorOf(dirs[i]) > majorOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	if InCI() {
		t.Fatal("PostgreSQL is not installed: run scripts/install-test-deps.sh")
	}
	t.Skip("PostgreSQL is not installed (run scripts/install-test-deps.sh)")
	return ""
}

func majorOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// StartPostgres initializes a cluster in a temporary directory and runs it
// on a free loopback port with the unix socket in that directory; it is
// stopped and removed when the test ends. PostgreSQL refuses to run as
// root, so as root it runs as the postgres user.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin := postgresBin(t)
	// Not t.TempDir: its 0700 root-owned parents keep the postgres user out.
	dir, err := os.MkdirTemp("", "ferry-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &Postgres{Log: &LogBuffer{}, t: t, bin: bin, dir: dir, port: FreePort(t)}
	p.Host = "127.0.0.1:" + strconv.Itoa(p.port)
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs a postgres user to run PostgreSQL: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := p.command("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	t.Cleanup(p.stop)
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	return p
}

// start runs the server on the cluster initialized in p.dir.
func (p *Postgres) start() error {
	p.cmd = p.command("postgres", "-D", filepath.Join(p.dir, "data"), "-h", "127.0.0.1", "-p", strconv.Itoa(p.port), "-k", p.dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200", "-c", "shared_buffers=32MB")
	p.cmd.Stdout, p.cmd.Stderr = p.Log, p.Log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		p.cmd = nil
		return fmt.Errorf("start postgres: %w", err)
	}
	p.done = make(chan error, 1)
	go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(p.cmd, p.done)
	if err := p.waitReady(30 * time.Second); err != nil {
		return fmt.Errorf("postgres did not become ready: %w\n%s", err, p.Log.String())
	}
	return nil
}

// Stop shuts the server down (fast shutdown: sessions are terminated, as
// in a restart for maintenance) and waits for it to exit.
func (p *Postgres) Stop() { p.stop() }

// Start runs the server again after Stop, on the same port and data.
func (p *Postgres) Start() error { return p.start() }

// command runs a PostgreSQL program, as the postgres user when root.
func (p *Postgres) command(name string, args ...string) *exec.Cmd {
	path := filepath.Join(p.bin, name)
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

func (p *Postgres) waitReady(limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		out, err := p.command("pg_isready", "-h", "127.0.0.1", "-p", strconv.Itoa(p.port), "-U", "postgres").CombinedOutput()
		if err == nil {
			return nil
		}
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("postgres exited: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("%w: %s", ctx.Err(), out)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (p *Postgres) stop() {
	if p.cmd == nil {
		return
	}
	// SIGINT is PostgreSQL's fast shutdown.
	stopGroup(p.cmd.Process.Pid, syscall.SIGINT, p.done)
	p.cmd = nil
}

// URL returns a connection URL for database db.
func (p *Postgres) URL(db string) string {
	return "postgres://postgres@" + p.Host + "/" + db + "?sslmode=disable"
}

// NewDatabase creates an empty database with a random name and returns its
// connection URL; tests sharing one server stay apart this way.
func (p *Postgres) NewDatabase(t testing.TB) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	name := "ferry_" + hex.EncodeToString(b[:])
	cmd := p.command("createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(p.port), "-U", "postgres", name)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("createdb %s: %v\n%s", name, err, strings.TrimSpace(string(out)))
	}
	return p.URL(name)
}
