// Package gc removes what no image needs from a registry's stores, while
// the registry keeps serving: first the blob links no manifest of their
// repository references, then the blob bytes no repository links.
//
// Manifests are never removed here: deleting images is the user's call
// (DELETE /v2/<name>/manifests/<digest>, e.g. with skopeo delete); the
// collector frees what they leave behind.
package gc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/store"
)

// Metadata is what the collector needs of the metadata store.
type Metadata interface {
	SweepLinks(ctx context.Context, before time.Time) (int, error)
	AnyBlobLink(ctx context.Context, d digest.Digest) (int64, error)
	ClaimDeletion(ctx context.Context, d digest.Digest) (bool, error)
	ReleaseDeletion(ctx context.Context, d digest.Digest) error
	// BlobNeeded answers what a collection would decide for d, changing
	// nothing (DryRun).
	BlobNeeded(ctx context.Context, d digest.Digest, before time.Time) (bool, error)
}

// Blobs is what the collector needs of the blob store.
type Blobs interface {
	Blobs(ctx context.Context, fn func(d digest.Digest, size int64, written time.Time) error) error
	Delete(ctx context.Context, d digest.Digest) error
}

// Options tune a collection.
type Options struct {
	// Grace spares links and blobs younger than this: a client pushing an
	// image uploads its blobs before the manifest that references them.
	Grace time.Duration
	Log   *slog.Logger
	// DryRun reports what a collection would free and changes nothing.
	DryRun bool
}

// Report says what a collection did.
type Report struct {
	LinksRemoved int
	BlobsDeleted int
	BytesFreed   int64
	BlobsKept    int
}

// Run collects once. Deleting a blob is claimed in the metadata store
// first, so a push or mount of the same blob at that moment either comes
// first (and the blob is kept) or is told to upload it again.
func Run(ctx context.Context, meta Metadata, blobs Blobs, o Options) (Report, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	var rep Report
	cutoff := time.Now().Add(-o.Grace)
	if o.DryRun {
		err := blobs.Blobs(ctx, func(d digest.Digest, size int64, written time.Time) error {
			needed := !written.Before(cutoff)
			if !needed {
				var err error
				if needed, err = meta.BlobNeeded(ctx, d, cutoff); err != nil {
					return err
				}
			}
			if needed {
				rep.BlobsKept++
				return nil
			}
			o.Log.Debug("would delete blob", "digest", d, "size", size)
			rep.BlobsDeleted++
			rep.BytesFreed += size
			return nil
		})
		return rep, err
	}
	n, err := meta.SweepLinks(ctx, cutoff)
	if err != nil {
		return rep, err
	}
	rep.LinksRemoved = n
	err = blobs.Blobs(ctx, func(d digest.Digest, size int64, written time.Time) error {
		if !written.Before(cutoff) {
			rep.BlobsKept++
			return nil
		}
		if _, err := meta.AnyBlobLink(ctx, d); err == nil {
			rep.BlobsKept++
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		claimed, err := meta.ClaimDeletion(ctx, d)
		if err != nil {
			return err
		}
		if !claimed { // linked since the check above
			rep.BlobsKept++
			return nil
		}
		err = blobs.Delete(ctx, d)
		if rerr := meta.ReleaseDeletion(ctx, d); err == nil {
			err = rerr
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("delete blob %s: %w", d, err)
		}
		o.Log.Debug("deleted blob", "digest", d, "size", size)
		rep.BlobsDeleted++
		rep.BytesFreed += size
		return nil
	})
	return rep, err
}
