package release

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/ferry-mirror/ferry/internal/transfer"
)

// Default upstream addresses, as oc-mirror uses them.
const (
	DefaultOCPGraphURL = "https://api.openshift.com/api/upgrades_info/v1/graph"
	DefaultOKDGraphURL = "https://origin-release.ci.openshift.org/graph"
)

// Channel types.
const (
	TypeOCP = "ocp"
	TypeOKD = "okd"
)

// maxGraphSize bounds a graph document; real ones are a few MiB.
const maxGraphSize = 64 << 20

// GraphOptions configure a GraphClient. The zero value talks to the
// public OpenShift and OKD graphs.
type GraphOptions struct {
	OCPURL string // default DefaultOCPGraphURL
	OKDURL string // default DefaultOKDGraphURL
	HTTP   *http.Client
	// Attempts is how many times a request is tried on network errors,
	// 429 and 5xx (default 4); Backoff is the first wait, doubled after
	// each try (default 1s).
	Attempts int
	Backoff  time.Duration
	Log      *slog.Logger
}

// GraphOptionsFromEnv reads UPDATE_URL_OVERRIDE, which replaces the OCP
// graph URL as it does for oc-mirror. getenv is os.Getenv in production.
func GraphOptionsFromEnv(getenv func(string) string) GraphOptions {
	return GraphOptions{OCPURL: getenv("UPDATE_URL_OVERRIDE")}
}

// GraphKey names one graph document: a channel of one type for one arch.
type GraphKey struct {
	Type    string
	Channel string
	Arch    Arch
}

// GraphSource hands out channel graphs: from the network (GraphClient) or
// from documents carried in an archive (OfflineGraphs).
type GraphSource interface {
	Graph(ctx context.Context, key GraphKey) (*Graph, error)
}

// GraphClient fetches graphs from Cincinnati and remembers each one, so a
// selection that looks at a channel several times asks once.
type GraphClient struct {
	opts GraphOptions

	mu     sync.Mutex
	graphs map[GraphKey]*Graph
}

// NewGraphClient returns a client with the defaults filled in.
func NewGraphClient(opts GraphOptions) *GraphClient {
	if opts.OCPURL == "" {
		opts.OCPURL = DefaultOCPGraphURL
	}
	if opts.OKDURL == "" {
		opts.OKDURL = DefaultOKDGraphURL
	}
	opts.HTTP, opts.Attempts, opts.Backoff, opts.Log = retryDefaults(opts.HTTP, 5*time.Minute, opts.Attempts, opts.Backoff, opts.Log)
	return &GraphClient{opts: opts, graphs: map[GraphKey]*Graph{}}
}

// Graph returns the graph of key.Channel for key.Arch.
func (c *GraphClient) Graph(ctx context.Context, key GraphKey) (*Graph, error) {
	if key.Type == "" {
		key.Type = TypeOCP
	}
	c.mu.Lock()
	g, ok := c.graphs[key]
	c.mu.Unlock()
	if ok {
		return g, nil
	}
	base := c.opts.OCPURL
	switch key.Type {
	case TypeOCP:
	case TypeOKD:
		base = c.opts.OKDURL
	default:
		return nil, fmt.Errorf("channel %s: unknown type %q: use ocp or okd", key.Channel, key.Type)
	}
	if _, err := ParseArch(string(key.Arch)); err != nil {
		return nil, fmt.Errorf("channel %s: %w", key.Channel, err)
	}
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("%s graph URL %q is not an absolute URL; check UPDATE_URL_OVERRIDE or the client options", key.Type, base)
	}
	q := u.Query()
	q.Set("channel", key.Channel)
	q.Set("arch", key.Arch.GraphArch())
	u.RawQuery = q.Encode()

	body, err := getWithRetry(ctx, c.opts.HTTP, u.String(), "application/json", c.opts.Attempts, c.opts.Backoff, c.opts.Log)
	if err != nil && retryable(err) && key.Type == TypeOCP {
		return nil, fmt.Errorf("channel %s (%s): %w; UPDATE_URL_OVERRIDE names another graph server", key.Channel, key.Arch, err)
	}
	if err != nil {
		return nil, fmt.Errorf("channel %s (%s): %w", key.Channel, key.Arch, err)
	}
	g, err = ParseGraph(body)
	if err != nil {
		return nil, fmt.Errorf("channel %s (%s) from %s: %w", key.Channel, key.Arch, u, err)
	}
	c.mu.Lock()
	c.graphs[key] = g
	c.mu.Unlock()
	return g, nil
}

