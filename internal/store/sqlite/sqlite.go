// Package sqlite is the embedded MetadataStore: one SQLite database in WAL
// mode (modernc.org/sqlite, no cgo), schema applied from embedded
// migrations on open.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/ferry-mirror/ferry/internal/store"
)

// Store is a MetadataStore in one SQLite file. Writes go through a single
// connection (SQLite has one writer anyway; this avoids busy retries) and
// reads through a pool, which WAL lets run beside the writer.
type Store struct {
	w, r *sql.DB

	taggedStmt   *sql.Stmt
	manifestStmt *sql.Stmt
	blobStmt     *sql.Stmt
}

func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	// NORMAL in WAL mode survives a process crash; only a power loss can
	// drop the last transactions, never corrupt the database.
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	if readOnly {
		q.Add("_pragma", "query_only(ON)")
	} else {
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

// Open opens (creating and migrating if needed) the database at path.
func Open(ctx context.Context, path string) (*Store, error) {
	w, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	n := 2 * runtime.GOMAXPROCS(0)
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	s := &Store{w: w, r: r}
	prep := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = r.PrepareContext(ctx, q)
		return st
	}
	s.taggedStmt = prep(`SELECT m.digest, m.media_type, m.content FROM tags t
		JOIN manifests m ON m.repo = t.repo AND m.digest = t.digest
		WHERE t.repo = ? AND t.name = ?`)
	s.manifestStmt = prep(`SELECT media_type, content FROM manifests WHERE repo = ? AND digest = ?`)
	s.blobStmt = prep(`SELECT size FROM blob_links WHERE repo = ? AND digest = ?`)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open %s: prepare: %w", path, err)
	}
	return s, nil
}

// Close implements store.MetadataStore.
func (s *Store) Close() error {
	for _, st := range []*sql.Stmt{s.taggedStmt, s.manifestStmt, s.blobStmt} {
		if st != nil {
			st.Close()
		}
	}
	return errors.Join(s.r.Close(), s.w.Close())
}

// Ping implements store.MetadataStore.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

func now() int64 { return time.Now().UnixMilli() }

