// Package ha runs several real `ferry serve` replicas that share one
// PostgreSQL database and one S3 (MinIO) bucket, as a highly available
// deployment does, and checks that any replica can finish what another
// started and that a replica killed mid-push loses nothing.
package ha

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// cluster is n replicas on shared stores.
type cluster struct {
	replicas []*testenv.Server
	// storeArgs and env point a ferry command at the cluster's stores.
	storeArgs, env []string
}

func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	pg := testenv.StartPostgres(t)
	m := testenv.StartMinIO(t)
	args := []string{"--metadata", pg.NewDatabase(t), "--blob-store", m.BlobStoreURL(testenv.BucketName())}
	c := &cluster{storeArgs: args, env: m.Env()}
	for i := 0; i < n; i++ {
		c.replicas = append(c.replicas, testenv.StartFerry(t, testenv.FerryOptions{Args: args, Env: m.Env()}))
	}
	t.Cleanup(func() {
		// Stateless replicas: nothing was written to any data dir.
		for i, r := range c.replicas {
			entries, _ := os.ReadDir(r.DataDir)
			for _, e := range entries {
				t.Errorf("replica %d left %s in its data dir; HA replicas must keep no local state", i, e.Name())
			}
		}
	})
	return c
}

func ref(t *testing.T, s *testenv.Server, repo string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s.Host+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// verifyImage pulls the image through s and checks every blob's digest.
func verifyImage(t *testing.T, s *testenv.Server, repo string, want v1.Hash) {
	t.Helper()
	img, err := remote.Image(ref(t, s, repo))
	if err != nil {
		t.Fatalf("pull %s from %s: %v", repo, s.Host, err)
	}
	if got, _ := img.Digest(); got != want {
		t.Fatalf("%s from %s has digest %s, want %s", repo, s.Host, got, want)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		ld, _ := l.Digest()
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("layer %s from %s: %v", ld, s.Host, err)
		}
		got, err := digest.FromReader(rc)
		rc.Close()
		if err != nil || got.String() != ld.String() {
			t.Fatalf("layer %s from %s reads back as %s (%v)", ld, s.Host, got, err)
		}
	}
}

// TestPushOnePullAnother pushes with crane through replica A and pulls and
// verifies through B and C.
func TestPushOnePullAnother(t *testing.T) {
	crane := testenv.Tool(t, "crane")
	c := startCluster(t, 3)
	a, b := c.replicas[0], c.replicas[1]
	img, err := random.Image(3<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, a, "ha/app:v1"), img); err != nil {
		t.Fatalf("push through A: %v", err)
	}
	want, _ := img.Digest()
	for _, r := range c.replicas[1:] {
		verifyImage(t, r, "ha/app:v1", want)
	}
	// crane validate pulls every layer through B and checks it.
	out, err := exec.Command(crane, "validate", "--insecure", "--remote", b.Host+"/ha/app:v1").CombinedOutput()
	if err != nil {
		t.Fatalf("crane validate through B: %v\n%s", err, out)
	}
	// A copy made through B is visible on C.
	out, err = exec.Command(crane, "copy", "--insecure", b.Host+"/ha/app:v1", b.Host+"/ha/copy:v1").CombinedOutput()
	if err != nil {
		t.Fatalf("crane copy through B: %v\n%s", err, out)
	}
	verifyImage(t, c.replicas[2], "ha/copy:v1", want)
}

func do(t *testing.T, method, url string, body []byte, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestChunkedUploadAcrossReplicas starts an upload on A (POST, PATCH) and
// finishes it on B (PATCH, PUT), as a client behind a load balancer
// without sticky sessions does.
func TestChunkedUploadAcrossReplicas(t *testing.T) {
	c := startCluster(t, 2)
	a, b := c.replicas[0], c.replicas[1]
	data := make([]byte, 3<<20+123)
	rand.Read(data)
	d := digest.FromBytes(data)
	half := len(data) / 2

	resp := do(t, "POST", a.URL+"/v2/ha/chunked/blobs/uploads/", nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST on A: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	resp = do(t, "PATCH", a.URL+loc, data[:half], "Content-Type", "application/octet-stream",
		"Content-Range", fmt.Sprintf("0-%d", half-1))
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH on A: %s", resp.Status)
	}
	loc = resp.Header.Get("Location")
	// B knows how far the upload got.
	resp = do(t, "GET", b.URL+loc, nil)
	resp.Body.Close()
	if want := fmt.Sprintf("0-%d", half-1); resp.StatusCode != http.StatusNoContent || resp.Header.Get("Range") != want {
		t.Fatalf("status on B: %s, Range %q, want 204 and %q", resp.Status, resp.Header.Get("Range"), want)
	}
	// A chunk that does not continue the upload is refused on B too.
	resp = do(t, "PATCH", b.URL+loc, data[:10], "Content-Range", "0-9")
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("out-of-order PATCH on B: %s, want 416", resp.Status)
	}
	resp = do(t, "PATCH", b.URL+loc, data[half:len(data)-5], "Content-Range", fmt.Sprintf("%d-%d", half, len(data)-6))
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH on B: %s", resp.Status)
	}
	loc = resp.Header.Get("Location")
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	resp = do(t, "PUT", b.URL+loc+sep+"digest="+d.String(), data[len(data)-5:])
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT on B: %s", resp.Status)
	}
	for _, r := range c.replicas {
		resp = do(t, "GET", r.URL+"/v2/ha/chunked/blobs/"+d.String(), nil)
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
			t.Fatalf("GET blob on %s: %s, %d bytes, want the %d uploaded", r.Host, resp.Status, len(got), len(data))
		}
		// A range served from S3.
		resp = do(t, "GET", r.URL+"/v2/ha/chunked/blobs/"+d.String(), nil, "Range", "bytes=100-199")
		got, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, data[100:200]) {
			t.Fatalf("ranged GET on %s: %s, %d bytes", r.Host, resp.Status, len(got))
		}
	}
}

