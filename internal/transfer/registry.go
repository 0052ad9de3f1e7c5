package transfer

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-mirror/ferry/internal/oci"
)

// maxManifestBytes bounds what is read for one manifest; registries cap
// manifests at 4 MiB, so more is a broken or hostile server.
const maxManifestBytes = 8 << 20

// manifestAccept lists every manifest type Ferry copies.
var manifestAccept = strings.Join([]string{
	oci.MediaTypeImageManifest, oci.MediaTypeImageIndex, oci.MediaTypeDockerManifest, oci.MediaTypeDockerList,
	oci.MediaTypeDockerSchema1,
}, ", ")

// RegistryOptions tune a Client.
type RegistryOptions struct {
	// Insecure skips TLS verification and allows plain HTTP.
	Insecure  bool
	Keychain  authn.Keychain
	Retry     Retry
	Logger    *slog.Logger
	UserAgent string
}

// Client is a small OCI distribution client for one registry host. It uses
// go-containerregistry's transport for the ping, scheme and token dance and
// plain HTTP calls on top, so blob bodies stream end to end.
type Client struct {
	host string
	reg  name.Registry
	base http.RoundTripper
	opts RegistryOptions

	mu         sync.Mutex
	transports map[string]*http.Client
	// noReferrers is set once the registry showed it has no referrers
	// API, so later images go straight to the tag schema.
	noReferrers atomic.Bool
}

// NewRegistry returns a client for host (host[:port]).
func NewClient(host string, opts RegistryOptions) (*Client, error) {
	var nopts []name.Option
	if opts.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, nopts...)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %w", host, err)
	}
	if opts.Keychain == nil {
		opts.Keychain = authn.NewMultiKeychain()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ht := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 5 * time.Minute,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}
	if opts.Insecure {
		ht.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user asked for it with --*-tls-verify=false
	}
	ua := opts.UserAgent
	if ua == "" {
		ua = "ferry"
	}
	base := newPingCache(transport.NewUserAgent(&retryTransport{inner: ht, retry: opts.Retry, log: opts.Logger}, ua))
	return &Client{host: reg.RegistryStr(), reg: reg, base: base, opts: opts, transports: map[string]*http.Client{}}, nil
}

// Ping checks that the registry answers the distribution API, so a run
// against a wrong or stopped destination fails at once, not per image.
func (r *Client) Ping(ctx context.Context) error {
	if _, err := transport.Ping(ctx, r.reg, r.base); err != nil {
		return fmt.Errorf("registry %s does not answer: %w", r.host, err)
	}
	return nil
}

// Host is the registry's host[:port].
func (r *Client) Host() string { return r.host }

// client returns an authenticated client for repo, cached per repository
// and access, so bearer tokens carry the right scope. mountFrom, when
// set, adds pull access to that repository, which a token registry
// needs before it mounts a blob from there.
func (r *Client) client(ctx context.Context, repo string, push bool, mountFrom ...string) (*http.Client, error) {
	key := repo
	scope := transport.PullScope
	if push {
		key += "#push"
		scope = transport.PushScope
	}
	scopes := []string{r.reg.Repo(repo).Scope(scope)}
	for _, from := range mountFrom {
		if from != "" && from != repo {
			key += "#" + from
			scopes = append(scopes, r.reg.Repo(from).Scope(transport.PullScope))
		}
	}
	return r.scoped(ctx, key, scopes)
}

// scoped returns the client cached under key, made on first use with a
// token for scopes.
func (r *Client) scoped(ctx context.Context, key string, scopes []string) (*http.Client, error) {
	r.mu.Lock()
	c, ok := r.transports[key]
	r.mu.Unlock()
	if ok {
		return c, nil
	}
	auth, err := authn.Resolve(ctx, r.opts.Keychain, r.reg)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", r.host, err)
	}
	t, err := transport.NewWithContext(ctx, r.reg, auth, r.base, scopes)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", r.host, err)
	}
	c = &http.Client{Transport: t}
	r.mu.Lock()
	r.transports[key] = c
	r.mu.Unlock()
	return c, nil
}

func (r *Client) url(repo, kind, ref string) string {
	// The scheme is replaced by the transport with what the ping found.
	return "https://" + r.host + "/v2/" + repo + "/" + kind + "/" + ref
}

