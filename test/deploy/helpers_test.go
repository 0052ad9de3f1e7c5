// Package deploy checks the ways Ferry is deployed, each run as a user
// would: ferry install's service command line, the container image under
// podman, the Helm chart rendered by helm, and a backup restored into a
// fresh instance.
package deploy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// proc is a server process started from a command line a deployment
// gives (a unit's ExecStart, a container), stopped when the test ends.
type proc struct {
	cmd  *exec.Cmd
	log  *testenv.LogBuffer
	done chan error
}

func startProc(t *testing.T, env []string, argv ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(argv[0], argv[1:]...), log: &testenv.LogBuffer{}, done: make(chan error, 1)}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", strings.Join(argv, " "), err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(p.stop)
	return p
}

func (p *proc) stop() {
	if p.cmd == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	p.cmd = nil
}

// exited returns the process's exit if it has ended.
func (p *proc) exited() error {
	if p == nil {
		return nil
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err == nil {
			err = errors.New("exit status 0")
		}
		return err
	default:
		return nil
	}
}

// caTransport trusts only the CA in caFile, as a client told to trust
// the registry's generated CA does.
func caTransport(t *testing.T, caFile string) *http.Transport {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatalf("the CA certificate: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no PEM certificate", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return tr
}

// waitStatus waits until GET url answers, and returns its status; it
// fails the test if p exits first or nothing answers within a minute.
func waitStatus(t *testing.T, tr http.RoundTripper, url string, p *proc) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err == nil {
			resp.Body.Close()
			return resp.StatusCode
		}
		last = err
		if err := p.exited(); err != nil {
			t.Fatalf("the server exited (%v) before answering %s:\n%s", err, url, p.log.String())
		}
		select {
		case <-ctx.Done():
			logs := ""
			if p != nil {
				logs = p.log.String()
			}
			t.Fatalf("%s did not answer: %v\n%s", url, last, logs)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// registry is how a test reaches a running Ferry: its host, transport
// and credentials.
type registry struct {
	host string
	tr   http.RoundTripper
	auth authn.Authenticator
	opts []name.Option
}

func (r registry) ref(t *testing.T, repo string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(r.host+"/"+repo, r.opts...)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// pushImages pushes n random images of two layers and returns their
// digests by repository:tag.
func pushImages(t *testing.T, r registry, n int) map[string]v1.Hash {
	t.Helper()
	out := map[string]v1.Hash{}
	for i := 0; i < n; i++ {
		img, err := random.Image(4096+int64(i)*1024, 2)
		if err != nil {
			t.Fatal(err)
		}
		repo := fmt.Sprintf("ocp/app%d:v%d", i, i)
		if err := remote.Write(r.ref(t, repo), img, remote.WithTransport(r.tr), remote.WithAuth(r.auth)); err != nil {
			t.Fatalf("push %s to %s: %v", repo, r.host, err)
		}
		d, _ := img.Digest()
		out[repo] = d
	}
	return out
}

// verifyImages pulls every image and checks its digest and every blob's.
func verifyImages(t *testing.T, r registry, images map[string]v1.Hash) {
	t.Helper()
	for repo, want := range images {
		img, err := remote.Image(r.ref(t, repo), remote.WithTransport(r.tr), remote.WithAuth(r.auth))
		if err != nil {
			t.Fatalf("pull %s from %s: %v", repo, r.host, err)
		}
		if got, err := img.Digest(); err != nil || got != want {
			t.Fatalf("%s from %s has digest %s (%v), want %s", repo, r.host, got, err, want)
		}
		if err := validate.Image(img); err != nil {
			t.Fatalf("%s from %s does not verify: %v", repo, r.host, err)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// insecureTransport skips certificate verification, as kubelet probes
// over HTTPS do.
func insecureTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the kubelet's probes
	return tr
}

func remoteDigest(t *testing.T, r registry, repo string) (v1.Hash, error) {
	t.Helper()
	desc, err := remote.Head(r.ref(t, repo), remote.WithTransport(r.tr), remote.WithAuth(r.auth))
	if err != nil {
		return v1.Hash{}, err
	}
	return desc.Digest, nil
}
