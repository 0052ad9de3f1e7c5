package ha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/fixtures"
	"github.com/ferry-mirror/ferry/internal/testenv"
)

// chaosFigures are what the chaos test measures, printed as a table.
type chaosFigures struct {
	kills, replicaRestarts, pgRestarts, minioPauses int
	pgOutage, minioOutage                           time.Duration
	pgRecover, minioRecover                         time.Duration // outage end to a request answered again
	mirrorTime                                      time.Duration
	images, verified                                int
	pulls, failedPulls                              int64
	passedOn                                        int64
	statuses, resent                                string

	killsDuringMirror                 int
	pgDuringMirror, minioDuringMirror bool
	minioResumed                      atomic.Bool
}

// done reports whether the planned outages are over.
func (f *chaosFigures) done() bool { return f.minioResumed.Load() }

// TestChaosMirror runs a real `ferry mirror` of a release (about 150
// images) into a load balancer in front of three replicas on PostgreSQL
// and MinIO while a replica is SIGKILLed and restarted every few seconds,
// PostgreSQL is restarted once and MinIO is paused once, and pulls of
// images mirrored before run all along. The run under chaos must succeed
// by itself; afterwards every image must verify by digest through the
// balancer and through each replica alone. Any 500 fails the test, as
// does any blob served with the wrong bytes.
func TestChaosMirror(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test: minutes of real processes")
	}
	pg := testenv.StartPostgres(t)
	m := testenv.StartMinIO(t)
	args := []string{"--metadata", pg.NewDatabase(t), "--blob-store", m.BlobStoreURL(testenv.BucketName())}
	var replicas []*testenv.Server
	var hosts []string
	for i := 0; i < 3; i++ {
		r := testenv.StartFerry(t, testenv.FerryOptions{Args: args, Env: m.Env()})
		replicas = append(replicas, r)
		hosts = append(hosts, r.Host)
	}
	lb := startBalancer(t, hosts)

	// The upstream: a release of 150 components in docker-registry, with
	// its signature server.
	up := testenv.StartUpstream(t, fixtures.Options{Seed: 15, Size: fixtures.SizeReleaseLight})
	const version = "4.16.5"
	rel, ok := up.ReleaseFor(version, "x86_64")
	if !ok {
		t.Fatalf("fixture has no release %s", version)
	}
	cfg := filepath.Join(t.TempDir(), "isc.yaml")
	if err := os.WriteFile(cfg, []byte(`kind: ImageSetConfiguration
apiVersion: mirror.openshift.io/v2alpha1
mirror:
  platform:
    channels:
    - name: stable-4.16
      minVersion: `+version+`
      maxVersion: `+version+`
`), 0o644); err != nil {
		t.Fatal(err)
	}

	// Images already mirrored, which the pull load reads during the storm.
	type pushed struct{ repo, digest string }
	var before []pushed
	for i := 0; i < 4; i++ {
		img, err := random.Image(256<<10, 3)
		if err != nil {
			t.Fatal(err)
		}
		repo := fmt.Sprintf("pulled/app%d:v1", i)
		if err := remote.Write(refHost(t, lb.Host, repo), img); err != nil {
			t.Fatalf("push %s before the storm: %v", repo, err)
		}
		d, _ := img.Digest()
		before = append(before, pushed{strings.TrimSuffix(repo, ":v1"), d.String()})
	}

	var fig chaosFigures
	var mirrorDone atomic.Int32
	start := time.Now()
	storm, stopStorm := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var stormErr error
	var stormMu sync.Mutex
	stormFail := func(err error) {
		stormMu.Lock()
		defer stormMu.Unlock()
		if stormErr == nil {
			stormErr = err
		}
	}

	// Pull load: two clients pull the images mirrored before, checking
	// every byte; failures are counted (a client retries), wrong data
	// fails the test.
	var pulls, failedPulls atomic.Int64
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 15))
			for storm.Err() == nil {
				p := before[rng.IntN(len(before))]
				pulls.Add(1)
				if err := pullVerify(storm, lb.Host, p.repo, p.digest); err != nil {
					if storm.Err() != nil {
						return
					}
					var wrong *wrongBytes
					if errorsAs(err, &wrong) {
						stormFail(err)
						return
					}
					failedPulls.Add(1)
				}
				sleepCtx(storm, 100*time.Millisecond)
			}
		}(w)
	}

	// Replica kills: a second after the last one is back, the next
	// replica is SIGKILLed and started again (later if it cannot start,
	// e.g. while PostgreSQL is down). Every second, not every two: a
	// mirror that finished in 12 s on a quick run saw only two kills.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			if !sleepCtx(storm, time.Second) {
				return
			}
			r := replicas[i%len(replicas)]
			r.Kill()
			fig.kills++
			if mirrorDone.Load() == 0 {
				fig.killsDuringMirror++
			}
			for storm.Err() == nil {
				if err := r.Start(); err == nil {
					fig.replicaRestarts++
					break
				}
				sleepCtx(storm, time.Second)
			}
		}
	}()

	// PostgreSQL restarts once, MinIO pauses once.
	wg.Add(1)
	go func() {
		defer wg.Done()
		if !sleepCtx(storm, 2*time.Second) {
			return
		}
		start := time.Now()
		pg.Stop()
		fig.pgDuringMirror = mirrorDone.Load() == 0
		sleepCtx(context.Background(), 2*time.Second)
		if err := pg.Start(); err != nil {
			stormFail(fmt.Errorf("restart PostgreSQL: %w", err))
			return
		}
		fig.pgRestarts++
		fig.pgOutage = time.Since(start)
		fig.pgRecover = timeToAnswer(lb.Host, before[0].repo)
		if !sleepCtx(storm, time.Second) {
			return
		}
		start = time.Now()
		if err := m.Pause(); err != nil {
			stormFail(fmt.Errorf("pause MinIO: %w", err))
			return
		}
		fig.minioDuringMirror = mirrorDone.Load() == 0
		sleepCtx(context.Background(), 5*time.Second)
		if err := m.Resume(); err != nil {
			stormFail(fmt.Errorf("resume MinIO: %w", err))
			return
		}
		fig.minioResumed.Store(true)
		fig.minioPauses++
		fig.minioOutage = time.Since(start)
		fig.minioRecover = timeToAnswer(lb.Host, before[0].repo)
	}()

	out, code := testenv.RunFerry(t, up.Servers.Env(up.KeyFile), "mirror", "-c", cfg, "--workspace", "file://"+t.TempDir(),
		"docker://"+lb.Host+"/ocp", "--src-tls-verify=false", "--dest-tls-verify=false",
		"--parallel-images", "2", "--retry-times", "6", "--retry-delay", "500ms")
	fig.mirrorTime = time.Since(start)
	mirrorDone.Store(1)
	// The planned outages finish (MinIO resumes) before the checks.
	for !fig.done() && stormErr == nil && time.Since(start) < time.Minute {
		time.Sleep(100 * time.Millisecond)
	}
	stopStorm()
	wg.Wait()
	m.Resume() // never leave MinIO stopped
	if stormErr != nil {
		t.Fatal(stormErr)
	}
	if code != 0 {
		t.Fatalf("ferry mirror under chaos exited %d; it must succeed by itself:\n%s", code, tail(out, 4000))
	}
	for i, r := range replicas {
		if err := r.Start(); err != nil {
			t.Fatalf("replica %d does not start after the storm: %v", i, err)
		}
	}

	// Every image, through the balancer and through each replica alone.
	images := map[string]string{"ocp/openshift/release-images:" + version + "-x86_64": rel.Image.Digest}
	for _, c := range rel.Components {
		images["ocp/openshift/release:"+version+"-x86_64-"+c.Name] = c.Image.Digest
	}
	fig.images = len(images)
	for _, host := range append([]string{lb.Host}, hosts...) {
		checked := map[string]bool{}
		for ref, want := range images {
			repo, tag, _ := strings.Cut(ref, ":")
			if err := verifyTag(host, repo, tag, want, checked); err != nil {
				t.Errorf("through %s: %v", host, err)
				continue
			}
			if host == lb.Host {
				fig.verified++
			}
		}
	}
	fig.pulls, fig.failedPulls, fig.passedOn, fig.resent = pulls.Load(), failedPulls.Load(), lb.passedOn.Load(), lb.resentByMethod()
	var n500 int
	var errs []string
	fig.statuses, n500, errs = lb.report()
	t.Logf("chaos figures:\n%s", fig.table())
	if n500 > 0 {
		t.Errorf("%d answers were 500 (a store outage must be 503 with Retry-After):\n%s", n500, strings.Join(errs, "\n"))
	}
	if fig.killsDuringMirror < 3 || !fig.pgDuringMirror || !fig.minioDuringMirror {
		t.Errorf("the storm missed the mirror: %d kills while it ran, PostgreSQL restart during it %v, MinIO pause during it %v",
			fig.killsDuringMirror, fig.pgDuringMirror, fig.minioDuringMirror)
	}
}

