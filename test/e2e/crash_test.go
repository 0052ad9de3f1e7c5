package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

const mib = 1 << 20

// TestCrashDuringMonolithicUpload kills the server with SIGKILL while a
// 200 MiB blob streams in, in both monolithic forms (POST with ?digest=,
// and POST then PUT with the body). After a restart the half blob is not
// visible, what was stored before is intact, and the same upload succeeds.
func TestCrashDuringMonolithicUpload(t *testing.T) {
	s := startRegistry(t)
	stored, imageBlobs := seedStored(t, s)
	big := stream{seed: 1001, size: 200 * mib}
	digest := big.digest(t)

	for _, form := range []string{"post", "post-put"} {
		t.Run(form, func(t *testing.T) {
			repo := "crash/mono-" + form
			target := s.URL + "/v2/" + repo + "/blobs/uploads/?digest=" + digest
			method := http.MethodPost
			if form == "post-put" {
				put := startUpload(t, s, repo)
				target = put + sep(put) + "digest=" + digest
				method = http.MethodPut
			}
			body := newStallingReader(big.reader(t, 0), 100*mib)
			done := sendAsync(t, method, target, body, big.size, "")
			killWhenStalled(t, s, body, done)
			s.Restart()

			assertBlobAbsent(t, s, repo, digest)
			verifyStored(t, s, stored)

			// The client retries after the restart, and this time finishes.
			if form == "post" {
				e := sendBody(t, http.MethodPost, target, big.reader(t, 0), big.size, "")
				if e.Status != http.StatusCreated {
					t.Fatalf("monolithic POST after restart: %v", e)
				}
			} else {
				put := startUpload(t, s, repo)
				e := sendBody(t, http.MethodPut, put+sep(put)+"digest="+digest, big.reader(t, 0), big.size, "")
				if e.Status != http.StatusCreated {
					t.Fatalf("monolithic PUT after restart: %v", e)
				}
			}
			assertBlob(t, s, repo, digest, big)
			stored = append(stored, storedBlob{repo, digest, big})
		})
	}
	assertDiskBlobsIntact(t, s, append(imageBlobs, digests(stored)...))
}

// TestCrashDuringChunkedUpload kills the server between chunks and then
// within a chunk. After each restart the upload reports how far it got,
// continues from there, and closes with the right digest.
func TestCrashDuringChunkedUpload(t *testing.T) {
	s := startRegistry(t)
	stored, imageBlobs := seedStored(t, s)
	const chunk = 8 * mib
	blob := stream{seed: 2002, size: 5 * chunk}
	digest := blob.digest(t)
	repo := "crash/chunked"

	loc := startUpload(t, s, repo)
	for i := int64(0); i < 2; i++ {
		loc = patchChunk(t, loc, blob, i*chunk, chunk)
	}

	// Kill between chunks: both acknowledged chunks must survive.
	s.Kill()
	s.Restart()
	if got := uploadOffset(t, loc); got != 2*chunk {
		t.Fatalf("after a crash between chunks the upload is at %d bytes, want %d (the acknowledged chunks)", got, 2*chunk)
	}
	assertBlobAbsent(t, s, repo, digest)

	// Kill within the third chunk, half of it sent.
	body := newStallingReader(blob.reader(t, 2*chunk), chunk/2)
	done := sendAsync(t, http.MethodPatch, loc, body, chunk, fmt.Sprintf("%d-%d", 2*chunk, 3*chunk-1))
	killWhenStalled(t, s, body, done)
	s.Restart()

	offset := uploadOffset(t, loc)
	if offset < 2*chunk || offset > 2*chunk+chunk/2 {
		t.Fatalf("after a crash within a chunk the upload is at %d bytes, want between %d and %d", offset, 2*chunk, 2*chunk+chunk/2)
	}
	t.Logf("after the crash within a chunk the server kept %d of the %d bytes sent", offset-2*chunk, chunk/2)
	assertBlobAbsent(t, s, repo, digest)

	// Continue where the server says the upload stopped, then close.
	loc = patchChunk(t, loc, blob, offset, blob.size-offset)
	e := do(t, http.MethodPut, loc+sep(loc)+"digest="+digest, http.Header{"Content-Length": {"0"}}, nil)
	if e.Status != http.StatusCreated {
		t.Fatalf("closing the resumed upload: %v", e)
	}
	assertBlob(t, s, repo, digest, blob)
	stored = append(stored, storedBlob{repo, digest, blob})
	verifyStored(t, s, stored)
	assertDiskBlobsIntact(t, s, append(imageBlobs, digests(stored)...))
}

// storedBlob is a blob the registry acknowledged, with its source.
type storedBlob struct {
	repo, digest string
	data         stream
}

// seedStored stores content before any crash: an image and an index
// through a real client library, and a blob pushed in one request. It
// returns the raw blob and the digests of the images' layers and configs.
func seedStored(t *testing.T, s *testenv.Server) ([]storedBlob, []string) {
	t.Helper()
	img := seedImage(t, false, 3003, 3004, "amd64")
	pushImage(t, s.Host+"/crash/base:1", img)
	idx := seedIndex(t, true, 3010)
	pushIndex(t, s.Host+"/crash/multi:1", idx)
	small := stream{seed: 3005, size: 3 * mib}
	repo := "crash/small"
	put := startUpload(t, s, repo)
	if e := sendBody(t, http.MethodPut, put+sep(put)+"digest="+small.digest(t), small.reader(t, 0), small.size, ""); e.Status != http.StatusCreated {
		t.Fatalf("push a blob before the crash: %v", e)
	}
	return []storedBlob{{repo, small.digest(t), small}}, append(imageBlobs(t, img), indexBlobs(t, idx)...)
}

