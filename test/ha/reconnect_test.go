package ha

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// status GETs url and returns the status and Retry-After; 0 when the
// request failed.
func status(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 20 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, ""
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

func pushRandom(t *testing.T, host, repo string, size int64, layers int) (v1.Image, error) {
	t.Helper()
	img, err := random.Image(size, int64(layers))
	if err != nil {
		t.Fatal(err)
	}
	return img, remote.Write(refHost(t, host, repo), img)
}

// TestPostgresRestart restarts PostgreSQL under a running replica: while
// it is down requests are answered 503 with Retry-After (never 500) and
// /readyz says not ready; once it is back the same process answers again
// within seconds, its pooled connections replaced, with no 500 in between.
func TestPostgresRestart(t *testing.T) {
	pg := testenv.StartPostgres(t)
	m := testenv.StartMinIO(t)
	r := testenv.StartFerry(t, testenv.FerryOptions{
		Args: []string{"--metadata", pg.NewDatabase(t), "--blob-store", m.BlobStoreURL(testenv.BucketName())},
		Env:  m.Env(),
	})
	img, err := pushRandom(t, r.Host, "pg/app:v1", 64<<10, 2)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	manifest := r.URL + "/v2/pg/app/manifests/v1"
	// Fill the pool: several connections that will all be stale.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); status(t, manifest) }()
	}
	wg.Wait()

	pg.Stop()
	for _, u := range []string{manifest, r.URL + "/v2/pg/app/tags/list", r.URL + "/v2/pg/app/blobs/" + want.String()} {
		code, retry := status(t, u)
		if code != http.StatusServiceUnavailable || retry == "" {
			t.Errorf("GET %s with PostgreSQL down: %d, Retry-After %q; want 503 with Retry-After", u, code, retry)
		}
	}
	resp, err := http.Post(r.URL+"/v2/pg/app/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("POST upload with PostgreSQL down: %d, want 503", resp.StatusCode)
	}
	if code, _ := status(t, r.URL+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with PostgreSQL down: %d, want 503", code)
	}

	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	for {
		code, _ := status(t, manifest)
		if code == http.StatusOK {
			break
		}
		if code != http.StatusServiceUnavailable {
			t.Fatalf("GET manifest while PostgreSQL comes back: %d, want 503 or 200", code)
		}
		if time.Since(back) > 10*time.Second {
			t.Fatal("the replica did not answer again within 10 s of PostgreSQL's restart")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("manifest answered again %s after PostgreSQL was back", time.Since(back).Round(time.Millisecond))
	// Every pooled connection was closed by the restart: none may show.
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, _ := status(t, manifest); code != http.StatusOK {
				t.Errorf("GET manifest after recovery: %d, want 200", code)
			}
		}()
	}
	wg.Wait()
	if code, _ := status(t, r.URL+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after recovery: %d, want 200", code)
	}
	img2, err := pushRandom(t, r.Host, "pg/app:v2", 64<<10, 2)
	if err != nil {
		t.Fatalf("push after PostgreSQL's restart: %v", err)
	}
	d2, _ := img2.Digest()
	verifyImage(t, r, "pg/app:v2", d2)
	verifyImage(t, r, "pg/app:v1", want)
}

