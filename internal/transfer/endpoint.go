package transfer

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
)

// Source serves manifests and blobs. For registries repo is "host/path".
type Source interface {
	Manifest(ctx context.Context, repo string, d digest.Digest) (Manifest, error)
	Blob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, int64, error)
}

// Dest stores manifests and blobs. repo is the full repository path inside
// the destination; endpoints without repositories (an archive) ignore it.
type Dest interface {
	// HasManifest reports whether ref (a tag or digest) already names d.
	HasManifest(ctx context.Context, repo, ref string, d digest.Digest) (bool, error)
	// PutManifest stores m under ref. subject is true when the endpoint
	// indexes referrers itself.
	PutManifest(ctx context.Context, repo, ref string, m Manifest) (subject bool, err error)
	HasBlob(ctx context.Context, repo string, d digest.Digest) (bool, error)
	// Mount makes blob d, held in repository from, present in repo
	// without sending it; with from equal to repo it finds out whether
	// repo holds d. When it cannot, it may return an upload session for
	// PutBlob. An error means the endpoint refused to mount at all.
	Mount(ctx context.Context, repo, from string, d digest.Digest) (mounted bool, session string, err error)
	// PutBlob stores the size bytes of r as blob d, in session when
	// given (from Mount), else in a new one.
	PutBlob(ctx context.Context, repo string, d digest.Digest, size int64, r io.Reader, session string) error
}

// Registries is a Source over any number of registry hosts, with one
// client per host created on first use.
type Registries struct {
	opts RegistryOptions
	mu   sync.Mutex
	regs map[string]*Client
}

// NewRegistries returns a Source reading from registries with opts.
func NewRegistries(opts RegistryOptions) *Registries {
	return &Registries{opts: opts, regs: map[string]*Client{}}
}

// Client returns the client for host.
func (s *Registries) Client(host string) (*Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.regs[host]; ok {
		return r, nil
	}
	r, err := NewClient(host, s.opts)
	if err != nil {
		return nil, err
	}
	s.regs[host] = r
	return r, nil
}

// Split cuts "host/path" into its registry client and path.
func (s *Registries) Split(repo string) (*Client, string, error) {
	host, path, ok := strings.Cut(repo, "/")
	if !ok {
		return nil, "", fmt.Errorf("repository %q has no registry host", repo)
	}
	r, err := s.Client(host)
	return r, path, err
}

// Manifest implements Source.
func (s *Registries) Manifest(ctx context.Context, repo string, d digest.Digest) (Manifest, error) {
	// A digest that is not one would be fetched as a tag, and the bytes
	// that came back would go unchecked.
	if err := d.Validate(); err != nil {
		return Manifest{}, &PermanentError{fmt.Errorf("manifest %q of %s is not a digest: %w", d, repo, err)}
	}
	r, path, err := s.Split(repo)
	if err != nil {
		return Manifest{}, err
	}
	return r.GetManifest(ctx, path, d.String())
}

// Blob implements Source.
func (s *Registries) Blob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, int64, error) {
	if err := d.Validate(); err != nil {
		return nil, 0, &PermanentError{fmt.Errorf("blob %q of %s is not a digest: %w", d, repo, err)}
	}
	r, path, err := s.Split(repo)
	if err != nil {
		return nil, 0, err
	}
	return r.GetBlob(ctx, path, d)
}

// RegistryDest is a Dest on one registry.
type RegistryDest struct{ R *Client }

// HasManifest implements Dest.
func (d RegistryDest) HasManifest(ctx context.Context, repo, ref string, dg digest.Digest) (bool, error) {
	desc, ok, err := d.R.HeadManifest(ctx, repo, ref)
	if err != nil || !ok {
		return false, err
	}
	return desc.Digest == dg, nil
}

// PutManifest implements Dest.
func (d RegistryDest) PutManifest(ctx context.Context, repo, ref string, m Manifest) (bool, error) {
	return d.R.PutManifest(ctx, repo, ref, m)
}

// HasBlob implements Dest.
func (d RegistryDest) HasBlob(ctx context.Context, repo string, dg digest.Digest) (bool, error) {
	return d.R.HasBlob(ctx, repo, dg)
}

// Mount implements Dest.
func (d RegistryDest) Mount(ctx context.Context, repo, from string, dg digest.Digest) (bool, string, error) {
	return d.R.Mount(ctx, repo, from, dg)
}

// PutBlob implements Dest.
func (d RegistryDest) PutBlob(ctx context.Context, repo string, dg digest.Digest, size int64, r io.Reader, session string) error {
	return d.R.Upload(ctx, repo, dg, size, r, session)
}
