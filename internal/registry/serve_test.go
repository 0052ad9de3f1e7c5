package registry_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestGracefulShutdown sends SIGTERM while a large blob download is in
// flight: the download must finish complete and correct.
func TestGracefulShutdown(t *testing.T) {
	srv := testenv.StartFerry(t, testenv.FerryOptions{})
	c := client{t, srv.URL}
	data := make([]byte, 48<<20) // more than the socket buffers hold
	rand.Read(data)
	d := c.pushBlob("shutdown/app", data)

	resp, err := http.Get(srv.URL + "/v2/shutdown/app/blobs/" + string(d))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make([]byte, 1<<20)
	if _, err := io.ReadFull(resp.Body, got); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() { srv.Stop(); close(stopped) }()
	time.Sleep(300 * time.Millisecond) // SIGTERM is delivered mid-transfer
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("download cut by shutdown after %d bytes: %v", len(got)+len(rest), err)
	}
	if got = append(got, rest...); !bytes.Equal(got, data) {
		t.Fatalf("download during shutdown: %d bytes, digest %s; want %s", len(got), digest.FromBytes(got), d)
	}
	<-stopped
	if !strings.Contains(srv.Log.String(), "shutting down") {
		t.Errorf("no shutdown log line:\n%s", srv.Log.String())
	}
}

// TestServeSettings checks the FERRY_* environment and the --config file.
func TestServeSettings(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "ferry.yaml")
	if err := os.WriteFile(conf, []byte("max-manifest-size: 1000\nhostname: [a.example, b.example]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := testenv.StartFerry(t, testenv.FerryOptions{Args: []string{"--config", conf}})
	c := client{t, srv.URL}
	img := c.pushImage("conf/app", "v1", "settings") // well under 1000 bytes
	big := strings.Replace(string(img.manifest), `"layers"`, `"annotations":{"pad":"`+strings.Repeat("x", 1000)+`"},"layers"`, 1)
	c.do("PUT", "/v2/conf/app/manifests/big", []byte(big), "Content-Type", "application/vnd.oci.image.manifest.v1+json").
		wantError(t, 413, "MANIFEST_INVALID")

	env := testenv.StartFerry(t, testenv.FerryOptions{Env: []string{"FERRY_READ_ONLY=true"}})
	client{t, env.URL}.do("POST", "/v2/env/app/blobs/uploads/", nil).wantError(t, 405, "UNSUPPORTED")
}

// TestConcurrentChunks sends the same chunk many times at once to one
// session: exactly the accepted bytes end up in the blob.
func TestConcurrentChunks(t *testing.T) {
	srv := testenv.StartFerry(t, testenv.FerryOptions{})
	c := client{t, srv.URL}
	loc := c.startUpload("race/app")
	chunks := make([][]byte, 8)
	for i := range chunks {
		chunks[i] = bytes.Repeat([]byte{byte('a' + i)}, 256<<10)
	}
	var wg sync.WaitGroup
	statuses := make([]int, len(chunks))
	for i := range chunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("PATCH", srv.URL+loc, bytes.NewReader(chunks[i]))
			req.Header.Set("Content-Range", "0-262143")
			req.Header.Set("Content-Type", "application/octet-stream")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	winner := -1
	for i, s := range statuses {
		switch s {
		case 202:
			if winner >= 0 {
				t.Fatalf("two chunks for bytes 0-262143 accepted: %d and %d", winner, i)
			}
			winner = i
		case 416:
		default:
			t.Errorf("chunk %d: status %d", i, s)
		}
	}
	if winner < 0 {
		t.Fatal("no chunk accepted")
	}
	d := digest.FromBytes(chunks[winner])
	c.do("PUT", withDigest(loc, d), nil).wantStatus(t, 201)
	got := c.do("GET", "/v2/race/app/blobs/"+string(d), nil).wantStatus(t, 200)
	if !bytes.Equal(got.body, chunks[winner]) {
		t.Fatal("the stored blob mixes bytes of several chunks")
	}
}