func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func ensureRepo(ctx context.Context, tx *sql.Tx, repo string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO repositories (name, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING`, repo, now())
	return err
}

func (s *Store) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// LinkBlob implements store.MetadataStore.
func (s *Store) LinkBlob(ctx context.Context, repo string, d digest.Digest, size int64) error {
	ts := now()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var claimed int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM blob_deletions WHERE digest = ? AND started_at > ?`,
			string(d), ts-store.DeletionTimeout.Milliseconds()).Scan(&claimed); err != nil {
			return err
		}
		if claimed > 0 {
			return store.ErrDeleting
		}
		if err := ensureRepo(ctx, tx, repo); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO blob_links (repo, digest, size, linked_at) VALUES (?, ?, ?, ?)
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

// AnyBlobLink implements store.MetadataStore.
func (s *Store) AnyBlobLink(ctx context.Context, d digest.Digest) (int64, error) {
	var size int64
	if err := s.r.QueryRowContext(ctx, `SELECT size FROM blob_links WHERE digest = ? LIMIT 1`, string(d)).Scan(&size); err != nil {
		return 0, notFound(err, "blob "+string(d))
	}
	return size, nil
}

// UnlinkBlob implements store.MetadataStore.
func (s *Store) UnlinkBlob(ctx context.Context, repo string, d digest.Digest) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM blob_links WHERE repo = ? AND digest = ?`, repo, string(d))
	if err != nil {
		return fmt.Errorf("unlink blob %s in %s: %w", d, repo, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("blob %s in %s: %w", d, repo, store.ErrNotFound)
	}
	return nil
}

// PutManifest implements store.MetadataStore.
func (s *Store) PutManifest(ctx context.Context, repo string, m *store.Manifest, tag string) error {
	var ann sql.NullString
	if len(m.Annotations) > 0 {
		b, err := json.Marshal(m.Annotations)
		if err != nil {
			return err
		}
		ann = sql.NullString{String: string(b), Valid: true}
	}
	ts := now()
	blobs := distinct(m.Blobs)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := ensureRepo(ctx, tx, repo); err != nil {
			return err
		}
		if len(blobs) > 0 {
			args := []any{ts, repo}
			for _, b := range blobs {
				args = append(args, string(b))
			}
			res, err := tx.ExecContext(ctx, `UPDATE blob_links SET linked_at = ? WHERE repo = ? AND digest IN (?`+strings.Repeat(", ?", len(blobs)-1)+`)`, args...)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n != int64(len(blobs)) {
				return fmt.Errorf("a blob of the manifest is not linked in %s: %w", repo, store.ErrNotFound)
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO manifests
			(repo, digest, media_type, size, content, subject, artifact_type, annotations, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			repo, string(m.Digest), m.MediaType, len(m.Content), m.Content,
			nullString(string(m.Subject)), nullString(m.ArtifactType), ann, ts)
		if err != nil {
			return err
		}
		for _, b := range m.Blobs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO manifest_blobs (repo, manifest_digest, blob_digest) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
				repo, string(m.Digest), string(b)); err != nil {
				return err
			}
		}
		for _, c := range m.Children {
			if _, err := tx.ExecContext(ctx, `INSERT INTO manifest_children (repo, parent_digest, child_digest) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
				repo, string(m.Digest), string(c)); err != nil {
				return err
			}
		}
		if tag != "" {
			_, err := tx.ExecContext(ctx, `INSERT INTO tags (repo, name, digest, updated_at) VALUES (?, ?, ?, ?)
				ON CONFLICT (repo, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
				repo, tag, string(m.Digest), ts)
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put manifest %s in %s: %w", m.Digest, repo, err)
	}
	return nil
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
	var d string
	if err := s.taggedStmt.QueryRowContext(ctx, repo, tag).Scan(&d, &m.MediaType, &m.Content); err != nil {
		return nil, notFound(err, "tag "+tag+" in "+repo)
	}
	m.Digest = digest.Digest(d)
	return m, nil
}

func (s *Store) missing(ctx context.Context, q, repo string, ds []digest.Digest) ([]digest.Digest, error) {
	var out []digest.Digest
	for _, d := range ds {
		var one int
		err := s.r.QueryRowContext(ctx, q, repo, string(d)).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			out = append(out, d)
		case err != nil:
			return nil, err
		}
	}
	return out, nil
}

// MissingManifests implements store.MetadataStore.
func (s *Store) MissingManifests(ctx context.Context, repo string, ds []digest.Digest) ([]digest.Digest, error) {
	return s.missing(ctx, `SELECT 1 FROM manifests WHERE repo = ? AND digest = ?`, repo, ds)
}

// MissingBlobs implements store.MetadataStore.
func (s *Store) MissingBlobs(ctx context.Context, repo string, ds []digest.Digest) ([]digest.Digest, error) {
	return s.missing(ctx, `SELECT 1 FROM blob_links WHERE repo = ? AND digest = ?`, repo, ds)
}

// DeleteManifest implements store.MetadataStore.
func (s *Store) DeleteManifest(ctx context.Context, repo string, d digest.Digest) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM manifests WHERE repo = ? AND digest = ?`, repo, string(d))
		if err != nil {
			return fmt.Errorf("delete manifest %s in %s: %w", d, repo, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("manifest %s in %s: %w", d, repo, store.ErrNotFound)
		}
		for _, q := range []string{
			`DELETE FROM tags WHERE repo = ? AND digest = ?`,
			`DELETE FROM manifest_blobs WHERE repo = ? AND manifest_digest = ?`,
			`DELETE FROM manifest_children WHERE repo = ? AND parent_digest = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, repo, string(d)); err != nil {
				return fmt.Errorf("delete manifest %s in %s: %w", d, repo, err)
			}
		}
		return nil
	})
}

// DeleteTag implements store.MetadataStore.
func (s *Store) DeleteTag(ctx context.Context, repo, tag string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM tags WHERE repo = ? AND name = ?`, repo, tag)
	if err != nil {
		return fmt.Errorf("delete tag %s in %s: %w", tag, repo, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("tag %s in %s: %w", tag, repo, store.ErrNotFound)
	}
	return nil
}

func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Tags implements store.MetadataStore.
func (s *Store) Tags(ctx context.Context, repo, last string, n int) ([]string, error) {
	var one int
	if err := s.r.QueryRowContext(ctx, `SELECT 1 FROM repositories WHERE name = ?`, repo).Scan(&one); err != nil {
		return nil, notFound(err, "repository "+repo)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT name FROM tags WHERE repo = ? AND name > ? ORDER BY name LIMIT ?`, repo, last, n)
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", repo, err)
	}
	return scanStrings(rows)
}

// Repositories implements store.MetadataStore.
func (s *Store) Repositories(ctx context.Context, last string, n int) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name FROM repositories WHERE name > ? ORDER BY name LIMIT ?`, last, n)
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	return scanStrings(rows)
}

// Referrers implements store.MetadataStore.
func (s *Store) Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]store.Descriptor, error) {
	q := `SELECT digest, media_type, size, artifact_type, annotations FROM manifests WHERE repo = ? AND subject = ?`
	args := []any{repo, string(d)}
	if artifactType != "" {
		q += ` AND artifact_type = ?`
		args = append(args, artifactType)
	}
	// Sorted here, not with ORDER BY digest: with it SQLite walks the
	// repository's whole primary key (180 ms at 50,000 manifests) rather
	// than the subject index.
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("referrers of %s in %s: %w", d, repo, err)
	}
	defer rows.Close()
	out := []store.Descriptor{}
	for rows.Next() {
		var desc store.Descriptor
		var at, ann sql.NullString
		if err := rows.Scan(&desc.Digest, &desc.MediaType, &desc.Size, &at, &ann); err != nil {
			return nil, err
		}
		desc.ArtifactType = at.String
		if ann.Valid {
			if err := json.Unmarshal([]byte(ann.String), &desc.Annotations); err != nil {
				return nil, fmt.Errorf("annotations of %s: %w", desc.Digest, err)
			}
		}
		out = append(out, desc)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b store.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return out, nil
}