// verifyStored checks that everything acknowledged before is still served
// intact: raw blobs re-hashed, every tagged manifest in the catalog with all
// its blobs.
func verifyStored(t *testing.T, s *testenv.Server, stored []storedBlob) {
	t.Helper()
	for _, b := range stored {
		assertBlob(t, s, b.repo, b.digest, b.data)
	}
	e := do(t, http.MethodGet, s.URL+"/v2/_catalog", nil, nil)
	if e.Status != http.StatusOK {
		t.Fatalf("catalog: %v", e)
	}
	repos := catalogRepos(t, e)
	for _, want := range []string{"crash/base", "crash/multi"} {
		if !contains(repos, want) {
			t.Errorf("repository %s pushed before the crash is missing from the catalog %v", want, repos)
		}
	}
	// Every tag of every repository, each blob re-hashed by the client.
	for _, repo := range repos {
		for _, tag := range tags(t, s, repo) {
			verifyAny(t, s.Host+"/"+repo+":"+tag)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// startUpload opens an upload session and returns its absolute URL.
func startUpload(t *testing.T, s *testenv.Server, repo string) string {
	t.Helper()
	e := do(t, http.MethodPost, s.URL+"/v2/"+repo+"/blobs/uploads/", http.Header{"Content-Length": {"0"}}, nil)
	if e.Status != http.StatusAccepted || e.Header.Get("Location") == "" {
		t.Fatalf("start upload: %v", e)
	}
	return resolve(t, e.URL, e.Header.Get("Location"))
}

// patchChunk sends n bytes of the stream from offset and returns the next
// upload URL.
func patchChunk(t *testing.T, loc string, data stream, offset, n int64) string {
	t.Helper()
	e := sendBody(t, http.MethodPatch, loc, io.LimitReader(data.reader(t, offset), n), n, fmt.Sprintf("%d-%d", offset, offset+n-1))
	if e.Status != http.StatusAccepted {
		t.Fatalf("PATCH %d bytes at %d: %v", n, offset, e)
	}
	if got := e.Header.Get("Range"); got != fmt.Sprintf("0-%d", offset+n-1) {
		t.Errorf("PATCH %d bytes at %d: Range %q, want 0-%d", n, offset, got, offset+n-1)
	}
	return resolve(t, loc, e.Header.Get("Location"))
}

// uploadOffset asks the server how many bytes of an upload it holds.
func uploadOffset(t *testing.T, loc string) int64 {
	t.Helper()
	e := do(t, http.MethodGet, loc, nil, nil)
	if e.Status != http.StatusNoContent {
		t.Fatalf("upload status: %v (want 204: the session must survive a restart)", e)
	}
	r := e.Header.Get("Range")
	start, end, ok := strings.Cut(r, "-")
	if !ok || start != "0" {
		t.Fatalf("upload status Range %q, want 0-<last byte>: %v", r, e)
	}
	last, err := strconv.ParseInt(end, 10, 64)
	if err != nil {
		t.Fatalf("upload status Range %q: %v", r, err)
	}
	return last + 1
}

// sendBody streams body with a known length.
func sendBody(t *testing.T, method, url string, body io.Reader, size int64, contentRange string) exchange {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	if contentRange != "" {
		req.Header.Set("Content-Range", contentRange)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return exchange{Method: method, URL: url, Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// sendAsync starts a streaming request; its outcome arrives on the channel.
func sendAsync(t *testing.T, method, url string, body io.Reader, size int64, contentRange string) <-chan error {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	if contentRange != "" {
		req.Header.Set("Content-Range", contentRange)
	}
	done := make(chan error, 1)
	go func() {
		resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("request finished with %s before the server was killed", resp.Status)
		}
		done <- err
	}()
	return done
}

// killWhenStalled waits until the upload stalls mid-body, gives the server a
// moment to write what it received, and kills it.
func killWhenStalled(t *testing.T, s *testenv.Server, body *stallingReader, done <-chan error) {
	t.Helper()
	select {
	case <-body.stalled:
	case err := <-done:
		t.Fatalf("upload ended before the kill: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("upload did not reach the kill point in 2 minutes")
	}
	time.Sleep(500 * time.Millisecond)
	s.Kill()
	close(body.release)
	<-done
}

func assertBlobAbsent(t *testing.T, s *testenv.Server, repo, digest string) {
	t.Helper()
	if e := do(t, http.MethodHead, s.URL+"/v2/"+repo+"/blobs/"+digest, nil, nil); e.Status != http.StatusNotFound {
		t.Errorf("a blob that was never completely uploaded is visible: %v", e)
	}
}

// assertBlob GETs a blob and checks its length and bytes against the source.
func assertBlob(t *testing.T, s *testenv.Server, repo, digest string, data stream) {
	t.Helper()
	e := do(t, http.MethodHead, s.URL+"/v2/"+repo+"/blobs/"+digest, nil, nil)
	if e.Status != http.StatusOK || e.Header.Get("Content-Length") != strconv.FormatInt(data.size, 10) {
		t.Errorf("HEAD blob: %v, want 200 with Content-Length %d", e, data.size)
	}
	resp, err := http.Get(s.URL + "/v2/" + repo + "/blobs/" + digest)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET blob %s in %s: %s", digest, repo, resp.Status)
	}
	got, err := hashReader("sha256", resp.Body)
	if err != nil {
		t.Fatalf("GET blob %s: %v", digest, err)
	}
	if got != digest {
		t.Errorf("GET blob %s in %s returned bytes hashing to %s", digest, repo, got)
	}
}

func sep(u string) string {
	if strings.Contains(u, "?") {
		return "&"
	}
	return "?"
}

func digests(stored []storedBlob) []string {
	var out []string
	for _, b := range stored {
		out = append(out, b.digest)
	}
	return out
}
