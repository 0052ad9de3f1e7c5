package helm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"gopkg.in/yaml.v3"
)

// Default download limits. Helm itself caps charts at 20 MiB; indexes of
// big public repositories reach tens of MiB.
const (
	DefaultMaxIndexBytes = 100 << 20
	DefaultMaxChartBytes = 20 << 20
)

// Client reads classic (index.yaml) chart repositories.
type Client struct {
	HTTP *http.Client // nil: http.DefaultClient
	// Credentials returns the user and password for a repository host
	// (host[:port]); nil or ok == false means anonymous. They are sent
	// only to the repository's own host, never to a chart URL elsewhere.
	Credentials   func(host string) (user, password string, ok bool)
	MaxIndexBytes int64
	MaxChartBytes int64
}

// Index is a repository's index.yaml.
type Index struct {
	URL     string // the repository URL it was read from
	Entries map[string][]Entry
}

// Entry is one version of one chart in an index.
type Entry struct {
	Name       string   `yaml:"name"`
	Version    string   `yaml:"version"`
	AppVersion any      `yaml:"appVersion"`
	Type       string   `yaml:"type"`
	URLs       []string `yaml:"urls"`
	Digest     string   `yaml:"digest"`
}

// Index downloads and parses repoURL/index.yaml.
func (c *Client) Index(ctx context.Context, repoURL string) (*Index, error) {
	if strings.HasPrefix(repoURL, "oci://") {
		return nil, fmt.Errorf("chart repository %s: an oci:// repository is a registry, not an index.yaml: read its charts as OCI artifacts", repoURL)
	}
	u := strings.TrimSuffix(strings.TrimSuffix(repoURL, "/index.yaml"), "/") + "/index.yaml"
	data, err := c.get(ctx, repoURL, u, c.limit(c.MaxIndexBytes, DefaultMaxIndexBytes))
	if err != nil {
		return nil, fmt.Errorf("chart repository %s: %w", repoURL, err)
	}
	var doc struct {
		APIVersion string             `yaml:"apiVersion"`
		Entries    map[string][]Entry `yaml:"entries"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("chart repository %s: index.yaml is not valid YAML: %w", repoURL, err)
	}
	if doc.APIVersion == "" && doc.Entries == nil {
		return nil, fmt.Errorf("chart repository %s: %s is not a Helm repository index (no apiVersion, no entries); check the url", repoURL, u)
	}
	return &Index{URL: repoURL, Entries: doc.Entries}, nil
}

// Find picks a chart version: version is an exact version, a semver
// constraint ("^1.2", ">=1.0 <2.0"), or empty for the newest version that
// is not a pre-release, as `helm pull --version` does.
func (ix *Index) Find(name, version string) (Entry, error) {
	entries, ok := ix.Entries[name]
	if !ok || len(entries) == 0 {
		names := make([]string, 0, len(ix.Entries))
		for n := range ix.Entries {
			names = append(names, n)
		}
		sort.Strings(names)
		return Entry{}, fmt.Errorf("chart %q not found in repository %s (it has: %s)", name, ix.URL, list(names))
	}
	for _, e := range entries {
		if e.Version == version && version != "" {
			return e, nil
		}
	}
	con := (*semver.Constraints)(nil)
	if version != "" {
		var err error
		if con, err = semver.NewConstraint(version); err != nil {
			return Entry{}, fmt.Errorf("chart %q version %q not found in repository %s, and it is not a semver constraint either: %v", name, version, ix.URL, err)
		}
	}
	var best Entry
	var bestV *semver.Version
	var have []string
	for _, e := range entries {
		have = append(have, e.Version)
		v, err := semver.NewVersion(e.Version)
		if err != nil {
			continue
		}
		if con == nil && v.Prerelease() != "" || con != nil && !con.Check(v) {
			continue
		}
		if bestV == nil || v.GreaterThan(bestV) {
			best, bestV = e, v
		}
	}
	if bestV == nil {
		what := "any stable version"
		if version != "" {
			what = fmt.Sprintf("version %q", version)
		}
		return Entry{}, fmt.Errorf("chart %q: %s not found in repository %s (versions: %s)", name, what, ix.URL, list(have))
	}
	return best, nil
}

// Applications lists every version of every chart that is not a library
// chart (library charts hold no manifests), for a repository entry that
// names no charts.
func (ix *Index) Applications() []Entry {
	var out []Entry
	for _, es := range ix.Entries {
		for _, e := range es {
			if e.Type != "library" {
				out = append(out, e)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Version < out[j].Version
	})
	return out
}

// Download fetches a chart archive named by an index entry, checking its
// digest when the index gives one.
func (c *Client) Download(ctx context.Context, ix *Index, e Entry) ([]byte, error) {
	what := fmt.Sprintf("chart %s %s from repository %s", e.Name, e.Version, ix.URL)
	if len(e.URLs) == 0 {
		return nil, fmt.Errorf("%s: the index lists no URL for it", what)
	}
	base, err := url.Parse(strings.TrimSuffix(ix.URL, "/") + "/")
	if err != nil {
		return nil, fmt.Errorf("%s: repository URL: %w", what, err)
	}
	ref, err := url.Parse(e.URLs[0])
	if err != nil {
		return nil, fmt.Errorf("%s: chart URL %q: %w", what, e.URLs[0], err)
	}
	// Relative chart URLs are relative to the repository, as Helm reads them.
	u := base.ResolveReference(ref).String()
	data, err := c.get(ctx, ix.URL, u, c.limit(c.MaxChartBytes, DefaultMaxChartBytes))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if e.Digest != "" {
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, strings.TrimPrefix(e.Digest, "sha256:")) {
			return nil, fmt.Errorf("%s: %s has digest sha256:%s, the index says %s; the repository is inconsistent or the download was corrupted", what, u, got, e.Digest)
		}
	}
	return data, nil
}

func (c *Client) limit(set, def int64) int64 {
	if set > 0 {
		return set
	}
	return def
}

func (c *Client) get(ctx context.Context, repoURL, u string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if c.Credentials != nil {
		if ru, err := url.Parse(repoURL); err == nil && ru.Host == req.URL.Host {
			if user, pass, ok := c.Credentials(ru.Host); ok {
				req.SetBasicAuth(user, pass)
			}
		}
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("unreachable: %w; check the url and that the repository is reachable from this host", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("GET %s: %s; add credentials for %s to the auth file (--authfile)", u, resp.Status, req.URL.Host)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("GET %s: larger than the %d MiB limit", u, limit>>20)
	}
	return data, nil
}

func list(ss []string) string {
	if len(ss) == 0 {
		return "nothing"
	}
	if len(ss) > 10 {
		return strings.Join(ss[:10], ", ") + fmt.Sprintf(" and %d more", len(ss)-10)
	}
	return strings.Join(ss, ", ")
}