// CreateUpload implements store.MetadataStore.
func (s *Store) CreateUpload(ctx context.Context, u *store.Upload) error {
	ts := now()
	_, err := s.w.ExecContext(ctx, `INSERT INTO uploads (id, repo, "offset", algorithm, hash_state, started_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Repo, u.Offset, string(u.Algorithm), u.HashState, ts, ts)
	if err != nil {
		return fmt.Errorf("create upload %s: %w", u.ID, err)
	}
	return nil
}

// Upload implements store.MetadataStore.
func (s *Store) Upload(ctx context.Context, id string) (*store.Upload, error) {
	u := &store.Upload{ID: id}
	var alg string
	var started int64
	err := s.r.QueryRowContext(ctx, `SELECT repo, "offset", algorithm, hash_state, started_at FROM uploads WHERE id = ?`, id).
		Scan(&u.Repo, &u.Offset, &alg, &u.HashState, &started)
	if err != nil {
		return nil, notFound(err, "upload "+id)
	}
	u.Algorithm = digest.Algorithm(alg)
	u.StartedAt = time.UnixMilli(started)
	return u, nil
}

// AdvanceUpload implements store.MetadataStore.
func (s *Store) AdvanceUpload(ctx context.Context, u *store.Upload, from int64) error {
	res, err := s.w.ExecContext(ctx, `UPDATE uploads SET "offset" = ?, algorithm = ?, hash_state = ?, updated_at = ? WHERE id = ? AND "offset" = ?`,
		u.Offset, string(u.Algorithm), u.HashState, now(), u.ID, from)
	if err != nil {
		return fmt.Errorf("advance upload %s: %w", u.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.Upload(ctx, u.ID); err != nil {
			return err
		}
		return fmt.Errorf("upload %s moved past offset %d: %w", u.ID, from, store.ErrConflict)
	}
	return nil
}

// DeleteUpload implements store.MetadataStore.
func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM uploads WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete upload %s: %w", id, err)
	}
	return nil
}

// StaleUploads implements store.MetadataStore.
func (s *Store) StaleUploads(ctx context.Context, before time.Time, n int) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM uploads WHERE updated_at < ? ORDER BY updated_at LIMIT ?`, before.UnixMilli(), n)
	if err != nil {
		return nil, fmt.Errorf("stale uploads: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("stale uploads: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("stale uploads: %w", err)
	}
	return ids, nil
}

func distinct(ds []digest.Digest) []digest.Digest {
	seen := make(map[digest.Digest]bool, len(ds))
	out := ds[:0:0]
	for _, d := range ds {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// SweepLinks implements store.MetadataStore.
func (s *Store) SweepLinks(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM blob_links WHERE linked_at < ? AND NOT EXISTS
			(SELECT 1 FROM manifest_blobs mb WHERE mb.repo = blob_links.repo AND mb.blob_digest = blob_links.digest)`, before.UnixMilli())
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		_, err = tx.ExecContext(ctx, `DELETE FROM blob_deletions WHERE started_at < ?`, now()-store.DeletionTimeout.Milliseconds())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sweep blob links: %w", err)
	}
	return int(n), nil
}

// ClaimDeletion implements store.MetadataStore. SQLite runs one writer at
// a time, so the check and the claim cannot interleave with LinkBlob.
func (s *Store) ClaimDeletion(ctx context.Context, d digest.Digest) (bool, error) {
	claimed := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		claimed = false // a retried transaction starts over
		// Linked, or claimed by another collector: not ours to delete.
		var busy int
		if err := tx.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM blob_links WHERE digest = ?)
			+ (SELECT COUNT(*) FROM blob_deletions WHERE digest = ? AND started_at > ?)`,
			string(d), string(d), now()-store.DeletionTimeout.Milliseconds()).Scan(&busy); err != nil {
			return err
		}
		if busy > 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO blob_deletions (digest, started_at) VALUES (?, ?)
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
	if _, err := s.w.ExecContext(ctx, `DELETE FROM blob_deletions WHERE digest = ?`, string(d)); err != nil {
		return fmt.Errorf("release blob %s: %w", d, err)
	}
	return nil
}
