package sqlite

import (
	"context"
	"fmt"
	"strings"
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
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	q := `SELECT r.name,
		COALESCE((SELECT SUM(size) FROM blob_links b WHERE b.repo = r.name), 0),
		MAX(COALESCE((SELECT MAX(created_at) FROM manifests m WHERE m.repo = r.name), 0),
		    COALESCE((SELECT MAX(updated_at) FROM tags t WHERE t.repo = r.name), 0))
		FROM repositories r WHERE r.name IN (?` + strings.Repeat(", ?", len(names)-1) + `)`
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("describe repositories: %w", err)
	}
	defer rows.Close()
	found := map[string]store.RepositoryInfo{}
	for rows.Next() {
		var ri store.RepositoryInfo
		var last int64
		if err := rows.Scan(&ri.Name, &ri.Size, &last); err != nil {
			return nil, err
		}
		ri.LastPush = fromMillis(last)
		found[ri.Name] = ri
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]store.RepositoryInfo, 0, len(found))
	for _, n := range names {
		if ri, ok := found[n]; ok {
			out = append(out, ri)
		}
	}
	return out, nil
}

// TagInfos implements store.Listing.
func (s *Store) TagInfos(ctx context.Context, repo, last string, n int) ([]store.TagInfo, error) {
	var one int
	if err := s.r.QueryRowContext(ctx, `SELECT 1 FROM repositories WHERE name = ?`, repo).Scan(&one); err != nil {
		return nil, notFound(err, "repository "+repo)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT name, digest, updated_at FROM tags WHERE repo = ? AND name > ? ORDER BY name LIMIT ?`, repo, last, n)
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", repo, err)
	}
	defer rows.Close()
	out := []store.TagInfo{}
	for rows.Next() {
		var ti store.TagInfo
		var at int64
		if err := rows.Scan(&ti.Name, &ti.Digest, &at); err != nil {
			return nil, err
		}
		ti.Updated = fromMillis(at)
		out = append(out, ti)
	}
	return out, rows.Err()
}

// UntaggedManifests implements store.Listing.
func (s *Store) UntaggedManifests(ctx context.Context, repo string, last digest.Digest, scan int) ([]store.ManifestInfo, digest.Digest, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT m.digest, m.media_type, m.size, m.created_at,
		EXISTS (SELECT 1 FROM tags t WHERE t.repo = m.repo AND t.digest = m.digest)
		FROM manifests m WHERE m.repo = ? AND m.digest > ? ORDER BY m.digest LIMIT ?`, repo, string(last), scan)
	if err != nil {
		return nil, "", fmt.Errorf("list manifests of %s: %w", repo, err)
	}
	defer rows.Close()
	out := []store.ManifestInfo{}
	var seen digest.Digest
	n := 0
	for rows.Next() {
		n++
		var mi store.ManifestInfo
		var at int64
		var tagged bool
		if err := rows.Scan(&mi.Digest, &mi.MediaType, &mi.Size, &at, &tagged); err != nil {
			return nil, "", err
		}
		seen = mi.Digest
		if !tagged {
			mi.Pushed = fromMillis(at)
			out = append(out, mi)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	if n < scan {
		seen = "" // the end
	}
	return out, seen, nil
}