// TestMinIOPause stops MinIO (SIGSTOP) for 8 s during a push: /readyz goes
// not ready and then ready again, and the push either completes or fails
// cleanly, and then succeeds when retried, with the image intact.
func TestMinIOPause(t *testing.T) {
	pg := testenv.StartPostgres(t)
	m := testenv.StartMinIO(t)
	r := testenv.StartFerry(t, testenv.FerryOptions{
		Args: []string{"--metadata", pg.NewDatabase(t), "--blob-store", m.BlobStoreURL(testenv.BucketName())},
		Env:  m.Env(),
	})
	t.Cleanup(func() { m.Resume() })
	img, err := random.Image(4<<20, 4)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	pushed := make(chan error, 1)
	go func() { pushed <- remote.Write(refHost(t, r.Host, "pause/app:v1"), img) }()
	time.Sleep(200 * time.Millisecond)
	if err := m.Pause(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	notReady := false
	for time.Since(paused) < 8*time.Second {
		if code, _ := status(t, r.URL+"/readyz"); code == http.StatusServiceUnavailable {
			notReady = true
			break
		}
	}
	time.Sleep(8*time.Second - time.Since(paused))
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	if !notReady {
		t.Error("/readyz never went not ready while MinIO was paused")
	}
	for {
		if code, _ := status(t, r.URL+"/readyz"); code == http.StatusOK {
			break
		}
		if time.Since(resumed) > 15*time.Second {
			t.Fatal("/readyz not ready 15 s after MinIO resumed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("/readyz ready %s after MinIO resumed", time.Since(resumed).Round(time.Millisecond))
	if err := <-pushed; err != nil {
		t.Logf("push in flight failed cleanly: %v; retrying", err)
		if err := remote.Write(refHost(t, r.Host, "pause/app:v1"), img); err != nil {
			t.Fatalf("push retried after MinIO resumed: %v", err)
		}
	}
	verifyImage(t, r, "pause/app:v1", want)
}

// TestResentPutOnAnotherReplica sends the closing PUT of an upload the
// way a balancer resends it after a replica died: first cut mid-body on A
// and sent whole to B, then, for another blob, answered by A and sent
// again to B. Each blob ends up stored once with its exact bytes (never
// the last chunk twice) and every resend is answered 201.
func TestResentPutOnAnotherReplica(t *testing.T) {
	c := startCluster(t, 3)
	a, b, cc := c.replicas[0], c.replicas[1], c.replicas[2]
	for _, tc := range []struct {
		name string
		// first sends the PUT to A the first time.
		first func(t *testing.T, url string, last []byte)
	}{
		{"cut on A mid-body", func(t *testing.T, url string, last []byte) {
			pr, pw := io.Pipe()
			go func() {
				pw.Write(last[:300])
				pw.CloseWithError(errors.New("replica died"))
			}()
			req, _ := http.NewRequest(http.MethodPut, url, pr)
			req.ContentLength = int64(len(last))
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated {
					t.Fatal("a PUT cut mid-body was answered 201")
				}
			}
		}},
		{"answered by A, answer lost", func(t *testing.T, url string, last []byte) {
			if resp := do(t, http.MethodPut, url, last); resp.StatusCode != http.StatusCreated {
				t.Fatalf("PUT on A: %d", resp.StatusCode)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, last := randomData(t, 4096), randomData(t, 532)
			whole := append(append([]byte(nil), first...), last...)
			d := digest.FromBytes(whole)
			resp := do(t, http.MethodPost, a.URL+"/v2/resend/app/blobs/uploads/", nil)
			resp.Body.Close()
			loc := resp.Header.Get("Location")
			if resp.StatusCode != http.StatusAccepted || loc == "" {
				t.Fatalf("POST: %d, Location %q", resp.StatusCode, loc)
			}
			resp = do(t, http.MethodPatch, a.URL+loc, first, "Content-Range", fmt.Sprintf("0-%d", len(first)-1))
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("PATCH: %d", resp.StatusCode)
			}
			put := loc + "?digest=" + d.String()
			tc.first(t, a.URL+put, last)
			resp = do(t, http.MethodPut, b.URL+put, last)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("the same PUT resent to B: %d, want 201", resp.StatusCode)
			}
			got := do(t, http.MethodGet, cc.URL+"/v2/resend/app/blobs/"+d.String(), nil)
			body, _ := io.ReadAll(got.Body)
			got.Body.Close()
			if got.StatusCode != http.StatusOK || !bytes.Equal(body, whole) {
				t.Fatalf("blob through C: %d, %d bytes; want 200 and the %d bytes sent", got.StatusCode, len(body), len(whole))
			}
		})
	}
}

func randomData(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}
