package registry_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestTrickledBodyIsCut: a client sending one byte every 5 s loses its
// connection once a read waits longer than --body-read-timeout, while a
// slow upload that keeps sending completes however long it takes.
func TestTrickledBodyIsCut(t *testing.T) {
	srv := testenv.StartFerry(t, testenv.FerryOptions{Args: []string{"--body-read-timeout", "2s"}})
	d := digest.FromString("abcdef")

	conn, err := net.Dial("tcp", srv.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, "POST /v2/slow/app/blobs/uploads/?digest="+string(d)+" HTTP/1.1\r\nHost: "+srv.Host+
		"\r\nContent-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\na"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Second):
				if _, err := conn.Write([]byte("b")); err != nil {
					return
				}
			}
		}
	}()
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a trickled body after %s: %v", time.Since(start).Round(time.Second), err)
	}
	body, _ := io.ReadAll(resp.Body) // ends when the server closes the connection
	if resp.StatusCode != 400 || !strings.Contains(string(body), "--body-read-timeout") {
		t.Errorf("trickled body: %d %s, want 400 naming --body-read-timeout", resp.StatusCode, body)
	}
	if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("connection still open after the answer: %v", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("the trickled body held the connection %s with --body-read-timeout 2s", el.Round(time.Second))
	}

	// Slow but steady: one byte every 700 ms, 4 s in all, twice the timeout.
	pr, pw := io.Pipe()
	go func() {
		for _, b := range []byte("abcdef") {
			time.Sleep(700 * time.Millisecond)
			pw.Write([]byte{b})
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", srv.URL+"/v2/slow/app/blobs/uploads/?digest="+string(d), pr)
	req.ContentLength = 6
	got, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got.Body.Close()
	if got.StatusCode != 201 {
		t.Errorf("a slow upload that keeps sending: %d, want 201", got.StatusCode)
	}
}

// TestConnectionLimit: with --max-connections 3 and three connections
// open, a fourth client waits; it is served once one of them closes.
func TestConnectionLimit(t *testing.T) {
	srv := testenv.StartFerry(t, testenv.FerryOptions{Args: []string{"--max-connections", "3"}})
	var held []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", srv.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// A request answered proves the server accepted the connection,
		// which then stays open (keep-alive).
		io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: "+srv.Host+"\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("held connection %d: %v", len(held)+1, err)
		}
		resp.Body.Close()
		held = append(held, c)
	}
	quick := &http.Client{Timeout: 1500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := quick.Get(srv.URL + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("a 4th connection was served (%d) while 3 were open with --max-connections 3", resp.StatusCode)
	}
	held[0].Close()
	patient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := patient.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatalf("no connection served after one of the 3 closed: %v", err)
	}
	resp.Body.Close()
}

// TestUploadSessionQuota: with authentication off, open sessions are
// counted per client address.
func TestUploadSessionQuota(t *testing.T) {
	srv := testenv.StartFerry(t, testenv.FerryOptions{Args: []string{"--max-uploads-per-user", "3"}})
	c := client{t, srv.URL}
	var locs []string
	for range 3 {
		locs = append(locs, c.startUpload("many/app"))
	}
	r := c.do("POST", "/v2/many/app/blobs/uploads/", nil)
	r.wantError(t, 429, "TOOMANYREQUESTS")
	if r.Header.Get("Retry-After") == "" || !strings.Contains(string(r.body), "127.0.0.1") {
		t.Errorf("4th session: Retry-After %q, body %s; want a Retry-After and the address named", r.Header.Get("Retry-After"), r.body)
	}
	// A finished upload frees its slot; a monolithic push needs none.
	data := []byte("finished")
	c.do("PUT", withDigest(locs[0], digest.FromBytes(data)), data).wantStatus(t, 201)
	c.startUpload("many/app")
	c.do("POST", "/v2/many/app/blobs/uploads/?digest="+string(digest.FromString("mono")), []byte("mono")).wantStatus(t, 201)
}

// TestContentRangeMustMatchChunk: a chunk longer or shorter than its
// Content-Range is refused with 416 RANGE_INVALID, with or without a
// Content-Length, and the session stays where it was.
func TestContentRangeMustMatchChunk(t *testing.T) {
	srv := testenv.StartFerry(t, testenv.FerryOptions{})
	c := client{t, srv.URL}
	loc := c.startUpload("range/app")
	ten := []byte("0123456789")
	c.do("PATCH", loc, ten, "Content-Range", "0-3", "Content-Type", "application/octet-stream").wantError(t, 416, "RANGE_INVALID")
	for _, body := range [][]byte{ten, ten[:2]} {
		// io.MultiReader hides the length: the body goes chunked, with no
		// Content-Length to compare.
		req, _ := http.NewRequest("PATCH", srv.URL+loc, io.MultiReader(bytes.NewReader(body)))
		req.Header.Set("Content-Range", "0-3")
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 416 || !strings.Contains(string(b), "RANGE_INVALID") || resp.Header.Get("Range") != "0-0" {
			t.Errorf("%d bytes sent chunked as 0-3: %d Range %q %s, want 416 RANGE_INVALID with Range 0-0", len(body), resp.StatusCode, resp.Header.Get("Range"), b)
		}
	}
	r := c.do("GET", loc, nil).wantStatus(t, 204)
	if got := r.Header.Get("Range"); got != "0-0" {
		t.Fatalf("Range after refused chunks %q, want 0-0", got)
	}
	req, _ := http.NewRequest("PATCH", srv.URL+loc, io.MultiReader(bytes.NewReader(ten[:4])))
	req.Header.Set("Content-Range", "0-3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 || resp.Header.Get("Range") != "0-3" {
		t.Fatalf("4 bytes sent chunked as 0-3: %d Range %q, want 202 0-3", resp.StatusCode, resp.Header.Get("Range"))
	}
	d := digest.FromBytes(ten[:4])
	c.do("PUT", withDigest(loc, d), nil).wantStatus(t, 201)
	if got := c.do("GET", "/v2/range/app/blobs/"+string(d), nil).wantStatus(t, 200); !bytes.Equal(got.body, ten[:4]) {
		t.Errorf("blob = %q, want %q", got.body, ten[:4])
	}
}

// TestStalledBodyOverHTTP2: the body deadline holds on HTTP/2 streams
// too, which is what clients negotiate over TLS.
func TestStalledBodyOverHTTP2(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	host := startTLS(t, filepath.Join(dir, "data"), "--tls-cert", certFile, "--tls-key", keyFile, "--body-read-timeout", "2s")
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("a")) // then nothing
	req, _ := http.NewRequest("POST", "https://"+host+"/v2/slow/app/blobs/uploads/?digest="+string(digest.FromString("ab")), pr)
	req.ContentLength = 2
	start := time.Now()
	resp, err := hc.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != 400 {
			t.Errorf("stalled body over %s: %d, want HTTP/2 and 400", resp.Proto, resp.StatusCode)
		}
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("a stalled HTTP/2 body held the request %s with --body-read-timeout 2s (%v)", el.Round(time.Second), err)
	}
}
