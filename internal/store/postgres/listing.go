package postgres

import (
	"context"
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
	rows, err := s.pool.Query(ctx, `SELECT r.name,
		COALESCE((SELECT SUM(size) FROM blob_links b WHERE b.repo = r.name), 0)::BIGINT,
		GREATEST(COALESCE((SELECT MAX(created_at) FROM manifests m WHERE m.repo = r.name), 0),
		         COALESCE((SELECT MAX(updated_at) FROM tags t WHERE t.repo = r.name), 0))::BIGINT
		FROM repositories r WHERE r.name = ANY($1)`, names)
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
		return nil, fmt.Errorf("describe repositories: %w", err)
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
	if err := s.pool.QueryRow(ctx, `SELECT 1 FROM repositories WHERE name = $1`, repo).Scan(&one); err != nil {
		return nil, notFound(err, "repository "+repo)
	}
	rows, err := s.pool.Query(ctx, `SELECT name, digest, updated_at FROM tags WHERE repo = $1 AND name COLLATE "C" > $2 ORDER BY name COLLATE "C" LIMIT $3`, repo, last, n)
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", repo, err)
	}
	defer rows.Close()
	out := []store.TagInfo{}
	for rows.Next() {
		var ti store.TagInfo
		var d string
		var at int64
		if err := rows.Scan(&ti.Name, &d, &at); err != nil {
			return nil, err
		}
		ti.Digest, ti.Updated = digest.Digest(d), fromMillis(at)
		out = append(out, ti)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", repo, err)
	}
	return out, nil
}

// UntaggedManifests implements store.Listing.
func (s *Store) UntaggedManifests(ctx context.Context, repo string, last digest.Digest, scan int) ([]store.ManifestInfo, digest.Digest, error) {
	rows, err := s.pool.Query(ctx, `SELECT m.digest, m.media_type, m.size, m.created_at,
		EXISTS (SELECT 1 FROM tags t WHERE t.repo = m.repo AND t.digest = m.digest)
		FROM manifests m WHERE m.repo = $1 AND m.digest COLLATE "C" > $2 ORDER BY m.digest COLLATE "C" LIMIT $3`, repo, string(last), scan)
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
		var d string
		var at int64
		var tagged bool
		if err := rows.Scan(&d, &mi.MediaType, &mi.Size, &at, &tagged); err != nil {
			return nil, "", err
		}
		seen = digest.Digest(d)
		if !tagged {
			mi.Digest, mi.Pushed = seen, fromMillis(at)
			out = append(out, mi)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list manifests of %s: %w", repo, err)
	}
	if n < scan {
		seen = "" // the end
	}
	return out, seen, nil
}
