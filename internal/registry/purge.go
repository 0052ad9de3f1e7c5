package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferry-mirror/ferry/internal/store"
)

// PurgeUploads removes what abandoned uploads left: sessions nobody wrote
// to since before, with their data, and upload data no session owns that
// is as old (a monolithic upload cut by a crash). A client that comes
// back to a purged session gets BLOB_UPLOAD_UNKNOWN and starts again.
// Replicas sharing the stores may run it at the same time.
func (r *Registry) PurgeUploads(ctx context.Context, before time.Time) (int, error) {
	purged := 0
	for {
		ids, err := r.meta.StaleUploads(ctx, before, 500)
		if err != nil {
			return purged, err
		}
		for _, id := range ids {
			if err := r.blobs.DeleteUpload(ctx, id); err != nil {
				return purged, err
			}
			if err := r.meta.DeleteUpload(ctx, id); err != nil {
				return purged, err
			}
			purged++
		}
		if len(ids) < 500 {
			break
		}
	}
	var orphans []string
	err := r.blobs.Uploads(ctx, func(id string, written time.Time) error {
		if written.Before(before) {
			orphans = append(orphans, id)
		}
		return nil
	})
	if err != nil {
		return purged, err
	}
	for _, id := range orphans {
		// A session may own it after all: one still being written only
		// has old data when it was idle, and then StaleUploads had it.
		if _, err := r.meta.Upload(ctx, id); !errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err := r.blobs.DeleteUpload(ctx, id); err != nil {
			return purged, err
		}
		purged++
	}
	return purged, nil
}

// PurgeUploadsEvery runs PurgeUploads for uploads idle longer than maxAge,
// at once and then every interval, until ctx ends.
func (r *Registry) PurgeUploadsEvery(ctx context.Context, maxAge, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := r.PurgeUploads(ctx, time.Now().Add(-maxAge))
		switch {
		case err != nil && ctx.Err() == nil:
			r.log.Warn("purging abandoned uploads", "error", fmt.Errorf("purge uploads: %w", err))
		case n > 0:
			r.log.Info("purged abandoned uploads", "count", n, "idle_longer_than", maxAge)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