// Fetched returns every graph document fetched so far, for an archive.
func (c *GraphClient) Fetched() map[GraphKey][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[GraphKey][]byte, len(c.graphs))
	for k, g := range c.graphs {
		out[k] = g.Raw
	}
	return out
}

// OfflineGraphs serves graph documents saved earlier, with no network:
// disk-to-mirror reads the graphs the archive carries.
type OfflineGraphs map[GraphKey][]byte

// Graph parses the saved document for key.
func (o OfflineGraphs) Graph(_ context.Context, key GraphKey) (*Graph, error) {
	if key.Type == "" {
		key.Type = TypeOCP
	}
	data, ok := o[key]
	if !ok {
		return nil, fmt.Errorf("channel %s (%s, %s): no graph saved in the archive; run mirror-to-disk again with this channel", key.Channel, key.Type, key.Arch)
	}
	g, err := ParseGraph(data)
	if err != nil {
		return nil, fmt.Errorf("saved graph of channel %s (%s): %w", key.Channel, key.Arch, err)
	}
	return g, nil
}

// errStatus is an HTTP answer that is not 200.
type errStatus struct {
	url    string
	status string
	code   int
}

func (e *errStatus) Error() string { return fmt.Sprintf("GET %s: %s", e.url, e.status) }

// permanentError marks a failure that a retry cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func retryable(err error) bool {
	var p *permanentError
	if errors.As(err, &p) {
		return false
	}
	var s *errStatus
	if errors.As(err, &s) {
		return s.code == http.StatusTooManyRequests || s.code >= 500
	}
	return true // network errors
}

// getWithRetry GETs url and returns the body, retrying network errors,
// 429 and 5xx with doubling backoff.
func getWithRetry(ctx context.Context, hc *http.Client, rawURL, accept string, attempts int, backoff time.Duration, log *slog.Logger) ([]byte, error) {
	var body []byte
	err := withRetry(ctx, rawURL, attempts, backoff, log, func() error {
		var err error
		body, err = get(ctx, hc, rawURL, accept)
		return err
	})
	return body, err
}

// retryDefaults fills in what the caller left unset of the options every
// HTTP client of this package has: a client with timeout, 4 attempts,
// a first backoff of a second, and no logging.
func retryDefaults(hc *http.Client, timeout time.Duration, attempts int, backoff time.Duration, log *slog.Logger) (*http.Client, int, time.Duration, *slog.Logger) {
	if hc == nil {
		hc = &http.Client{Timeout: timeout}
	}
	if attempts <= 0 {
		attempts = 4
	}
	if backoff <= 0 {
		backoff = time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return hc, attempts, backoff, log
}

// isHTTPURL reports whether raw is an absolute http or https URL.
func isHTTPURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// withRetry runs fn until it succeeds, fails for good, or has been tried
// attempts times, waiting backoff before the first retry and twice as long
// before each next one. A failure after the last try names rawURL.
func withRetry(ctx context.Context, rawURL string, attempts int, backoff time.Duration, log *slog.Logger, fn func() error) error {
	r := transfer.Retry{Times: max(attempts, 1) - 1, Delay: backoff}
	last := r.Do(ctx, retryable, func(n int, err error) { log.Warn("retrying", "url", rawURL, "attempt", n+1, "error", err) }, fn)
	switch {
	case last == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("GET %s: %w", rawURL, ctx.Err())
	case retryable(last):
		return fmt.Errorf("%s unreachable after %d attempts (check the URL and the network or proxy): %w", rawURL, attempts, last)
	default:
		return last
	}
}

func get(ctx context.Context, hc *http.Client, rawURL, accept string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, &permanentError{fmt.Errorf("GET %s: %w", rawURL, err)}
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &errStatus{url: rawURL, status: resp.Status, code: resp.StatusCode}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxGraphSize+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading the answer: %w", rawURL, err)
	}
	if len(body) > maxGraphSize {
		return nil, &permanentError{fmt.Errorf("GET %s: answer larger than 64 MiB", rawURL)}
	}
	return body, nil
}