// TestTagsAndReferrersOnEveryReplica pushes an image and an artifact that
// refers to it through A and lists both through B.
func TestTagsAndReferrersOnEveryReplica(t *testing.T) {
	c := startCluster(t, 2)
	a := c.replicas[0]
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"v1", "v2"} {
		if err := remote.Write(ref(t, a, "ha/ref:"+tag), img); err != nil {
			t.Fatal(err)
		}
	}
	subject, _ := img.Digest()
	mf, _ := img.RawManifest()
	// An artifact: the empty config and no layers, with a subject.
	empty := []byte("{}")
	ed := digest.FromBytes(empty)
	resp := do(t, "POST", a.URL+"/v2/ha/ref/blobs/uploads/?digest="+ed.String(), empty)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push empty config: %s", resp.Status)
	}
	art, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"artifactType":  "application/vnd.example.sig",
		"config":        map[string]any{"mediaType": "application/vnd.oci.empty.v1+json", "digest": ed, "size": 2},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.empty.v1+json", "digest": ed, "size": 2}},
		"subject":       map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject.String(), "size": len(mf)},
	})
	ad := digest.FromBytes(art)
	resp = do(t, "PUT", a.URL+"/v2/ha/ref/manifests/"+ad.String(), art, "Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push artifact through A: %s", resp.Status)
	}
	for _, r := range c.replicas {
		resp = do(t, "GET", r.URL+"/v2/ha/ref/tags/list", nil)
		var tags struct{ Tags []string }
		json.NewDecoder(resp.Body).Decode(&tags)
		resp.Body.Close()
		if strings.Join(tags.Tags, ",") != "v1,v2" {
			t.Errorf("tags on %s = %v, want [v1 v2]", r.Host, tags.Tags)
		}
		resp = do(t, "GET", r.URL+"/v2/ha/ref/referrers/"+subject.String(), nil)
		var idx struct {
			Manifests []struct {
				Digest       string
				ArtifactType string
			}
		}
		json.NewDecoder(resp.Body).Decode(&idx)
		resp.Body.Close()
		if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != ad.String() || idx.Manifests[0].ArtifactType != "application/vnd.example.sig" {
			t.Errorf("referrers on %s = %+v, want the artifact %s", r.Host, idx.Manifests, ad)
		}
	}
}

// TestReplicaKilledDuringPush kills A (SIGKILL) while a push goes through
// it; the client pushes again through B, which succeeds, and every blob of
// the image reads back with its digest on B and on A once restarted.
func TestReplicaKilledDuringPush(t *testing.T) {
	c := startCluster(t, 2)
	a, b := c.replicas[0], c.replicas[1]
	img, err := random.Image(24<<20, 4)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Kill A once 30 MiB of the ~96 MiB push went out to it.
	sent := &countingTransport{limit: 30 << 20, reached: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		done <- remote.Write(ref(t, a, "ha/killed:v1"), img, remote.WithContext(ctx), remote.WithTransport(sent))
	}()
	select {
	case <-sent.reached:
	case err := <-done:
		t.Fatalf("the push through A ended before the kill: %v", err)
	}
	a.Kill()
	if err := <-done; err == nil {
		t.Fatal("the push through A succeeded although A was killed during it")
	}
	if err := remote.Write(ref(t, b, "ha/killed:v1"), img, remote.WithContext(ctx)); err != nil {
		t.Fatalf("retry through B: %v", err)
	}
	verifyImage(t, b, "ha/killed:v1", want)
	a.Restart()
	verifyImage(t, a, "ha/killed:v1", want)
}

// countingTransport closes reached once limit request-body bytes were sent.
type countingTransport struct {
	mu      sync.Mutex
	n       int64
	limit   int64
	reached chan struct{}
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body = &countingBody{ReadCloser: req.Body, c: c}
	}
	return http.DefaultTransport.RoundTrip(req)
}

type countingBody struct {
	io.ReadCloser
	c *countingTransport
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.c.mu.Lock()
	before := b.c.n
	b.c.n += int64(n)
	if before < b.c.limit && b.c.n >= b.c.limit {
		close(b.c.reached)
	}
	b.c.mu.Unlock()
	return n, err
}
