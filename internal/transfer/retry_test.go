package transfer

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRetryDo(t *testing.T) {
	ctx := context.Background()
	r := Retry{Times: 3, Delay: time.Millisecond}
	var tries, heard int
	err := r.Do(ctx, Temporary, func(int, error) { heard++ }, func() error {
		tries++
		if tries < 3 {
			return &HTTPError{Status: http.StatusServiceUnavailable}
		}
		return nil
	})
	if err != nil || tries != 3 || heard != 2 {
		t.Errorf("Do = %v after %d tries, %d retries heard; want success on the third", err, tries, heard)
	}
	tries = 0
	err = r.Do(ctx, Temporary, nil, func() error { tries++; return &HTTPError{Status: http.StatusNotFound} })
	if tries != 1 || !IsNotFound(err) {
		t.Errorf("a 404 was tried %d times (%v); want once", tries, err)
	}
	tries = 0
	err = r.Do(ctx, Temporary, nil, func() error { tries++; return io.ErrUnexpectedEOF })
	if tries != 4 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("tried %d times (%v); want the first try and 3 retries", tries, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	tries = 0
	err = Retry{Times: 3, Delay: time.Hour}.Do(cctx, Temporary, func(int, error) { cancel() }, func() error { tries++; return io.ErrUnexpectedEOF })
	if tries != 1 || err == nil {
		t.Errorf("a cancelled wait led to %d tries (%v); want 1", tries, err)
	}
}

// TestRetryTransport: a registry front answering 503 twice gets the same
// request body three times when it can be replayed, and once when it is
// streamed. httptest stands in for the overloaded proxy: the fault is the
// point.
func TestRetryTransport(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	sent := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(bodies, ",")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		n := len(bodies)
		mu.Unlock()
		if n%3 != 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	rt := &retryTransport{inner: http.DefaultTransport, retry: Retry{Times: 2, Delay: time.Millisecond}, log: slog.New(slog.DiscardHandler)}

	req, _ := http.NewRequest(http.MethodPut, srv.URL, strings.NewReader("manifest"))
	resp, err := rt.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("replayable PUT: %v %v; want 201 on the third try", resp, err)
	}
	resp.Body.Close()
	if got := sent(); got != "manifest,manifest,manifest" {
		t.Errorf("bodies sent %q; want the manifest three times", got)
	}

	mu.Lock()
	bodies = nil
	mu.Unlock()
	req, _ = http.NewRequest(http.MethodPut, srv.URL, io.NopCloser(strings.NewReader("blob")))
	resp, err = rt.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("streamed PUT: %v %v; want the 503 handed back", resp, err)
	}
	resp.Body.Close()
	if got := sent(); got != "blob" {
		t.Errorf("streamed bodies sent %q; want the blob once", got)
	}
}
