// Package store defines the two stores a registry stands on: a
// content-addressed BlobStore shared by every repository, and a
// MetadataStore holding repositories, manifests, tags, blob links and upload
// sessions. Backends live in subpackages (fs, s3; sqlstore for SQLite and
// PostgreSQL) and each kind passes the shared suite in package storetest.
package store

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrNotFound is returned (wrapped) when a blob, manifest, tag, repository
// or upload does not exist.
var ErrNotFound = errors.New("not found")

// ErrDeleting is returned by LinkBlob while a garbage collector deletes
// the blob: its bytes must be uploaded again.
var ErrDeleting = errors.New("blob is being deleted by garbage collection")

// DeletionTimeout is how long a collector's claim on a blob lasts; a
// claim left by a collector that died expires after it.
const DeletionTimeout = 10 * time.Minute

// ErrUnavailable is returned (wrapped) when a backend cannot be reached
// for the moment: a database restarting, a connection it closed, an
// object store not answering. The request may be sent again later; the
// registry answers 503 with Retry-After.
var ErrUnavailable = errors.New("store temporarily unavailable")

// ErrConflict is returned when an upload's offset moved under the caller:
// another request wrote to the same session first.
var ErrConflict = errors.New("conflict")

// Blob is an open blob. The fs backend returns an *os.File as the
// ReadSeekCloser so net/http can use sendfile.
type Blob struct {
	io.ReadSeekCloser
	Size    int64
	ModTime time.Time
}

// BlobStore holds blob bytes by digest, and the data files of uploads in
// progress so that any replica sharing the store can continue them.
type BlobStore interface {
	// Open returns the blob's content; ErrNotFound if absent.
	Open(ctx context.Context, d digest.Digest) (*Blob, error)
	// Stat returns the blob's size; ErrNotFound if absent.
	Stat(ctx context.Context, d digest.Digest) (int64, error)
	// Delete removes the blob's bytes (garbage collection only).
	Delete(ctx context.Context, d digest.Digest) error

	// WriteUpload writes r into upload id starting at offset, discarding
	// anything stored past offset (left by a crash), and returns the bytes
	// written. Offset 0 creates the upload.
	WriteUpload(ctx context.Context, id string, offset int64, r io.Reader) (int64, error)
	// OpenUpload reads the data written so far (to re-hash it).
	OpenUpload(ctx context.Context, id string) (io.ReadCloser, error)
	// CommitUpload makes upload id durable as blob d. If d is already
	// stored the upload is simply dropped.
	CommitUpload(ctx context.Context, id string, d digest.Digest) error
	// DeleteUpload drops upload id; absent is not an error.
	DeleteUpload(ctx context.Context, id string) error
	// Blobs calls fn with every stored blob, its size and the time it was
	// written.
	Blobs(ctx context.Context, fn func(d digest.Digest, size int64, written time.Time) error) error
	// Uploads calls fn with the id of every upload holding data and the
	// time it was last written.
	Uploads(ctx context.Context, fn func(id string, written time.Time) error) error

	// Ping reports whether the store is usable (for /readyz).
	Ping(ctx context.Context) error
}

// Manifest is a stored manifest with what the registry extracted from it.
type Manifest struct {
	Digest       digest.Digest
	MediaType    string
	Content      []byte
	Subject      digest.Digest     // "" when none
	ArtifactType string            // artifactType, else config media type
	Annotations  map[string]string // top-level annotations
	Blobs        []digest.Digest   // config and layers
	Children     []digest.Digest   // manifests of an index
}

// Upload is a blob upload session in progress.
type Upload struct {
	ID        string
	Repo      string
	Offset    int64
	Algorithm digest.Algorithm
	HashState []byte // encoding.BinaryMarshaler state of the running hash at Offset
	StartedAt time.Time
	// Owner opened the session: a user name, or the client address when
	// authentication is off. Open sessions are limited per owner.
	Owner string
}

