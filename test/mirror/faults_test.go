package mirror_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// bulkUpstream pushes n images of 3 layers of size bytes each, big enough
// that a kill lands mid-transfer.
func bulkUpstream(t *testing.T, host string, n int, size int64) (string, map[string]string) {
	t.Helper()
	var isc strings.Builder
	isc.WriteString("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n  additionalImages:\n")
	digests := map[string]string{}
	for i := range n {
		repo := fmt.Sprintf("bulk/img%02d", i)
		img := must(random.Image(size, 3))
		d := push(t, host+"/"+repo+":v1", img)
		digests[repo] = d.String()
		fmt.Fprintf(&isc, "  - name: %s/%s:v1\n", host, repo)
	}
	return isc.String(), digests
}

// killDuring starts ferry with args, waits until the destination has at
// least two repositories, and kills it with SIGKILL, like a crash.
func killDuring(t *testing.T, dstHost string, args ...string) {
	t.Helper()
	killWhen(t, func() bool { return len(testenv.Catalog(t, dstHost)) >= 2 }, args...)
}

// killWhen starts ferry with args and kills it with SIGKILL once started
// reports true.
func killWhen(t *testing.T, started func() bool, args ...string) {
	t.Helper()
	cmd := exec.Command(testenv.FerryBinary(t), args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("ferry finished (%v) before it could be killed; make the upstream bigger\n%s", err, buf.String())
		case <-deadline:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Fatal("destination never received anything")
		case <-time.After(20 * time.Millisecond):
		}
		if started() {
			break
		}
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
	t.Log("killed ferry mid-transfer")
}

func TestKillDuringMirrorToDisk(t *testing.T) {
	src := testenv.StartDockerRegistry(t)
	isc, digests := bulkUpstream(t, src.Host, 12, 1<<20)
	dir := t.TempDir()
	cfg := writeFile(t, filepath.Join(dir, "isc.yaml"), isc)
	arch := filepath.Join(dir, "archive")
	chunk := filepath.Join(arch, "ferry_000001.tar")
	killWhen(t, func() bool {
		fi, err := os.Stat(chunk)
		return err == nil && fi.Size() > 8<<20
	}, "mirror", "-c", cfg, "file://"+arch, "--parallel-images=1", "--parallel-layers=1")
	if _, err := os.Stat(filepath.Join(arch, "ferry-archive.json")); err == nil {
		t.Fatal("a killed m2d left a complete-looking archive")
	}
	out, code := ferry(t, nil, "mirror", "-c", cfg, "file://"+arch)
	if code != 0 {
		t.Fatalf("rerun after kill exited %d", code)
	}
	if n := count(t, out, `blobs: (\d+) copied`); n >= 12*4 {
		t.Errorf("rerun archived %d blobs; want only those the killed run had not", n)
	}
	src.Stop()
	dst := testenv.StartDistributionV3(t)
	if _, code := ferry(t, nil, "mirror", "-c", cfg, "--from", "file://"+arch, "docker://"+dst.Host+"/m", "--dest-tls-verify=false"); code != 0 {
		t.Fatalf("d2m of the resumed archive exited %d", code)
	}
	for repo, d := range digests {
		testenv.AssertDigest(t, dst.Host, "m/"+repo, "v1", d)
	}
}

func TestKillDuringMirrorToMirror(t *testing.T) {
	for _, d := range destinations() {
		t.Run(d.name, func(t *testing.T) {
			src := testenv.StartDockerRegistry(t)
			dst := d.start(t)
			isc, digests := bulkUpstream(t, src.Host, 12, 1<<20)
			dir := t.TempDir()
			cfg := writeFile(t, filepath.Join(dir, "isc.yaml"), isc)
			args := []string{"mirror", "-c", cfg, "--workspace", "file://" + dir, "docker://" + dst.Host + "/m", "--dest-tls-verify=false", "--parallel-images=1", "--parallel-layers=1"}
			killDuring(t, dst.Host, args...)
			out, code := ferry(t, nil, args...)
			if code != 0 {
				t.Fatalf("rerun after kill exited %d", code)
			}
			if n := count(t, out, `images: (\d+) copied`); n == 12 || n == 0 {
				t.Errorf("rerun copied %d of 12 images; want only those the killed run did not finish", n)
			}
			for repo, d := range digests {
				testenv.AssertDigest(t, dst.Host, "m/"+repo, "v1", d)
			}
			out, _ = ferry(t, nil, args...)
			if n := count(t, out, `blobs: (\d+) copied`); n != 0 {
				t.Errorf("third run copied %d blobs; want 0", n)
			}
		})
	}
}

