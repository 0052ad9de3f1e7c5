package ha

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// balancer is the load balancer of an HA deployment, as nginx is
// configured in front of Ferry: round robin over the replicas, and a
// request whose connection failed (refused, reset, cut before the answer)
// is passed on to the next replica, whatever its method
// (proxy_next_upstream error non_idempotent). Request bodies are buffered
// so they can be resent, as nginx buffers them. It keeps the statuses it
// answered, so a test can fail on any 500.
type balancer struct {
	Host     string
	backends []string
	next     atomic.Uint64
	tr       *http.Transport

	passedOn atomic.Int64 // requests resent to another replica

	mu       sync.Mutex
	resent   map[string]int // passed on, by method
	statuses map[int]int
	errors   []string // 500s: method, path and body
}

func startBalancer(t *testing.T, backends []string) *balancer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &balancer{
		Host:     l.Addr().String(),
		backends: backends,
		tr:       &http.Transport{MaxIdleConnsPerHost: 32, DisableCompression: true, ResponseHeaderTimeout: 60 * time.Second},
		statuses: map[int]int{},
		resent:   map[string]int{},
	}
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close(); b.tr.CloseIdleConnections() })
	return b
}

func (b *balancer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return // the client went away
	}
	first := b.next.Add(1)
	for try := 0; try < 3*len(b.backends); try++ {
		if req.Context().Err() != nil {
			return
		}
		host := b.backends[(first+uint64(try))%uint64(len(b.backends))]
		out := req.Clone(req.Context())
		out.RequestURI = ""
		out.URL.Scheme, out.URL.Host = "http", host
		out.Header.Del("Connection")
		out.ContentLength = int64(len(body))
		out.Body = http.NoBody
		if len(body) > 0 {
			out.Body = io.NopCloser(bytes.NewReader(body))
		}
		resp, err := b.tr.RoundTrip(out)
		if err != nil {
			b.passedOn.Add(1)
			b.mu.Lock()
			b.resent[req.Method]++
			b.mu.Unlock()
			if try >= len(b.backends)-1 {
				// Every replica refused: some are restarting.
				time.Sleep(200 * time.Millisecond)
			}
			continue
		}
		b.answer(w, req, resp)
		return
	}
	b.record(req, http.StatusBadGateway, nil)
	http.Error(w, "no replica answered", http.StatusBadGateway)
}

func (b *balancer) answer(w http.ResponseWriter, req *http.Request, resp *http.Response) {
	defer resp.Body.Close()
	var errBody []byte
	if resp.StatusCode >= 500 {
		errBody, _ = io.ReadAll(io.LimitReader(resp.Body, 4096))
	}
	b.record(req, resp.StatusCode, errBody)
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	if errBody != nil {
		w.Write(errBody)
		return
	}
	io.Copy(w, resp.Body) // a replica killed mid-body cuts the answer, as nginx does
}

func (b *balancer) record(req *http.Request, status int, body []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.statuses[status]++
	if status == http.StatusInternalServerError {
		b.errors = append(b.errors, req.Method+" "+req.URL.Path+": "+strings.TrimSpace(string(body)))
	}
}

// report is the statuses answered, e.g. "200:1234 201:300 503:4".
func (b *balancer) report() (summary string, count500 int, errs []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var codes []int
	for c := range b.statuses {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var s []string
	for _, c := range codes {
		s = append(s, http.StatusText(c)+"="+strconv.Itoa(b.statuses[c]))
	}
	return strings.Join(s, " "), b.statuses[http.StatusInternalServerError], append([]string(nil), b.errors...)
}

// resentByMethod is how many requests were passed on, by method, e.g.
// "GET=12 PUT=3".
func (b *balancer) resentByMethod() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ms []string
	for m := range b.resent {
		ms = append(ms, m)
	}
	sort.Strings(ms)
	for i, m := range ms {
		ms[i] = m + "=" + strconv.Itoa(b.resent[m])
	}
	return strings.Join(ms, " ")
}