func (f *chaosFigures) table() string {
	var b strings.Builder
	row := func(k, v string) { fmt.Fprintf(&b, "| %-36s | %-28s |\n", k, v) }
	row("replica SIGKILLs (during the mirror)", fmt.Sprintf("%d (%d), all restarted: %v", f.kills, f.killsDuringMirror, f.kills == f.replicaRestarts))
	row("PostgreSQL restarts / outage", fmt.Sprintf("%d / %s", f.pgRestarts, f.pgOutage.Round(100*time.Millisecond)))
	row("MinIO pauses / outage", fmt.Sprintf("%d / %s", f.minioPauses, f.minioOutage.Round(100*time.Millisecond)))
	row("time to recover after PostgreSQL", f.pgRecover.Round(time.Millisecond).String())
	row("time to recover after MinIO", f.minioRecover.Round(time.Millisecond).String())
	row("ferry mirror under chaos", f.mirrorTime.Round(time.Second).String()+", exit 0")
	row("images verified (balancer + each)", fmt.Sprintf("%d of %d", f.verified, f.images))
	row("pulls during the storm / failed", fmt.Sprintf("%d / %d", f.pulls, f.failedPulls))
	row("requests passed on to a replica", fmt.Sprintf("%d (%s)", f.passedOn, f.resent))
	row("answers by status", f.statuses)
	return b.String()
}