func TestKillDuringDiskToMirror(t *testing.T) {
	for _, d := range destinations() {
		t.Run(d.name, func(t *testing.T) {
			src := testenv.StartDockerRegistry(t)
			dst := d.start(t)
			isc, digests := bulkUpstream(t, src.Host, 12, 1<<20)
			dir := t.TempDir()
			cfg := writeFile(t, filepath.Join(dir, "isc.yaml"), isc)
			arch := filepath.Join(dir, "archive")
			if _, code := ferry(t, nil, "mirror", "-c", cfg, "file://"+arch); code != 0 {
				t.Fatalf("m2d exited %d", code)
			}
			src.Stop()
			args := []string{"mirror", "-c", cfg, "--from", "file://" + arch, "docker://" + dst.Host + "/m", "--dest-tls-verify=false", "--parallel-images=1", "--parallel-layers=1"}
			killDuring(t, dst.Host, args...)
			out, code := ferry(t, nil, args...)
			if code != 0 {
				t.Fatalf("rerun after kill exited %d", code)
			}
			for repo, d := range digests {
				testenv.AssertDigest(t, dst.Host, "m/"+repo, "v1", d)
			}
			out, _ = ferry(t, nil, args...)
			if n := count(t, out, `blobs: (\d+) copied`); n != 0 {
				t.Errorf("third run copied %d blobs; want 0", n)
			}
		})
	}
}

func TestCorruptArchiveIsRefused(t *testing.T) {
	_, isc, arch := mirrorToDisk(t)
	dst := testenv.StartDistributionV3(t)
	chunk := filepath.Join(arch, "ferry_000001.tar")
	data, err := os.ReadFile(chunk)
	if err != nil {
		t.Fatal(err)
	}
	// Flip one byte inside the first blob's data (after its 512-byte header).
	data[700] ^= 0xff
	if err := os.WriteFile(chunk, data, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"mirror", "-c", isc, "--from", "file://" + arch, "docker://" + dst.Host, "--dest-tls-verify=false"}
	out, code := ferry(t, nil, args...)
	if code == 0 {
		t.Fatal("d2m of a corrupted archive succeeded")
	}
	if !strings.Contains(out, "ferry_000001.tar") || !strings.Contains(out, "sha256:") {
		t.Errorf("error does not name the chunk and the blob:\n%s", out)
	}
	if repos := testenv.Catalog(t, dst.Host); len(repos) != 0 {
		t.Errorf("destination has %v; nothing may be pushed from a corrupted archive", repos)
	}
	if _, code := ferry(t, nil, "archive", "verify", arch); code == 0 {
		t.Error("archive verify passed a corrupted archive")
	}

	if err := os.Remove(chunk); err != nil {
		t.Fatal(err)
	}
	out, code = ferry(t, nil, args...)
	if code == 0 || !strings.Contains(out, "ferry_000001.tar") {
		t.Errorf("d2m with a missing chunk: exit %d; want non-zero naming ferry_000001.tar", code)
	}
	if repos := testenv.Catalog(t, dst.Host); len(repos) != 0 {
		t.Errorf("destination has %v after a refused d2m", repos)
	}
}

// flakyProxy fronts a registry and, for its first `bad` blob and manifest
// requests, answers 500, drops the connection, or cuts a body short.
type flakyProxy struct {
	bad      int64
	n        atomic.Int64
	injected atomic.Int64
	rp       *httputil.ReverseProxy
}

func (p *flakyProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && (strings.Contains(r.URL.Path, "/blobs/") || strings.Contains(r.URL.Path, "/manifests/")) {
		n := p.n.Add(1)
		if n <= p.bad {
			p.injected.Add(1)
			switch n % 3 {
			case 0:
				http.Error(w, `{"errors":[{"code":"UNKNOWN","message":"injected"}]}`, http.StatusInternalServerError)
				return
			case 1:
				if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
					c.Close()
				}
				return
			case 2:
				rec := &cutWriter{ResponseWriter: w}
				p.rp.ServeHTTP(rec, r)
				return
			}
		}
	}
	p.rp.ServeHTTP(w, r)
}

// cutWriter passes the headers and half the body, then drops the connection.
type cutWriter struct {
	http.ResponseWriter
	written int
}

