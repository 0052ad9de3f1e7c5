package store

import (
	"context"
	"time"

	"github.com/opencontainers/go-digest"
)

// RepositoryInfo is what a listing of repositories shows of each.
type RepositoryInfo struct {
	Name string
	// Size is the bytes of the blobs linked in the repository.
	Size int64
	// LastPush is when a manifest was last pushed or a tag last moved;
	// zero when neither ever happened.
	LastPush time.Time
}

// TagInfo is a tag with the manifest it points at and when it moved there.
type TagInfo struct {
	Name    string
	Digest  digest.Digest
	Updated time.Time
}

// ManifestInfo is a manifest of a listing, without its content.
type ManifestInfo struct {
	Digest    digest.Digest
	MediaType string
	Size      int64
	Pushed    time.Time
}

// Listing is what the web console reads to show repositories with their
// sizes and push times. Both metadata backends implement it beside
// MetadataStore; the console does without it when a store does not.
type Listing interface {
	// RepositoryInfos describes the named repositories that exist, in
	// the order given.
	RepositoryInfos(ctx context.Context, names []string) ([]RepositoryInfo, error)
	// TagInfos lists repo's tags in lexical order after last, at most n.
	// ErrNotFound if repo does not exist.
	TagInfos(ctx context.Context, repo, last string, n int) ([]TagInfo, error)
	// UntaggedManifests looks at up to scan of repo's manifests after last,
	// by digest, and returns those no tag points at (pushed by digest, or
	// an index's children) and where to continue: the last digest looked
	// at, or "" when the scan reached the end. Bounding the scan, not the
	// result, keeps a page quick when almost every manifest is tagged.
	UntaggedManifests(ctx context.Context, repo string, last digest.Digest, scan int) ([]ManifestInfo, digest.Digest, error)
}
