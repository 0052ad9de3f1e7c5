package plan

import (
	"context"
	"io"

	digest "github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/transfer"
)

// Registry is what the plan reads from one source registry. A manifest
// that is not there is an error transfer.IsNotFound recognizes.
type Registry interface {
	Host() string
	GetManifest(ctx context.Context, repo, ref string) (transfer.Manifest, error)
	// GetBlob opens blob d of repo, with its size; the caller closes it.
	// Collectors read catalogs, release contents and base images.
	GetBlob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, int64, error)
	// Tags lists at most maxPages pages of repo's tags; complete is false
	// when there were more.
	Tags(ctx context.Context, repo string, maxPages int) (tags []string, complete bool, err error)
	// Referrers returns the referrers index of d; supported is false when
	// the registry has no referrers API.
	Referrers(ctx context.Context, repo string, d digest.Digest) (idx []byte, supported bool, err error)
}

// Source finds the registry that serves a host.
type Source interface {
	Registry(host string) (Registry, error)
}

// Registries reads the source registries over HTTP; nil (only checking
// the configuration) gives a nil Source.
func Registries(r *transfer.Registries) Source {
	if r == nil {
		return nil
	}
	return registries{r}
}

type registries struct{ r *transfer.Registries }

func (s registries) Registry(host string) (Registry, error) {
	reg, err := s.r.Client(host)
	if err != nil {
		return nil, err
	}
	return reg, nil
}
