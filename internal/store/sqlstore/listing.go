package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/store"
)

var _ store.Listing = (*Store)(nil)

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// RepositoryInfos implements store.Listing.
func (s *Store) RepositoryInfos(ctx context.Context, names []string) ([]store.RepositoryInfo, error) {
	if len(names) == 0 {
		return nil, nil
	}
	cond, args := s.d.oneOf("r.name", names)
	// The later of the two times is taken in Go: SQLite's MAX(a, b) is
	// PostgreSQL's GREATEST.
	infos, err := collect(ctx, s, `SELECT r.name,
		COALESCE((SELECT SUM(size) FROM blob_links b WHERE b.repo = r.name), 0),
		COALESCE((SELECT MAX(created_at) FROM manifests m WHERE m.repo = r.name), 0),
		COALESCE((SELECT MAX(updated_at) FROM tags t WHERE t.repo = r.name), 0)
		FROM repositories r WHERE `+cond, args, func(r *sql.Rows, ri *store.RepositoryInfo) error {
		var pushed, tagged int64
		if err := r.Scan(&ri.Name, &ri.Size, &pushed, &tagged); err != nil {
			return err
		}
		ri.LastPush = fromMillis(max(pushed, tagged))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("describe repositories: %w", err)
	}
	found := make(map[string]store.RepositoryInfo, len(infos))
	for _, ri := range infos {
		found[ri.Name] = ri
	}
	out := make([]store.RepositoryInfo, 0, len(found))
	for _, n := range names {
		if ri, ok := found[n]; ok {
			out = append(out, ri)
		}
	}
	return out, nil
}

// TagInfos implements store.Listing, in byte-wise order as Tags.
func (s *Store) TagInfos(ctx context.Context, repo, last string, n int) ([]store.TagInfo, error) {
	var one int
	if err := s.queryRow(ctx, `SELECT 1 FROM repositories WHERE name = ?`, repo).Scan(&one); err != nil {
		return nil, notFound(err, "repository "+repo)
	}
	c := s.d.byteOrder()
	out, err := collect(ctx, s, `SELECT name, digest, updated_at FROM tags WHERE repo = ? AND name`+c+` > ? ORDER BY name`+c+` LIMIT ?`,
		[]any{repo, last, n}, func(r *sql.Rows, ti *store.TagInfo) error {
			var at int64
			if err := r.Scan(&ti.Name, &ti.Digest, &at); err != nil {
				return err
			}
			ti.Updated = fromMillis(at)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", repo, err)
	}
	return out, nil
}

// UntaggedManifests implements store.Listing.
func (s *Store) UntaggedManifests(ctx context.Context, repo string, last digest.Digest, scan int) ([]store.ManifestInfo, digest.Digest, error) {
	type row struct {
		store.ManifestInfo
		tagged bool
	}
	c := s.d.byteOrder()
	rows, err := collect(ctx, s, `SELECT m.digest, m.media_type, m.size, m.created_at,
		EXISTS (SELECT 1 FROM tags t WHERE t.repo = m.repo AND t.digest = m.digest)
		FROM manifests m WHERE m.repo = ? AND m.digest`+c+` > ? ORDER BY m.digest`+c+` LIMIT ?`,
		[]any{repo, string(last), scan}, func(r *sql.Rows, v *row) error {
			var at int64
			if err := r.Scan(&v.Digest, &v.MediaType, &v.Size, &at, &v.tagged); err != nil {
				return err
			}
			v.Pushed = fromMillis(at)
			return nil
		})
	if err != nil {
		return nil, "", fmt.Errorf("list manifests of %s: %w", repo, err)
	}
	out := []store.ManifestInfo{}
	var seen digest.Digest
	for _, v := range rows {
		seen = v.Digest
		if !v.tagged {
			out = append(out, v.ManifestInfo)
		}
	}
	if len(rows) < scan {
		seen = "" // the end
	}
	return out, seen, nil
}
