package upload

import (
	"context"
	"errors"
	"time"

	"github.com/ferry-mirror/ferry/internal/store"
)

// Purge removes what abandoned uploads left: sessions nobody wrote to
// since before, with their data, and upload data no session owns that is
// as old (a monolithic upload cut by a crash). A client that comes back
// to a purged session gets ErrUnknown and starts again. Replicas sharing
// the stores may run it at the same time.
func (m *Manager) Purge(ctx context.Context, before time.Time) (int, error) {
	purged := 0
	for {
		ids, err := m.meta.StaleUploads(ctx, before, 500)
		if err != nil {
			return purged, err
		}
		for _, id := range ids {
			if err := m.blobs.DeleteUpload(ctx, id); err != nil {
				return purged, err
			}
			if err := m.meta.DeleteUpload(ctx, id); err != nil {
				return purged, err
			}
			purged++
		}
		if len(ids) < 500 {
			break
		}
	}
	var orphans []string
	err := m.blobs.Uploads(ctx, func(id string, written time.Time) error {
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
		if _, err := m.meta.Upload(ctx, id); !errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err := m.blobs.DeleteUpload(ctx, id); err != nil {
			return purged, err
		}
		purged++
	}
	return purged, nil
}
