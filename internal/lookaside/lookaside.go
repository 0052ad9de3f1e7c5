// Package lookaside reads containers-registries.d(5) for where simple
// signatures of images are kept ("lookaside" web servers; "sigstore" is
// the old name of the key) and fetches them, as containers/image does:
// <lookaside>/<repository path>@<algo>=<hex>/signature-<n>, n from 1 until
// the server answers 404.
package lookaside

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	"gopkg.in/yaml.v3"
)

// maxSignatures and maxSignatureSize bound what one image may make Ferry
// download; servers publish one or two signatures of a few hundred bytes.
const (
	maxSignatures    = 128
	maxSignatureSize = 4 << 20
)

// section is one configuration section of registries.d.
type section struct {
	Lookaside        string `yaml:"lookaside"`
	LookasideStaging string `yaml:"lookaside-staging"`
	Sigstore         string `yaml:"sigstore"`
	SigstoreStaging  string `yaml:"sigstore-staging"`
	// Read so a file that sets it parses; cosign attachments are read
	// for sigstoreSigned requirements whatever it says.
	UseSigstoreAttachments *bool `yaml:"use-sigstore-attachments"`
}

type fileConfig struct {
	DefaultDocker *section           `yaml:"default-docker"`
	Docker        map[string]section `yaml:"docker"`
}

// Config is the merged content of a registries.d directory.
type Config struct {
	// Dir is the directory read, "" when none exists.
	Dir    string
	def    string
	scopes map[string]string
	HTTP   *http.Client
}

// DefaultDir is the directory containers/image reads: the user's when it
// exists, else the system one.
func DefaultDir() string {
	if home, err := os.UserHomeDir(); err == nil {
		d := filepath.Join(home, ".config", "containers", "registries.d")
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
	}
	return "/etc/containers/registries.d"
}

// Load reads every *.yaml file in dir. dir "" means DefaultDir, which may
// be missing (then no lookaside is configured); a dir given by the user
// must exist.
func Load(dir string) (*Config, error) {
	given := dir != ""
	if !given {
		dir = DefaultDir()
	}
	c := &Config{Dir: dir, scopes: map[string]string{}, HTTP: &http.Client{Timeout: time.Minute}}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) && !given {
		c.Dir = ""
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read registries.d: %w (give the directory with --registries.d DIR)", err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".yaml") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	defFrom := ""
	from := map[string]string{}
	for _, n := range names {
		p := filepath.Join(dir, n)
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("registries.d file: %w", err)
		}
		var f fileConfig
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("registries.d file %s does not parse: %v; expected docker: and default-docker: sections with lookaside: URLs (see containers-registries.d(5))", p, err)
		}
		if f.DefaultDocker != nil {
			if defFrom != "" {
				return nil, fmt.Errorf("registries.d file %s: default-docker is also set in %s; containers-registries.d(5) allows one", p, defFrom)
			}
			defFrom = p
			if c.def, err = f.DefaultDocker.url(); err != nil {
				return nil, fmt.Errorf("registries.d file %s: default-docker: %w", p, err)
			}
		}
		for scope, s := range f.Docker {
			if prev, ok := from[scope]; ok {
				return nil, fmt.Errorf("registries.d file %s: docker scope %q is also set in %s; containers-registries.d(5) allows one", p, scope, prev)
			}
			from[scope] = p
			if c.scopes[scope], err = s.url(); err != nil {
				return nil, fmt.Errorf("registries.d file %s: docker scope %q: %w", p, scope, err)
			}
		}
	}
	return c, nil
}

// url is the section's read URL, checked.
func (s section) url() (string, error) {
	u := s.Lookaside
	if u == "" {
		u = s.Sigstore
	} else if s.Sigstore != "" && s.Sigstore != s.Lookaside {
		return "", errors.New("lookaside and sigstore (its old name) differ; keep one")
	}
	if u == "" {
		return "", nil
	}
	pu, err := url.Parse(u)
	if err != nil || !(pu.Scheme == "http" || pu.Scheme == "https" || pu.Scheme == "file") || (pu.Scheme != "file" && pu.Host == "") {
		return "", fmt.Errorf("lookaside %q is not an http(s):// or file:// URL", u)
	}
	return strings.TrimSuffix(u, "/"), nil
}

// base finds the lookaside URL of repo (host/path) from the most specific
// scope, as containers-registries.d(5) orders them; "" means none.
func (c *Config) base(repo, tag string, d digest.Digest) string {
	if tag != "" {
		if u, ok := c.scopes[repo+":"+tag]; ok {
			return u
		}
	}
	if u, ok := c.scopes[repo+"@"+d.String()]; ok {
		return u
	}
	for s := repo; ; {
		if u, ok := c.scopes[s]; ok {
			return u
		}
		i := strings.LastIndex(s, "/")
		if i < 0 {
			break
		}
		s = s[:i]
	}
	return c.def
}

// Where names the directory read, for messages.
func (c *Config) Where() string {
	if c.Dir == "" {
		return "no registries.d directory (" + DefaultDir() + " does not exist)"
	}
	return "registries.d " + c.Dir
}

// Fetch downloads the simple signatures of repo@d (repo is host/path; tag
// may be "") from its lookaside. No lookaside configured is an error that
// says what to add.
func (c *Config) Fetch(ctx context.Context, repo, tag string, d digest.Digest) ([][]byte, error) {
	base := c.base(repo, tag, d)
	if base == "" {
		return nil, fmt.Errorf("no lookaside for %s in %s; add a .yaml file there with \"docker: {%s: {lookaside: https://...}}\" or give another directory with --registries.d", repo, c.Where(), hostOf(repo))
	}
	_, path, _ := strings.Cut(repo, "/")
	var sigs [][]byte
	for n := 1; n <= maxSignatures; n++ {
		u := fmt.Sprintf("%s/%s@%s=%s/signature-%d", base, path, d.Algorithm(), d.Encoded(), n)
		body, found, err := c.get(ctx, u)
		if err != nil {
			return nil, err
		}
		if !found {
			break
		}
		sigs = append(sigs, body)
	}
	return sigs, nil
}

func hostOf(repo string) string {
	h, _, _ := strings.Cut(repo, "/")
	return h
}

// get reads one signature; found is false when there is none.
func (c *Config) get(ctx context.Context, u string) (body []byte, found bool, err error) {
	if p, ok := strings.CutPrefix(u, "file://"); ok {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("lookaside signature: %w", err)
		}
		defer f.Close()
		return readLimited(f, u)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, false, fmt.Errorf("lookaside signature %s: %w", u, err)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("lookaside signature: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, false, nil
	case resp.StatusCode != http.StatusOK:
		return nil, false, fmt.Errorf("lookaside signature %s: %s", u, resp.Status)
	}
	return readLimited(resp.Body, u)
}

func readLimited(r io.Reader, u string) ([]byte, bool, error) {
	body, err := io.ReadAll(io.LimitReader(r, maxSignatureSize+1))
	if err != nil {
		return nil, false, fmt.Errorf("lookaside signature %s: %w", u, err)
	}
	if len(body) > maxSignatureSize {
		return nil, false, fmt.Errorf("lookaside signature %s is larger than 4 MiB; it is not a signature", u)
	}
	return body, true, nil
}
