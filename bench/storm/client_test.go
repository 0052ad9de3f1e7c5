package storm_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// client is one node pulling from a registry, as a container runtime
// does: it answers the registry's challenge (a bearer token from the realm
// with the pull secret, or basic credentials), keeps its token, and drops
// the credentials on a redirect to another host (presigned S3 URLs).
type client struct {
	base       string // https://host:port
	hc         *http.Client
	user, pass string

	mu     sync.Mutex
	bearer string // the token, once logged in
	basic  bool   // the registry wants basic credentials on every request

	stats *stats
}

// stats is what one storm measured, shared by its clients.
type stats struct {
	mu          sync.Mutex
	manifestLat []time.Duration
	tokenLat    []time.Duration
	tokens      int
	bytes       int64
	errs        []error
}

func (s *stats) err(err error) {
	s.mu.Lock()
	s.errs = append(s.errs, err)
	s.mu.Unlock()
}

// newTransport is one node's connection pool, trusting the bench's CA.
func newTransport(ca *x509.CertPool) *http.Transport {
	return &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: ca},
		MaxIdleConnsPerHost: 8,
		ForceAttemptHTTP2:   true,
		IdleConnTimeout:     time.Minute,
	}
}

func newClient(base, user, pass string, ca *x509.CertPool, st *stats) *client {
	c := &client{base: base, user: user, pass: pass, stats: st}
	baseHost := strings.TrimPrefix(strings.TrimPrefix(base, "https://"), "http://")
	c.hc = &http.Client{
		Transport: newTransport(ca),
		Timeout:   5 * time.Minute,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > 5 {
				return errors.New("too many redirects")
			}
			// net/http compares host names without ports: the registry's
			// credentials must not reach the S3 endpoint on the same host.
			if req.URL.Host != baseHost {
				req.Header.Del("Authorization")
			}
			return nil
		},
	}
	return c
}

// get fetches path (under /v2/), logging in on a 401 challenge, and
// returns the body.
func (c *client) get(path, accept string) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := c.fetch(path, accept, &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// fetch is get writing the body to w, and returns its length: blobs are
// counted, not kept, so the load generator spends its CPU on the requests.
func (c *client) fetch(path, accept string, w io.Writer) (int64, error) {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequest(http.MethodGet, c.base+path, nil)
		if err != nil {
			return 0, err
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		c.authorize(req)
		resp, err := c.hc.Do(req)
		if err != nil {
			return 0, fmt.Errorf("GET %s: %w", path, err)
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			challenge := resp.Header.Get("WWW-Authenticate")
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err := c.login(challenge); err != nil {
				return 0, fmt.Errorf("GET %s: %w", path, err)
			}
			continue
		}
		if resp.StatusCode != http.StatusOK {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
			resp.Body.Close()
			return 0, fmt.Errorf("GET %s: %s: %s", path, resp.Status, msg)
		}
		n, err := io.Copy(w, resp.Body)
		resp.Body.Close()
		if err != nil {
			return n, fmt.Errorf("GET %s: %w", path, err)
		}
		return n, nil
	}
}

func (c *client) authorize(req *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.bearer != "":
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	case c.basic:
		req.SetBasicAuth(c.user, c.pass)
	}
}

// login answers a challenge: Basic, or Bearer with a token request to the
// realm for the service and scope named.
func (c *client) login(challenge string) error {
	scheme, params := parseChallenge(challenge)
	switch strings.ToLower(scheme) {
	case "basic":
		c.mu.Lock()
		c.basic = true
		c.mu.Unlock()
		return nil
	case "bearer":
	default:
		return fmt.Errorf("unknown challenge %q", challenge)
	}
	u, err := url.Parse(params["realm"])
	if err != nil || params["realm"] == "" {
		return fmt.Errorf("challenge %q: no usable realm", challenge)
	}
	q := u.Query()
	if s := params["service"]; s != "" {
		q.Set("service", s)
	}
	if s := params["scope"]; s != "" {
		q.Set("scope", s)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(c.user, c.pass)
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	lat := time.Since(start)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("token: %s: %.200s", resp.Status, body)
	}
	var tok struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil {
		return fmt.Errorf("token: %w", err)
	}
	if tok.Token == "" {
		tok.Token = tok.AccessToken
	}
	if tok.Token == "" {
		return errors.New("token: the answer has no token")
	}
	c.stats.mu.Lock()
	c.stats.tokens++
	c.stats.tokenLat = append(c.stats.tokenLat, lat)
	c.stats.mu.Unlock()
	c.mu.Lock()
	c.bearer = tok.Token
	c.mu.Unlock()
	return nil
}

// parseChallenge splits `Bearer realm="...",service="...",scope="..."`.
func parseChallenge(h string) (string, map[string]string) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	params := map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; {
		k, v, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		k = strings.TrimSpace(k)
		if strings.HasPrefix(v, `"`) {
			end := strings.Index(v[1:], `"`)
			if end < 0 {
				params[k] = v[1:]
				break
			}
			params[k] = v[1 : end+1]
			rest = strings.TrimPrefix(strings.TrimSpace(v[end+2:]), ",")
		} else {
			val, r, _ := strings.Cut(v, ",")
			params[k] = val
			rest = r
		}
		rest = strings.TrimSpace(rest)
	}
	return scheme, params
}

// push uploads a blob (POST then monolithic PUT) and is only used to seed.
func (c *client) pushBlob(repo, dgst string, data []byte) error {
	loc, err := c.send(http.MethodPost, "/v2/"+repo+"/blobs/uploads/", "", nil, http.StatusAccepted)
	if err != nil {
		return err
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	_, err = c.send(http.MethodPut, loc+sep+"digest="+url.QueryEscape(dgst), "application/octet-stream", data, http.StatusCreated)
	return err
}

func (c *client) pushManifest(repo, ref, mediaType string, data []byte) error {
	_, err := c.send(http.MethodPut, "/v2/"+repo+"/manifests/"+ref, mediaType, data, http.StatusCreated)
	return err
}

// send makes one write request, logging in on a challenge, and returns
// the Location header.
func (c *client) send(method, target, contentType string, body []byte, want int) (string, error) {
	u := target
	if strings.HasPrefix(target, "/") {
		u = c.base + target
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequest(method, u, bytes.NewReader(body))
		if err != nil {
			return "", err
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		c.authorize(req)
		resp, err := c.hc.Do(req)
		if err != nil {
			return "", fmt.Errorf("%s %s: %w", method, target, err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			// A token for pull is not one for push: ask again for the
			// scope this challenge names.
			c.mu.Lock()
			c.bearer = ""
			c.mu.Unlock()
			if err := c.login(resp.Header.Get("WWW-Authenticate")); err != nil {
				return "", err
			}
			continue
		}
		if resp.StatusCode != want {
			return "", fmt.Errorf("%s %s: %s: %.300s", method, target, resp.Status, msg)
		}
		loc := resp.Header.Get("Location")
		if loc != "" && strings.HasPrefix(loc, "/") {
			loc = c.base + loc
		}
		return loc, nil
	}
}
