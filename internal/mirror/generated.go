package mirror

import (
	"context"
	"errors"
	"io"
	"io/fs"

	digest "github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/plan"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// generatedSource serves the blobs of images Ferry built from their
// folder and everything else from the source registries.
type generatedSource struct {
	dir  plan.BlobDir
	next transfer.Source
}

func (s generatedSource) Manifest(ctx context.Context, repo string, d digest.Digest) (transfer.Manifest, error) {
	return s.next.Manifest(ctx, repo, d)
}

func (s generatedSource) Blob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, int64, error) {
	rc, n, err := s.dir.Open(d)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return rc, n, err
	}
	return s.next.Blob(ctx, repo, d)
}