// HTTPError is a registry answer that was not what the call needed.
type HTTPError struct {
	Method  string
	URL     string
	Status  int
	Code    string // the OCI error code, when the body had one
	Message string
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		msg += ": " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Temporary reports whether trying again may help.
func (e *HTTPError) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

func httpError(resp *http.Response) error {
	e := &HTTPError{Method: resp.Request.Method, URL: resp.Request.URL.Redacted(), Status: resp.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	var doc struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &doc) == nil && len(doc.Errors) > 0 {
		e.Code, e.Message = doc.Errors[0].Code, doc.Errors[0].Message
	} else if s := strings.TrimSpace(string(body)); s != "" && len(s) < 300 {
		e.Message = s
	}
	return e
}

// IsNotFound reports whether err is a 404 from a registry.
func IsNotFound(err error) bool {
	var he *HTTPError
	return errors.As(err, &he) && he.Status == http.StatusNotFound
}

func (r *Client) do(ctx context.Context, repo string, push bool, method, u string, hdr http.Header, body []byte) (*http.Response, error) {
	c, err := r.client(ctx, repo, push)
	if err != nil {
		return nil, err
	}
	return r.send(ctx, c, method, u, hdr, body)
}

func (r *Client) send(ctx context.Context, c *http.Client, method, u string, hdr http.Header, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	return c.Do(req)
}

// HeadManifest returns the descriptor of repo:ref, or found=false on 404.
func (r *Client) HeadManifest(ctx context.Context, repo, ref string) (ocispec.Descriptor, bool, error) {
	resp, err := r.do(ctx, repo, false, http.MethodHead, r.url(repo, "manifests", ref), http.Header{"Accept": {manifestAccept}}, nil)
	if err != nil {
		return ocispec.Descriptor{}, false, fmt.Errorf("head manifest %s/%s:%s: %w", r.host, repo, ref, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		size, _ := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
		return ocispec.Descriptor{MediaType: resp.Header.Get("Content-Type"), Digest: digest.Digest(resp.Header.Get("Docker-Content-Digest")), Size: size}, true, nil
	case http.StatusNotFound:
		return ocispec.Descriptor{}, false, nil
	}
	return ocispec.Descriptor{}, false, httpError(resp)
}

// GetManifest fetches repo:ref (a tag or a digest). A digest reference is
// checked against the bytes received. A body cut short or corrupted is
// fetched again, within the retry budget.
func (r *Client) GetManifest(ctx context.Context, repo, ref string) (Manifest, error) {
	var m Manifest
	retryable := func(err error) bool {
		var he *HTTPError // statuses were retried by the transport already
		return Temporary(err) && !errors.As(err, &he)
	}
	err := r.opts.Retry.Do(ctx, retryable, func(_ int, err error) {
		r.opts.Logger.Debug("retrying manifest", "repo", repo, "ref", ref, "error", err)
	}, func() (err error) {
		m, err = r.getManifest(ctx, repo, ref)
		return err
	})
	return m, err
}

func (r *Client) getManifest(ctx context.Context, repo, ref string) (Manifest, error) {
	resp, err := r.do(ctx, repo, false, http.MethodGet, r.url(repo, "manifests", ref), http.Header{"Accept": {manifestAccept}}, nil)
	if err != nil {
		return Manifest{}, fmt.Errorf("get manifest %s/%s:%s: %w", r.host, repo, ref, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Manifest{}, httpError(resp)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestBytes+1))
	if err != nil {
		return Manifest{}, fmt.Errorf("get manifest %s/%s:%s: %w", r.host, repo, ref, err)
	}
	if len(data) > maxManifestBytes {
		return Manifest{}, fmt.Errorf("manifest %s/%s:%s is larger than %d bytes", r.host, repo, ref, maxManifestBytes)
	}
	m := Manifest{MediaType: resp.Header.Get("Content-Type"), Data: data, Digest: digest.FromBytes(data)}
	if want, err := digest.Parse(ref); err == nil && want != m.Digest {
		return Manifest{}, fmt.Errorf("manifest %s/%s@%s: registry sent bytes with digest %s", r.host, repo, want, m.Digest)
	}
	if m.MediaType == "" || m.MediaType == "application/json" || m.MediaType == "text/plain" {
		m.MediaType = sniffMediaType(data)
	}
	return m, nil
}

// PutManifest stores m as repo:ref. subject reports whether the registry
// answered with OCI-Subject, i.e. it indexes referrers itself.
func (r *Client) PutManifest(ctx context.Context, repo, ref string, m Manifest) (subject bool, err error) {
	resp, err := r.do(ctx, repo, true, http.MethodPut, r.url(repo, "manifests", ref), http.Header{"Content-Type": {m.MediaType}}, m.Data)
	if err != nil {
		return false, fmt.Errorf("put manifest %s/%s:%s: %w", r.host, repo, ref, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("put manifest %s/%s:%s: %w", r.host, repo, ref, httpError(resp))
	}
	return resp.Header.Get("OCI-Subject") != "", nil
}

// HasBlob reports whether repo can serve blob d.
func (r *Client) HasBlob(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	resp, err := r.do(ctx, repo, false, http.MethodHead, r.url(repo, "blobs", d.String()), nil, nil)
	if err != nil {
		return false, fmt.Errorf("head blob %s/%s@%s: %w", r.host, repo, d, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, httpError(resp)
}

// GetBlob opens blob d of repo for streaming; the caller closes it.
func (r *Client) GetBlob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, int64, error) {
	resp, err := r.do(ctx, repo, false, http.MethodGet, r.url(repo, "blobs", d.String()), nil, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("get blob %s/%s@%s: %w", r.host, repo, d, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, 0, httpError(resp)
	}
	return resp.Body, resp.ContentLength, nil
}

// Mount asks the registry to link blob d from repository from into repo.
// With from equal to repo it asks whether repo holds d, and a registry
// that does not opens an upload session instead: one request where a
// HEAD and a POST would be two. On true the blob is there; on false
// location is the open upload session for Upload ("" when none).
func (r *Client) Mount(ctx context.Context, repo, from string, d digest.Digest) (mounted bool, location string, err error) {
	c, err := r.client(ctx, repo, true, from)
	if err != nil {
		return false, "", err
	}
	q := url.Values{"mount": {d.String()}}
	if from != "" {
		q.Set("from", from)
	}
	u := "https://" + r.host + "/v2/" + repo + "/blobs/uploads/?" + q.Encode()
	resp, err := r.send(ctx, c, http.MethodPost, u, nil, nil)
	if err != nil {
		return false, "", fmt.Errorf("mount blob %s into %s/%s: %w", d, r.host, repo, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusCreated:
		return true, "", nil
	case http.StatusAccepted:
		loc, err := resp.Location()
		if err != nil {
			return false, "", nil
		}
		return false, loc.String(), nil
	}
	return false, "", fmt.Errorf("mount blob %s into %s/%s: %w", d, r.host, repo, httpError(resp))
}

// Upload streams size bytes of blob d into repo with one monolithic PUT,
// opening an upload session unless location names one already open.
func (r *Client) Upload(ctx context.Context, repo string, d digest.Digest, size int64, body io.Reader, location string) error {
	c, err := r.client(ctx, repo, true)
	if err != nil {
		return err
	}
	if location == "" {
		resp, err := r.send(ctx, c, http.MethodPost, "https://"+r.host+"/v2/"+repo+"/blobs/uploads/", nil, nil)
		if err != nil {
			return fmt.Errorf("start upload to %s/%s: %w", r.host, repo, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("start upload to %s/%s: %w", r.host, repo, httpError(resp))
		}
		loc, err := resp.Location()
		if err != nil {
			return fmt.Errorf("start upload to %s/%s: no Location: %w", r.host, repo, err)
		}
		location = loc.String()
	}
	u, err := url.Parse(location)
	if err != nil {
		return fmt.Errorf("upload location %q: %w", location, err)
	}
	q := u.Query()
	q.Set("digest", d.String())
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), io.NopCloser(body))
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	if size == 0 {
		req.Body = http.NoBody
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("upload blob %s to %s/%s: %w", d, r.host, repo, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("upload blob %s to %s/%s: %w", d, r.host, repo, httpError(resp))
	}
	return nil
}

// Referrers lists the manifests whose subject is d through the referrers
// API. supported is false when the registry has no such API (404), which
// is remembered for the rest of the run.
func (r *Client) Referrers(ctx context.Context, repo string, d digest.Digest) (idx []byte, supported bool, err error) {
	if r.noReferrers.Load() {
		return nil, false, nil
	}
	resp, err := r.do(ctx, repo, false, http.MethodGet, r.url(repo, "referrers", d.String()), http.Header{"Accept": {oci.MediaTypeImageIndex}}, nil)
	if err != nil {
		return nil, false, fmt.Errorf("referrers of %s/%s@%s: %w", r.host, repo, d, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
		// A registry with the API never answers 404 for a repository that
		// exists; only an unknown repository is not proof of anything.
		if he, _ := httpError(resp).(*HTTPError); he.Code != "NAME_UNKNOWN" {
			r.noReferrers.Store(true)
		}
		return nil, false, nil
	case resp.StatusCode != http.StatusOK:
		return nil, false, httpError(resp)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, oci.MediaTypeImageIndex) {
		// Something answered 200 that is not a referrers API (a catch-all route).
		r.noReferrers.Store(true)
		return nil, false, nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestBytes))
	if err != nil {
		return nil, false, fmt.Errorf("referrers of %s/%s@%s: %w", r.host, repo, d, err)
	}
	return data, true, nil
}

// tagsPageSize is asked for per tags/list page; registries may send fewer.
const tagsPageSize = 1000

// Tags lists repo's tags, following the registry's pagination for at
// most maxPages pages. complete is false when more pages were left.
func (r *Client) Tags(ctx context.Context, repo string, maxPages int) (tags []string, complete bool, err error) {
	u := "https://" + r.host + "/v2/" + repo + "/tags/list?n=" + strconv.Itoa(tagsPageSize)
	for page := 0; page < maxPages; page++ {
		resp, err := r.do(ctx, repo, false, http.MethodGet, u, nil, nil)
		if err != nil {
			return nil, false, fmt.Errorf("list tags of %s/%s: %w", r.host, repo, err)
		}
		var doc struct {
			Tags []string `json:"tags"`
		}
		if resp.StatusCode != http.StatusOK {
			err := httpError(resp)
			resp.Body.Close()
			return nil, false, fmt.Errorf("list tags of %s/%s: %w", r.host, repo, err)
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, maxManifestBytes)).Decode(&doc)
		resp.Body.Close()
		if err != nil {
			return nil, false, fmt.Errorf("list tags of %s/%s: %w", r.host, repo, err)
		}
		tags = append(tags, doc.Tags...)
		next := nextPage(resp)
		if next == "" {
			return tags, true, nil
		}
		// The next page must come from the same registry: a Link to
		// another host would make Ferry fetch whatever the registry names.
		if nu, err := url.Parse(next); err != nil || nu.Host != resp.Request.URL.Host {
			return nil, false, fmt.Errorf("list tags of %s/%s: the registry links the next page to %q, another host; refused", r.host, repo, next)
		}
		u = next
	}
	return tags, false, nil
}

// nextPage resolves the Link header's rel="next" URL against the request.
func nextPage(resp *http.Response) string {
	for _, link := range resp.Header.Values("Link") {
		for _, part := range strings.Split(link, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
			if !ok || !strings.Contains(params, `rel="next"`) {
				continue
			}
			target = strings.Trim(strings.TrimSpace(target), "<>")
			ref, err := url.Parse(target)
			if err != nil {
				return ""
			}
			return resp.Request.URL.ResolveReference(ref).String()
		}
	}
	return ""
}

// DeleteManifest deletes repo@ref (a digest deletes the manifest, a tag
// only the tag on registries that allow it). A registry that refuses
// (405, 400 UNSUPPORTED) returns an *HTTPError with that status.
func (r *Client) DeleteManifest(ctx context.Context, repo, ref string) error {
	c, err := r.deleteClient(ctx, repo)
	if err != nil {
		return err
	}
	resp, err := r.send(ctx, c, http.MethodDelete, r.url(repo, "manifests", ref), nil, nil)
	if err != nil {
		return fmt.Errorf("delete manifest %s/%s@%s: %w", r.host, repo, ref, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("delete manifest %s/%s@%s: %w", r.host, repo, ref, httpError(resp))
	}
	return nil
}

// deleteClient is a client whose token carries the delete action, which
// token registries (Ferry, Quay, distribution) require for DELETE.
func (r *Client) deleteClient(ctx context.Context, repo string) (*http.Client, error) {
	return r.scoped(ctx, repo+"#delete", []string{r.reg.Repo(repo).Scope(transport.PullScope + "," + transport.PushScope + ",delete")})
}