// MetadataStore holds everything but blob bytes. Every method is safe for
// concurrent use by several processes sharing the backend.
type MetadataStore interface {
	// LinkBlob records that blob d (size bytes) is readable in repo,
	// creating repo if needed, or renews the link's time. ErrDeleting
	// while a collector deletes d.
	LinkBlob(ctx context.Context, repo string, d digest.Digest, size int64) error
	// BlobLink returns the size of blob d if it is linked in repo.
	BlobLink(ctx context.Context, repo string, d digest.Digest) (int64, error)
	// AnyBlobLink returns the size of blob d if any repository links it.
	AnyBlobLink(ctx context.Context, d digest.Digest) (int64, error)
	// UnlinkBlob removes blob d from repo; ErrNotFound if not linked.
	UnlinkBlob(ctx context.Context, repo string, d digest.Digest) error

	// PutManifest stores m in repo (idempotent) and points tag at it when
	// tag is not empty. Every blob of m must be linked in repo (ErrNotFound
	// otherwise); the links' times are renewed in the same transaction, so
	// a collector cannot remove them under the new manifest.
	PutManifest(ctx context.Context, repo string, m *Manifest, tag string) error
	// Manifest returns the manifest with digest d in repo (Content,
	// MediaType and Digest are set).
	Manifest(ctx context.Context, repo string, d digest.Digest) (*Manifest, error)
	// TaggedManifest returns the manifest tag points at in repo.
	TaggedManifest(ctx context.Context, repo, tag string) (*Manifest, error)
	// MissingManifests reports which of ds do not exist in repo.
	MissingManifests(ctx context.Context, repo string, ds []digest.Digest) ([]digest.Digest, error)
	// MissingBlobs reports which of ds are not linked in repo.
	MissingBlobs(ctx context.Context, repo string, ds []digest.Digest) ([]digest.Digest, error)
	// DeleteManifest removes manifest d and the tags pointing at it. It
	// never deletes an index's children.
	DeleteManifest(ctx context.Context, repo string, d digest.Digest) error
	// DeleteTag removes tag only.
	DeleteTag(ctx context.Context, repo, tag string) error
	// Tags lists repo's tags in lexical order after last, at most n.
	// ErrNotFound if repo does not exist.
	Tags(ctx context.Context, repo, last string, n int) ([]string, error)
	// Repositories lists repository names in lexical order after last.
	Repositories(ctx context.Context, last string, n int) ([]string, error)
	// Referrers lists the manifests in repo whose subject is d, filtered
	// by artifactType when not empty.
	Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]ocispec.Descriptor, error)

	// CreateUpload starts a session.
	CreateUpload(ctx context.Context, u *Upload) error
	// Upload returns a session; ErrNotFound if unknown.
	Upload(ctx context.Context, id string) (*Upload, error)
	// AdvanceUpload moves session id from offset from to u.Offset with the
	// new hash state; ErrConflict if the stored offset is not from.
	AdvanceUpload(ctx context.Context, u *Upload, from int64) error
	// DeleteUpload ends a session; absent is not an error.
	DeleteUpload(ctx context.Context, id string) error
	// OpenUploads counts the sessions owner has open.
	OpenUploads(ctx context.Context, owner string) (int, error)
	// StaleUploads lists at most n sessions not written to since before.
	StaleUploads(ctx context.Context, before time.Time, n int) ([]string, error)

	// SweepLinks removes the blob links made before before that no
	// manifest of their repository references, and returns how many.
	SweepLinks(ctx context.Context, before time.Time) (int, error)
	// ClaimDeletion marks blob d as being deleted, so LinkBlob refuses it,
	// and reports true; false when some repository links d.
	ClaimDeletion(ctx context.Context, d digest.Digest) (bool, error)
	// ReleaseDeletion ends a claim.
	ReleaseDeletion(ctx context.Context, d digest.Digest) error

	// Ping reports whether the store is usable (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}