func (c *cutWriter) Write(b []byte) (int, error) {
	if c.written > 0 {
		if h, ok := c.ResponseWriter.(http.Hijacker); ok {
			if conn, _, err := h.Hijack(); err == nil {
				conn.Close()
			}
		}
		return 0, io.ErrClosedPipe
	}
	half := max(len(b)/2, 1)
	c.written += half
	n, err := c.ResponseWriter.Write(b[:half])
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
	if err == nil {
		err = io.ErrShortWrite
	}
	return n, err
}

func TestFlakyUpstreamIsRetried(t *testing.T) {
	reg := testenv.StartDockerRegistry(t)
	target, _ := url.Parse(reg.URL)
	proxy := &flakyProxy{bad: 24, rp: httputil.NewSingleHostReverseProxy(target)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	host := l.Addr().String()

	isc, digests := bulkUpstream(t, reg.Host, 4, 64<<10)
	isc = strings.ReplaceAll(isc, reg.Host, host)
	dst := testenv.StartDistributionV3(t)
	dir := t.TempDir()
	cfg := writeFile(t, filepath.Join(dir, "isc.yaml"), isc)
	_, code := ferry(t, nil, "mirror", "-c", cfg, "--workspace", "file://"+dir, "docker://"+dst.Host, "--dest-tls-verify=false", "--retry-times=6", "--retry-delay=20ms")
	if code != 0 {
		t.Fatalf("mirror through a flaky upstream exited %d", code)
	}
	if proxy.injected.Load() < 10 {
		t.Fatalf("only %d faults injected; the test did not exercise retries", proxy.injected.Load())
	}
	for repo, d := range digests {
		testenv.AssertDigest(t, dst.Host, repo, "v1", d)
	}
}

func TestMissingImageIsReported(t *testing.T) {
	src := testenv.StartDockerRegistry(t)
	u := buildUpstream(t, src.Host)
	dst := testenv.StartDistributionV3(t)
	dir := t.TempDir()
	isc := writeFile(t, filepath.Join(dir, "isc.yaml"), u.isc("  - name: "+src.Host+"/does/not-exist:1\n"))
	out, code := ferry(t, nil, "mirror", "-c", isc, "--workspace", "file://"+dir, "docker://"+dst.Host+"/mirror", "--dest-tls-verify=false")
	if code != 8 {
		t.Errorf("exit code %d; want 8 (additional images failed)", code)
	}
	assertMirrored(t, dst.Host, "mirror", u)
	reports, _ := filepath.Glob(filepath.Join(dir, "working-dir", "logs", "mirroring_errors_*.txt"))
	if len(reports) != 1 {
		t.Fatalf("failure reports: %v; want one", reports)
	}
	data, _ := os.ReadFile(reports[0])
	if !strings.Contains(string(data), "does/not-exist:1") || !strings.Contains(out, reports[0]) {
		t.Errorf("report %s holds %q; want the missing image named, and the output to name the report", reports[0], data)
	}
}

// TestImageTimeout: an upstream that stops sending one image's blobs (a
// hung link) costs that image --image-timeout, not the whole run: the
// image is reported with the flag named, the others are copied, and the
// exit code says additional images failed.
func TestImageTimeout(t *testing.T) {
	reg := testenv.StartDockerRegistry(t)
	isc, digests := bulkUpstream(t, reg.Host, 3, 32<<10)
	rp := httputil.NewSingleHostReverseProxy(must(url.Parse(reg.URL)))
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/bulk/img01/blobs/") {
			<-r.Context().Done() // hang until the client gives up
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	host := strings.TrimPrefix(front.URL, "http://")
	isc = strings.ReplaceAll(isc, reg.Host, host)
	dst := testenv.StartDistributionV3(t)
	dir := t.TempDir()
	cfg := writeFile(t, filepath.Join(dir, "isc.yaml"), isc)
	out, code := ferry(t, nil, "mirror", "-c", cfg, "--workspace", "file://"+dir, "docker://"+dst.Host, "--dest-tls-verify=false",
		"--src-tls-verify=false", "--image-timeout=3s")
	if code != 8 {
		t.Errorf("exit code %d; want 8 (additional images failed)\n%s", code, out)
	}
	if !strings.Contains(out, "--image-timeout") {
		t.Errorf("output does not name --image-timeout:\n%s", out)
	}
	for repo, d := range digests {
		if repo == "bulk/img01" {
			assertAbsent(t, dst.Host, repo, "v1")
			continue
		}
		testenv.AssertDigest(t, dst.Host, repo, "v1", d)
	}
}
