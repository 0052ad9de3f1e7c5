package registry

import (
	"context"
	"fmt"
	"time"
)

// PurgeUploads removes the sessions and upload data abandoned before
// before (see upload.Manager.Purge).
func (r *Registry) PurgeUploads(ctx context.Context, before time.Time) (int, error) {
	return r.uploads.Purge(ctx, before)
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
