package transfer

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// pingCache answers GET /v2/ from the registry's first good answer.
// go-containerregistry pings once per client it builds, and Ferry builds
// one per repository and access (bearer tokens are scoped that way), so
// without it a 190-image release costs hundreds of extra round trips at
// each end. Only 200 and 401 answers are kept: they describe the
// registry's auth, which does not change during a run. Once one scheme
// answered, the other (https against a plain HTTP registry, say) fails at
// once instead of being tried again for every repository.
type pingCache struct {
	inner http.RoundTripper

	mu      sync.Mutex
	answers map[string]*pingAnswer // by host
}

type pingAnswer struct {
	mu     sync.Mutex // held while the first ping of the host is in flight
	scheme string     // "" until a good answer arrived
	status int
	header http.Header
	body   []byte
}

func newPingCache(inner http.RoundTripper) *pingCache {
	return &pingCache{inner: inner, answers: map[string]*pingAnswer{}}
}

func (c *pingCache) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet || req.URL.Path != "/v2/" {
		return c.inner.RoundTrip(req)
	}
	c.mu.Lock()
	a, ok := c.answers[req.URL.Host]
	if !ok {
		a = &pingAnswer{}
		c.answers[req.URL.Host] = a
	}
	c.mu.Unlock()

	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.scheme == req.URL.Scheme:
		return a.response(req), nil
	case a.scheme != "":
		return nil, fmt.Errorf("ping %s: the registry answers over %s, not %s", req.URL.Host, a.scheme, req.URL.Scheme)
	}
	resp, err := c.inner.RoundTrip(req)
	if err != nil || (resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized) {
		return resp, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("ping %s: %w", req.URL.Host, err)
	}
	a.scheme, a.status, a.header, a.body = req.URL.Scheme, resp.StatusCode, resp.Header.Clone(), body
	return a.response(req), nil
}

func (a *pingAnswer) response(req *http.Request) *http.Response {
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", a.status, http.StatusText(a.status)),
		StatusCode:    a.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        a.header.Clone(),
		Body:          io.NopCloser(bytes.NewReader(a.body)),
		ContentLength: int64(len(a.body)),
		Request:       req,
	}
}

// PingHeader returns the headers of the registry's answer to GET /v2/
// (nil before Ping): how a destination says what software it runs.
func (r *Client) PingHeader() http.Header {
	pc, ok := r.base.(*pingCache)
	if !ok {
		return nil
	}
	pc.mu.Lock()
	a := pc.answers[r.host]
	pc.mu.Unlock()
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.header.Clone()
}
