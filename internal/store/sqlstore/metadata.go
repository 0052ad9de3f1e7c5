package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-mirror/ferry/internal/store"
)

// listChunk bounds the values bound in one statement, well under SQLite's
// 32766 variables and PostgreSQL's 65535 parameters.
const listChunk = 500

func ensureRepo(ctx context.Context, t tx, repo string) error {
	_, err := t.exec(ctx, `INSERT INTO repositories (name, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING`, repo, now())
	return err
}

// LinkBlob implements store.MetadataStore.
func (s *Store) LinkBlob(ctx context.Context, repo string, d digest.Digest, size int64) error {
	ts := now()
	err := s.inTx(ctx, func(t tx) error {
		if err := s.d.lockDigest(ctx, t.Tx, d); err != nil {
			return err
		}
		var claimed bool
		if err := t.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM blob_deletions WHERE digest = ? AND started_at > ?)`,
			string(d), ts-store.DeletionTimeout.Milliseconds()).Scan(&claimed); err != nil {
			return err
		}
		if claimed {
			return store.ErrDeleting
		}
		if err := ensureRepo(ctx, t, repo); err != nil {
			return err
		}
		_, err := t.exec(ctx, `INSERT INTO blob_links (repo, digest, size, linked_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (repo, digest) DO UPDATE SET linked_at = excluded.linked_at`, repo, string(d), size, ts)
		return err
	})
	if err != nil {
		return fmt.Errorf("link blob %s in %s: %w", d, repo, err)
	}
	return nil
}

// BlobLink implements store.MetadataStore.
func (s *Store) BlobLink(ctx context.Context, repo string, d digest.Digest) (int64, error) {
	var size int64
	if err := s.blobStmt.QueryRowContext(ctx, repo, string(d)).Scan(&size); err != nil {
		return 0, notFound(err, "blob "+string(d)+" in "+repo)
	}
	return size, nil
}

const anyBlobLinkQuery = `SELECT size FROM blob_links WHERE digest = ? LIMIT 1`

// AnyBlobLink implements store.MetadataStore.
func (s *Store) AnyBlobLink(ctx context.Context, d digest.Digest) (int64, error) {
	var size int64
	if err := s.queryRow(ctx, anyBlobLinkQuery, string(d)).Scan(&size); err != nil {
		return 0, notFound(err, "blob "+string(d))
	}
	return size, nil
}

// UnlinkBlob implements store.MetadataStore.
func (s *Store) UnlinkBlob(ctx context.Context, repo string, d digest.Digest) error {
	return s.execOne(ctx, fmt.Sprintf("unlink blob %s in %s", d, repo), store.ErrNotFound,
		`DELETE FROM blob_links WHERE repo = ? AND digest = ?`, repo, string(d))
}

// PutManifest implements store.MetadataStore.
func (s *Store) PutManifest(ctx context.Context, repo string, m *store.Manifest, tag string) error {
	var ann sql.NullString
	if len(m.Annotations) > 0 {
		b, _ := json.Marshal(m.Annotations) // a map of strings always marshals
		ann = nullString(string(b))
	}
	ts := now()
	err := s.inTx(ctx, func(t tx) error {
		if err := ensureRepo(ctx, t, repo); err != nil {
			return err
		}
		if err := s.renewLinks(ctx, t, repo, m.Blobs, ts); err != nil {
			return err
		}
		if _, err := t.exec(ctx, `INSERT INTO manifests
			(repo, digest, media_type, size, content, subject, artifact_type, annotations, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			repo, string(m.Digest), m.MediaType, len(m.Content), m.Content,
			nullString(string(m.Subject)), nullString(m.ArtifactType), ann, ts); err != nil {
			return err
		}
		if err := insertPairs(ctx, t, `INSERT INTO manifest_blobs (repo, manifest_digest, blob_digest)`, repo, m.Digest, m.Blobs); err != nil {
			return err
		}
		if err := insertPairs(ctx, t, `INSERT INTO manifest_children (repo, parent_digest, child_digest)`, repo, m.Digest, m.Children); err != nil {
			return err
		}
		if tag == "" {
			return nil
		}
		_, err := t.exec(ctx, `INSERT INTO tags (repo, name, digest, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (repo, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
			repo, tag, string(m.Digest), ts)
		return err
	})
	if err != nil {
		return fmt.Errorf("put manifest %s in %s: %w", m.Digest, repo, err)
	}
	return nil
}

// renewLinks sets the time of repo's links to blobs to ts, so a collector
// sweeping meanwhile keeps them; ErrNotFound if one is not linked.
func (s *Store) renewLinks(ctx context.Context, t tx, repo string, blobs []digest.Digest, ts int64) error {
	for _, part := range chunks(blobs) {
		cond, args := s.d.oneOf("digest", part)
		res, err := t.exec(ctx, `UPDATE blob_links SET linked_at = ? WHERE repo = ? AND `+cond, append([]any{ts, repo}, args...)...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n != int64(len(part)) {
			return fmt.Errorf("a blob of the manifest is not linked in %s: %w", repo, store.ErrNotFound)
		}
	}
	return nil
}

// insertPairs inserts (repo, parent, each of ds) rows with insert, a few
// hundred per statement, keeping rows already there.
func insertPairs(ctx context.Context, t tx, insert, repo string, parent digest.Digest, ds []digest.Digest) error {
	for _, part := range chunks(ds) {
		args := make([]any, 0, 3*len(part))
		for _, d := range part {
			args = append(args, repo, string(parent), d)
		}
		q := insert + ` VALUES (?, ?, ?)` + strings.Repeat(`, (?, ?, ?)`, len(part)-1) + ` ON CONFLICT DO NOTHING`
		if _, err := t.exec(ctx, q, args...); err != nil {
			return err
		}
	}
	return nil
}

// chunks splits ds, as strings and without repeats, into lists of at most
// listChunk.
func chunks(ds []digest.Digest) [][]string {
	var out [][]string
	seen := make(map[digest.Digest]bool, len(ds))
	for _, d := range ds {
		if seen[d] {
			continue
		}
		seen[d] = true
		if len(out) == 0 || len(out[len(out)-1]) == listChunk {
			out = append(out, make([]string, 0, min(len(ds), listChunk)))
		}
		out[len(out)-1] = append(out[len(out)-1], string(d))
	}
	return out
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// Manifest implements store.MetadataStore.
func (s *Store) Manifest(ctx context.Context, repo string, d digest.Digest) (*store.Manifest, error) {
	m := &store.Manifest{Digest: d}
	if err := s.manifestStmt.QueryRowContext(ctx, repo, string(d)).Scan(&m.MediaType, &m.Content); err != nil {
		return nil, notFound(err, "manifest "+string(d)+" in "+repo)
	}
	return m, nil
}

// TaggedManifest implements store.MetadataStore.
func (s *Store) TaggedManifest(ctx context.Context, repo, tag string) (*store.Manifest, error) {
	m := &store.Manifest{}
	if err := s.taggedStmt.QueryRowContext(ctx, repo, tag).Scan(&m.Digest, &m.MediaType, &m.Content); err != nil {
		return nil, notFound(err, "tag "+tag+" in "+repo)
	}
	return m, nil
}

// MissingManifests implements store.MetadataStore.
func (s *Store) MissingManifests(ctx context.Context, repo string, ds []digest.Digest) ([]digest.Digest, error) {
	return s.missing(ctx, "manifests", repo, ds)
}

// MissingBlobs implements store.MetadataStore.
func (s *Store) MissingBlobs(ctx context.Context, repo string, ds []digest.Digest) ([]digest.Digest, error) {
	return s.missing(ctx, "blob_links", repo, ds)
}

// missing returns, in their order, the digests of ds that are not in
// table's digest column for repo, with one query per few hundred digests.
func (s *Store) missing(ctx context.Context, table, repo string, ds []digest.Digest) ([]digest.Digest, error) {
	have := make(map[string]bool, len(ds))
	for _, part := range chunks(ds) {
		cond, args := s.d.oneOf("digest", part)
		present, err := s.strings(ctx, `SELECT digest FROM `+table+` WHERE repo = ? AND `+cond, append([]any{repo}, args...)...)
		if err != nil {
			return nil, fmt.Errorf("look up %s in %s: %w", table, repo, err)
		}
		for _, p := range present {
			have[p] = true
		}
	}
	var out []digest.Digest
	for _, d := range ds {
		if !have[string(d)] {
			out = append(out, d)
		}
	}
	return out, nil
}

// DeleteManifest implements store.MetadataStore.
func (s *Store) DeleteManifest(ctx context.Context, repo string, d digest.Digest) error {
	err := s.inTx(ctx, func(t tx) error {
		res, err := t.exec(ctx, `DELETE FROM manifests WHERE repo = ? AND digest = ?`, repo, string(d))
		if err != nil {
			return err
		}
		if err := affected(res, store.ErrNotFound); err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM tags WHERE repo = ? AND digest = ?`,
			`DELETE FROM manifest_blobs WHERE repo = ? AND manifest_digest = ?`,
			`DELETE FROM manifest_children WHERE repo = ? AND parent_digest = ?`,
		} {
			if _, err := t.exec(ctx, q, repo, string(d)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete manifest %s in %s: %w", d, repo, err)
	}
	return nil
}

// DeleteTag implements store.MetadataStore.
func (s *Store) DeleteTag(ctx context.Context, repo, tag string) error {
	return s.execOne(ctx, fmt.Sprintf("delete tag %s in %s", tag, repo), store.ErrNotFound, `DELETE FROM tags WHERE repo = ? AND name = ?`, repo, tag)
}

// tagsQuery and reposQuery list in byte order, which on PostgreSQL the
// indexes tags_name_bytes and repositories_name_bytes of migration 5 serve.
func tagsQuery(d dialect) string {
	c := d.byteOrder()
	return `SELECT name FROM tags WHERE repo = ? AND name` + c + ` > ? ORDER BY name` + c + ` LIMIT ?`
}

func reposQuery(d dialect) string {
	c := d.byteOrder()
	return `SELECT name FROM repositories WHERE name` + c + ` > ? ORDER BY name` + c + ` LIMIT ?`
}

// Tags implements store.MetadataStore.
func (s *Store) Tags(ctx context.Context, repo, last string, n int) ([]string, error) {
	var one int
	if err := s.queryRow(ctx, `SELECT 1 FROM repositories WHERE name = ?`, repo).Scan(&one); err != nil {
		return nil, notFound(err, "repository "+repo)
	}
	out, err := s.strings(ctx, tagsQuery(s.d), repo, last, n)
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", repo, err)
	}
	return out, nil
}

// Repositories implements store.MetadataStore.
func (s *Store) Repositories(ctx context.Context, last string, n int) ([]string, error) {
	out, err := s.strings(ctx, reposQuery(s.d), last, n)
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	return out, nil
}

// Referrers implements store.MetadataStore.
func (s *Store) Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]ocispec.Descriptor, error) {
	q := `SELECT digest, media_type, size, artifact_type, annotations FROM manifests WHERE repo = ? AND subject = ?`
	args := []any{repo, string(d)}
	if artifactType != "" {
		q += ` AND artifact_type = ?`
		args = append(args, artifactType)
	}
	// Sorted in Go, not with ORDER BY digest: with it SQLite walks the
	// repository's whole primary key (180 ms at 50,000 manifests) rather
	// than the subject index.
	out, err := collect(ctx, s, q, args, func(r *sql.Rows, desc *ocispec.Descriptor) error {
		var at, ann sql.NullString
		if err := r.Scan(&desc.Digest, &desc.MediaType, &desc.Size, &at, &ann); err != nil {
			return err
		}
		desc.ArtifactType = at.String
		if !ann.Valid {
			return nil
		}
		return json.Unmarshal([]byte(ann.String), &desc.Annotations)
	})
	if err != nil {
		return nil, fmt.Errorf("referrers of %s in %s: %w", d, repo, err)
	}
	slices.SortFunc(out, func(a, b ocispec.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return out, nil
}

// CreateUpload implements store.MetadataStore.
func (s *Store) CreateUpload(ctx context.Context, u *store.Upload) error {
	ts := now()
	_, err := s.exec(ctx, `INSERT INTO uploads (id, repo, "offset", algorithm, hash_state, started_at, updated_at, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Repo, u.Offset, string(u.Algorithm), u.HashState, ts, ts, u.Owner)
	if err != nil {
		return fmt.Errorf("create upload %s: %w", u.ID, err)
	}
	return nil
}

// Upload implements store.MetadataStore.
func (s *Store) Upload(ctx context.Context, id string) (*store.Upload, error) {
	u := &store.Upload{ID: id}
	var started int64
	err := s.queryRow(ctx, `SELECT repo, "offset", algorithm, hash_state, started_at, owner FROM uploads WHERE id = ?`, id).
		Scan(&u.Repo, &u.Offset, &u.Algorithm, &u.HashState, &started, &u.Owner)
	if err != nil {
		return nil, notFound(err, "upload "+id)
	}
	u.StartedAt = time.UnixMilli(started)
	return u, nil
}

// AdvanceUpload implements store.MetadataStore: the offset moves only if
// it is still from, so of two replicas writing the same session at once
// exactly one wins and the other gets ErrConflict.
func (s *Store) AdvanceUpload(ctx context.Context, u *store.Upload, from int64) error {
	err := s.execOne(ctx, "advance upload "+u.ID, store.ErrConflict,
		`UPDATE uploads SET "offset" = ?, algorithm = ?, hash_state = ?, updated_at = ? WHERE id = ? AND "offset" = ?`,
		u.Offset, string(u.Algorithm), u.HashState, now(), u.ID, from)
	if errors.Is(err, store.ErrConflict) {
		if _, err := s.Upload(ctx, u.ID); err != nil {
			return err
		}
		return fmt.Errorf("upload %s moved past offset %d: %w", u.ID, from, store.ErrConflict)
	}
	return err
}

// DeleteUpload implements store.MetadataStore.
func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	if _, err := s.exec(ctx, `DELETE FROM uploads WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete upload %s: %w", id, err)
	}
	return nil
}

// OpenUploads implements store.MetadataStore.
func (s *Store) OpenUploads(ctx context.Context, owner string) (int, error) {
	var n int
	if err := s.queryRow(ctx, `SELECT count(*) FROM uploads WHERE owner = ?`, owner).Scan(&n); err != nil {
		return 0, fmt.Errorf("count uploads of %s: %w", owner, err)
	}
	return n, nil
}

const staleUploadsQuery = `SELECT id FROM uploads WHERE updated_at < ? ORDER BY updated_at LIMIT ?`

// StaleUploads implements store.MetadataStore.
func (s *Store) StaleUploads(ctx context.Context, before time.Time, n int) ([]string, error) {
	ids, err := s.strings(ctx, staleUploadsQuery, before.UnixMilli(), n)
	if err != nil {
		return nil, fmt.Errorf("stale uploads: %w", err)
	}
	return ids, nil
}

// BlobNeeded reports whether blob d would survive a collection with the
// given cutoff: a repository links it and either a manifest of that
// repository references it or the link is younger than before. It
// changes nothing, for gc --dry-run.
func (s *Store) BlobNeeded(ctx context.Context, d digest.Digest, before time.Time) (bool, error) {
	var needed bool
	err := s.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM blob_links bl WHERE bl.digest = ? AND (bl.linked_at >= ? OR EXISTS
		(SELECT 1 FROM manifest_blobs mb WHERE mb.repo = bl.repo AND mb.blob_digest = bl.digest)))`, string(d), before.UnixMilli()).Scan(&needed)
	if err != nil {
		return false, fmt.Errorf("check blob %s: %w", d, err)
	}
	return needed, nil
}

// sweepBatch is how many blob links one statement of SweepLinks examines:
// each is its own short write, so pushes (and, on SQLite, every other
// writer) wait for one batch at most, never for a sweep of millions.
const sweepBatch = 1000

// sweepQuery removes the unreferenced links older than the cutoff among
// those after a key and, unless last, up to another. The candidates are
// picked by a walk of the primary key that a LIMIT (twice the batch, room
// for links made meanwhile) makes every planner take: without it,
// PostgreSQL's generic plan went by linked_at, which a collection with
// little grace matches in full, and read every link for every batch. The
// manifest_blobs check is one lookup in manifest_blobs_repo_blob.
func sweepQuery(last bool) string {
	q := `DELETE FROM blob_links WHERE (repo, digest) IN
		(SELECT repo, digest FROM blob_links WHERE (repo, digest) > (?, ?)`
	if !last {
		q += ` AND (repo, digest) <= (?, ?)`
	}
	return q + ` ORDER BY repo, digest LIMIT ` + strconv.Itoa(2*sweepBatch) + `)
		AND linked_at < ? AND NOT EXISTS
		(SELECT 1 FROM manifest_blobs mb WHERE mb.repo = blob_links.repo AND mb.blob_digest = blob_links.digest)`
}

// sweepBoundQuery finds the key that ends the batch after a key.
const sweepBoundQuery = `SELECT repo, digest FROM blob_links WHERE (repo, digest) > (?, ?)
	ORDER BY repo, digest LIMIT 1 OFFSET ?`

// SweepLinks implements store.MetadataStore. It walks the links in key
// order, sweepBatch at a time.
func (s *Store) SweepLinks(ctx context.Context, before time.Time) (int, error) {
	// Claims left by collectors that died.
	if _, err := s.exec(ctx, `DELETE FROM blob_deletions WHERE started_at < ?`, now()-store.DeletionTimeout.Milliseconds()); err != nil {
		return 0, fmt.Errorf("sweep blob links: %w", err)
	}
	var (
		total   int
		repo, d string // the last key swept; "" sorts before any
		cutoff  = before.UnixMilli()
	)
	for {
		var hiRepo, hiDigest string
		err := s.queryRow(ctx, sweepBoundQuery, repo, d, sweepBatch-1).Scan(&hiRepo, &hiDigest)
		last := errors.Is(err, sql.ErrNoRows)
		if err != nil && !last {
			return total, fmt.Errorf("sweep blob links: %w", err)
		}
		args := []any{repo, d}
		if !last {
			args = append(args, hiRepo, hiDigest)
		}
		res, err := s.exec(ctx, sweepQuery(last), append(args, cutoff)...)
		if err != nil {
			return total, fmt.Errorf("sweep blob links after %s@%s: %w", repo, d, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("sweep blob links: %w", err)
		}
		total += int(n)
		if last {
			return total, nil
		}
		repo, d = hiRepo, hiDigest
	}
}

// ClaimDeletion implements store.MetadataStore.
func (s *Store) ClaimDeletion(ctx context.Context, d digest.Digest) (bool, error) {
	claimed := false
	err := s.inTx(ctx, func(t tx) error {
		claimed = false // a retried transaction starts over
		if err := s.d.lockDigest(ctx, t.Tx, d); err != nil {
			return err
		}
		// Linked, or claimed by another collector: not ours to delete.
		var busy bool
		if err := t.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM blob_links WHERE digest = ?)
			OR EXISTS (SELECT 1 FROM blob_deletions WHERE digest = ? AND started_at > ?)`,
			string(d), string(d), now()-store.DeletionTimeout.Milliseconds()).Scan(&busy); err != nil {
			return err
		}
		if busy {
			return nil
		}
		_, err := t.exec(ctx, `INSERT INTO blob_deletions (digest, started_at) VALUES (?, ?)
			ON CONFLICT (digest) DO UPDATE SET started_at = excluded.started_at`, string(d), now())
		claimed = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("claim blob %s for deletion: %w", d, err)
	}
	return claimed, nil
}

// ReleaseDeletion implements store.MetadataStore.
func (s *Store) ReleaseDeletion(ctx context.Context, d digest.Digest) error {
	if _, err := s.exec(ctx, `DELETE FROM blob_deletions WHERE digest = ?`, string(d)); err != nil {
		return fmt.Errorf("release blob %s: %w", d, err)
	}
	return nil
}