// timeToAnswer measures how long after an outage a manifest read through
// host is answered 200 again.
func timeToAnswer(host, repo string) time.Duration {
	start := time.Now()
	for time.Since(start) < time.Minute {
		resp, err := http.Get("http://" + host + "/v2/" + repo + "/manifests/v1")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Minute
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "...\n" + s[len(s)-n:]
	}
	return s
}

// wrongBytes is content that does not match its digest: what must never
// happen.
type wrongBytes struct{ what, want, got string }

func (e *wrongBytes) Error() string {
	return fmt.Sprintf("%s served with the wrong bytes: digest %s, want %s", e.what, e.got, e.want)
}

const manifestAccept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, " +
	"application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"

// fetch GETs u and returns the body of a 200.
func fetch(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// pullVerify pulls repo@want through host and checks the manifest and
// every blob it names against their digests. A failed request is an
// error; bytes that do not match are a *wrongBytes.
func pullVerify(ctx context.Context, host, repo, want string) error {
	return verifyManifest(ctx, host, repo, want, want, map[string]bool{})
}

// verifyTag checks that repo:tag is want through host, with every blob.
func verifyTag(host, repo, tag, want string, checked map[string]bool) error {
	return verifyManifest(context.Background(), host, repo, tag, want, checked)
}

func verifyManifest(ctx context.Context, host, repo, ref, want string, checked map[string]bool) error {
	base := "http://" + host + "/v2/" + repo
	body, err := fetch(ctx, base+"/manifests/"+ref)
	if err != nil {
		return err
	}
	if got := digest.FromBytes(body).String(); got != want {
		if ref == want {
			return &wrongBytes{repo + "@" + want, want, got}
		}
		return fmt.Errorf("%s:%s is %s, want %s", repo, ref, got, want)
	}
	var m struct {
		Config    *struct{ Digest string }  `json:"config"`
		Layers    []struct{ Digest string } `json:"layers"`
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("%s@%s: %w", repo, want, err)
	}
	for _, c := range m.Manifests {
		if err := verifyManifest(ctx, host, repo, c.Digest, c.Digest, checked); err != nil {
			return err
		}
	}
	blobs := m.Layers
	if m.Config != nil {
		blobs = append(blobs, struct{ Digest string }{m.Config.Digest})
	}
	for _, b := range blobs {
		if checked[b.Digest] {
			continue
		}
		data, err := fetch(ctx, base+"/blobs/"+b.Digest)
		if err != nil {
			return err
		}
		if got := digest.FromBytes(data).String(); got != b.Digest {
			return &wrongBytes{repo + " blob " + b.Digest, b.Digest, got}
		}
		checked[b.Digest] = true
	}
	return nil
}

func refHost(t *testing.T, host, repo string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(host+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
