// Package postgres is the MetadataStore for highly available deployments:
// one PostgreSQL database shared by every replica (pgx connection pool),
// the same schema as the embedded SQLite store, migrated on start.
//
// Safety across processes comes from the database, never from process
// memory: writes are transactions, idempotent inserts are ON CONFLICT
// upserts, and an upload's offset moves only by a conditional UPDATE.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/store"
)

// Store is a MetadataStore in a PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects to the database at dsn (postgres://user:pass@host:port/db?...)
// and applies pending migrations.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse %s: %w", redact(dsn), err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres %s: %w", redact(dsn), err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres %s: %w", redact(dsn), err)
	}
	return &Store{pool: pool}, nil
}

// redact hides the password of a connection URL for messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Close implements store.MetadataStore.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping implements store.MetadataStore.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

func now() int64 { return time.Now().UnixMilli() }

func notFound(err error, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// retryable reports errors after which the whole transaction may simply
// run again: a deadlock or serialization failure between replicas.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

func (s *Store) inTx(ctx context.Context, f func(tx pgx.Tx) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = pgx.BeginFunc(ctx, s.pool, f)
		if !retryable(err) {
			return err
		}
	}
	return err
}

func ensureRepo(ctx context.Context, tx pgx.Tx, repo string) error {
	_, err := tx.Exec(ctx, `INSERT INTO repositories (name, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING`, repo, now())
	return err
}

// lockDigest serializes, per digest, LinkBlob against ClaimDeletion: each
// checks what the other writes, which READ COMMITTED alone would let both
// pass at once.
func lockDigest(ctx context.Context, tx pgx.Tx, d digest.Digest) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, string(d))
	return err
}

// LinkBlob implements store.MetadataStore.
func (s *Store) LinkBlob(ctx context.Context, repo string, d digest.Digest, size int64) error {
	ts := now()
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockDigest(ctx, tx, d); err != nil {
			return err
		}
		var claimed bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM blob_deletions WHERE digest = $1 AND started_at > $2)`,
			string(d), ts-store.DeletionTimeout.Milliseconds()).Scan(&claimed); err != nil {
			return err
		}
		if claimed {
			return store.ErrDeleting
		}
		if err := ensureRepo(ctx, tx, repo); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO blob_links (repo, digest, size, linked_at) VALUES ($1, $2, $3, $4)
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
	if err := s.pool.QueryRow(ctx, `SELECT size FROM blob_links WHERE repo = $1 AND digest = $2`, repo, string(d)).Scan(&size); err != nil {
		return 0, notFound(err, "blob "+string(d)+" in "+repo)
	}
	return size, nil
}

// AnyBlobLink implements store.MetadataStore.
func (s *Store) AnyBlobLink(ctx context.Context, d digest.Digest) (int64, error) {
	var size int64
	if err := s.pool.QueryRow(ctx, `SELECT size FROM blob_links WHERE digest = $1 LIMIT 1`, string(d)).Scan(&size); err != nil {
		return 0, notFound(err, "blob "+string(d))
	}
	return size, nil
}

// UnlinkBlob implements store.MetadataStore.
func (s *Store) UnlinkBlob(ctx context.Context, repo string, d digest.Digest) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM blob_links WHERE repo = $1 AND digest = $2`, repo, string(d))
	if err != nil {
		return fmt.Errorf("unlink blob %s in %s: %w", d, repo, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("blob %s in %s: %w", d, repo, store.ErrNotFound)
	}
	return nil
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// PutManifest implements store.MetadataStore.
func (s *Store) PutManifest(ctx context.Context, repo string, m *store.Manifest, tag string) error {
	var ann *string
	if len(m.Annotations) > 0 {
		b, err := json.Marshal(m.Annotations)
		if err != nil {
			return err
		}
		ann = nullString(string(b))
	}
	ts := now()
	blobs := make([]string, 0, len(m.Blobs))
	seen := map[digest.Digest]bool{}
	for _, b := range m.Blobs {
		if !seen[b] {
			seen[b] = true
			blobs = append(blobs, string(b))
		}
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := ensureRepo(ctx, tx, repo); err != nil {
			return err
		}
		if len(blobs) > 0 {
			tag, err := tx.Exec(ctx, `UPDATE blob_links SET linked_at = $1 WHERE repo = $2 AND digest = ANY($3)`, ts, repo, blobs)
			if err != nil {
				return err
			}
			if tag.RowsAffected() != int64(len(blobs)) {
				return fmt.Errorf("a blob of the manifest is not linked in %s: %w", repo, store.ErrNotFound)
			}
		}
		// One round trip for every other statement of the push.
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO manifests
			(repo, digest, media_type, size, content, subject, artifact_type, annotations, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`,
			repo, string(m.Digest), m.MediaType, len(m.Content), m.Content,
			nullString(string(m.Subject)), nullString(m.ArtifactType), ann, ts)
		for _, bl := range m.Blobs {
			b.Queue(`INSERT INTO manifest_blobs (repo, manifest_digest, blob_digest) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
				repo, string(m.Digest), string(bl))
		}
		for _, c := range m.Children {
			b.Queue(`INSERT INTO manifest_children (repo, parent_digest, child_digest) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
				repo, string(m.Digest), string(c))
		}
		if tag != "" {
			b.Queue(`INSERT INTO tags (repo, name, digest, updated_at) VALUES ($1, $2, $3, $4)
				ON CONFLICT (repo, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
				repo, tag, string(m.Digest), ts)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("put manifest %s in %s: %w", m.Digest, repo, err)
	}
	return nil
}

// Manifest implements store.MetadataStore.
func (s *Store) Manifest(ctx context.Context, repo string, d digest.Digest) (*store.Manifest, error) {
	m := &store.Manifest{Digest: d}
	err := s.pool.QueryRow(ctx, `SELECT media_type, content FROM manifests WHERE repo = $1 AND digest = $2`, repo, string(d)).
		Scan(&m.MediaType, &m.Content)
	if err != nil {
		return nil, notFound(err, "manifest "+string(d)+" in "+repo)
	}
	return m, nil
}

// TaggedManifest implements store.MetadataStore.
func (s *Store) TaggedManifest(ctx context.Context, repo, tag string) (*store.Manifest, error) {
	m := &store.Manifest{}
	var d string
	err := s.pool.QueryRow(ctx, `SELECT m.digest, m.media_type, m.content FROM tags t
		JOIN manifests m ON m.repo = t.repo AND m.digest = t.digest
		WHERE t.repo = $1 AND t.name = $2`, repo, tag).Scan(&d, &m.MediaType, &m.Content)
	if err != nil {
		return nil, notFound(err, "tag "+tag+" in "+repo)
	}
	m.Digest = digest.Digest(d)
	return m, nil
}

// missing returns, in their order, the digests of ds that query q (which
// selects the present ones among $2) does not return.
func (s *Store) missing(ctx context.Context, q, repo string, ds []digest.Digest) ([]digest.Digest, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	strs := make([]string, len(ds))
	for i, d := range ds {
		strs[i] = string(d)
	}
	rows, err := s.pool.Query(ctx, q, repo, strs)
	if err != nil {
		return nil, err
	}
	present, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	have := make(map[string]bool, len(present))
	for _, p := range present {
		have[p] = true
	}
	var out []digest.Digest
	for _, d := range ds {
		if !have[string(d)] {
			out = append(out, d)
		}
	}
	return out, nil
}

// MissingManifests implements store.MetadataStore.
func (s *Store) MissingManifests(ctx context.Context, repo string, ds []digest.Digest) ([]digest.Digest, error) {
	out, err := s.missing(ctx, `SELECT digest FROM manifests WHERE repo = $1 AND digest = ANY($2)`, repo, ds)
	if err != nil {
		return nil, fmt.Errorf("look up manifests in %s: %w", repo, err)
	}
	return out, nil
}

// MissingBlobs implements store.MetadataStore.
func (s *Store) MissingBlobs(ctx context.Context, repo string, ds []digest.Digest) ([]digest.Digest, error) {
	out, err := s.missing(ctx, `SELECT digest FROM blob_links WHERE repo = $1 AND digest = ANY($2)`, repo, ds)
	if err != nil {
		return nil, fmt.Errorf("look up blobs in %s: %w", repo, err)
	}
	return out, nil
}

// DeleteManifest implements store.MetadataStore.
func (s *Store) DeleteManifest(ctx context.Context, repo string, d digest.Digest) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		res, err := tx.Exec(ctx, `DELETE FROM manifests WHERE repo = $1 AND digest = $2`, repo, string(d))
		if err != nil {
			return fmt.Errorf("delete manifest %s in %s: %w", d, repo, err)
		}
		if res.RowsAffected() == 0 {
			return fmt.Errorf("manifest %s in %s: %w", d, repo, store.ErrNotFound)
		}
		for _, q := range []string{
			`DELETE FROM tags WHERE repo = $1 AND digest = $2`,
			`DELETE FROM manifest_blobs WHERE repo = $1 AND manifest_digest = $2`,
			`DELETE FROM manifest_children WHERE repo = $1 AND parent_digest = $2`,
		} {
			if _, err := tx.Exec(ctx, q, repo, string(d)); err != nil {
				return fmt.Errorf("delete manifest %s in %s: %w", d, repo, err)
			}
		}
		return nil
	})
}

// DeleteTag implements store.MetadataStore.
func (s *Store) DeleteTag(ctx context.Context, repo, tag string) error {
	res, err := s.pool.Exec(ctx, `DELETE FROM tags WHERE repo = $1 AND name = $2`, repo, tag)
	if err != nil {
		return fmt.Errorf("delete tag %s in %s: %w", tag, repo, err)
	}
	if res.RowsAffected() == 0 {
		return fmt.Errorf("tag %s in %s: %w", tag, repo, store.ErrNotFound)
	}
	return nil
}

func (s *Store) strings(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if out == nil {
		out = []string{}
	}
	return out, err
}

// Tags implements store.MetadataStore. Names compare byte-wise (COLLATE
// "C"), the lexical order the spec and the SQLite store use.
func (s *Store) Tags(ctx context.Context, repo, last string, n int) ([]string, error) {
	var one int
	if err := s.pool.QueryRow(ctx, `SELECT 1 FROM repositories WHERE name = $1`, repo).Scan(&one); err != nil {
		return nil, notFound(err, "repository "+repo)
	}
	out, err := s.strings(ctx, `SELECT name FROM tags WHERE repo = $1 AND name COLLATE "C" > $2 ORDER BY name COLLATE "C" LIMIT $3`, repo, last, n)
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", repo, err)
	}
	return out, nil
}

// Repositories implements store.MetadataStore.
func (s *Store) Repositories(ctx context.Context, last string, n int) ([]string, error) {
	out, err := s.strings(ctx, `SELECT name FROM repositories WHERE name COLLATE "C" > $1 ORDER BY name COLLATE "C" LIMIT $2`, last, n)
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	return out, nil
}

// Referrers implements store.MetadataStore.
func (s *Store) Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]store.Descriptor, error) {
	q := `SELECT digest, media_type, size, artifact_type, annotations FROM manifests WHERE repo = $1 AND subject = $2`
	args := []any{repo, string(d)}
	if artifactType != "" {
		q += ` AND artifact_type = $3`
		args = append(args, artifactType)
	}
	rows, err := s.pool.Query(ctx, q+` ORDER BY digest COLLATE "C"`, args...)
	if err != nil {
		return nil, fmt.Errorf("referrers of %s in %s: %w", d, repo, err)
	}
	defer rows.Close()
	out := []store.Descriptor{}
	for rows.Next() {
		var desc store.Descriptor
		var dg string
		var at, ann *string
		if err := rows.Scan(&dg, &desc.MediaType, &desc.Size, &at, &ann); err != nil {
			return nil, fmt.Errorf("referrers of %s in %s: %w", d, repo, err)
		}
		desc.Digest = digest.Digest(dg)
		if at != nil {
			desc.ArtifactType = *at
		}
		if ann != nil {
			if err := json.Unmarshal([]byte(*ann), &desc.Annotations); err != nil {
				return nil, fmt.Errorf("annotations of %s: %w", desc.Digest, err)
			}
		}
		out = append(out, desc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("referrers of %s in %s: %w", d, repo, err)
	}
	return out, nil
}

// CreateUpload implements store.MetadataStore.
func (s *Store) CreateUpload(ctx context.Context, u *store.Upload) error {
	ts := now()
	_, err := s.pool.Exec(ctx, `INSERT INTO uploads (id, repo, "offset", algorithm, hash_state, started_at, updated_at, owner) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		u.ID, u.Repo, u.Offset, string(u.Algorithm), u.HashState, ts, ts, u.Owner)
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
	err := s.pool.QueryRow(ctx, `SELECT repo, "offset", algorithm, hash_state, started_at, owner FROM uploads WHERE id = $1`, id).
		Scan(&u.Repo, &u.Offset, &alg, &u.HashState, &started, &u.Owner)
	if err != nil {
		return nil, notFound(err, "upload "+id)
	}
	u.Algorithm = digest.Algorithm(alg)
	u.StartedAt = time.UnixMilli(started)
	return u, nil
}

// AdvanceUpload implements store.MetadataStore: the offset moves only if
// it is still from, so of two replicas writing the same session at once
// exactly one wins and the other gets ErrConflict.
func (s *Store) AdvanceUpload(ctx context.Context, u *store.Upload, from int64) error {
	res, err := s.pool.Exec(ctx, `UPDATE uploads SET "offset" = $1, algorithm = $2, hash_state = $3, updated_at = $4 WHERE id = $5 AND "offset" = $6`,
		u.Offset, string(u.Algorithm), u.HashState, now(), u.ID, from)
	if err != nil {
		return fmt.Errorf("advance upload %s: %w", u.ID, err)
	}
	if res.RowsAffected() == 0 {
		if _, err := s.Upload(ctx, u.ID); err != nil {
			return err
		}
		return fmt.Errorf("upload %s moved past offset %d: %w", u.ID, from, store.ErrConflict)
	}
	return nil
}

// DeleteUpload implements store.MetadataStore.
func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM uploads WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete upload %s: %w", id, err)
	}
	return nil
}

// OpenUploads implements store.MetadataStore.
func (s *Store) OpenUploads(ctx context.Context, owner string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM uploads WHERE owner = $1`, owner).Scan(&n); err != nil {
		return 0, fmt.Errorf("count uploads of %s: %w", owner, err)
	}
	return n, nil
}

// StaleUploads implements store.MetadataStore.
func (s *Store) StaleUploads(ctx context.Context, before time.Time, n int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM uploads WHERE updated_at < $1 ORDER BY updated_at LIMIT $2`, before.UnixMilli(), n)
	if err != nil {
		return nil, fmt.Errorf("stale uploads: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("stale uploads: %w", err)
	}
	return ids, nil
}

// SweepLinks implements store.MetadataStore.
func (s *Store) SweepLinks(ctx context.Context, before time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM blob_links WHERE linked_at < $1 AND NOT EXISTS
		(SELECT 1 FROM manifest_blobs mb WHERE mb.repo = blob_links.repo AND mb.blob_digest = blob_links.digest)`, before.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("sweep blob links: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM blob_deletions WHERE started_at < $1`, now()-store.DeletionTimeout.Milliseconds()); err != nil {
		return 0, fmt.Errorf("sweep blob links: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// ClaimDeletion implements store.MetadataStore.
func (s *Store) ClaimDeletion(ctx context.Context, d digest.Digest) (bool, error) {
	claimed := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		claimed = false // a retried transaction starts over
		if err := lockDigest(ctx, tx, d); err != nil {
			return err
		}
		// Linked, or claimed by another collector: not ours to delete.
		var busy bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM blob_links WHERE digest = $1)
			OR EXISTS (SELECT 1 FROM blob_deletions WHERE digest = $1 AND started_at > $2)`,
			string(d), now()-store.DeletionTimeout.Milliseconds()).Scan(&busy); err != nil {
			return err
		}
		if busy {
			return nil
		}
		_, err := tx.Exec(ctx, `INSERT INTO blob_deletions (digest, started_at) VALUES ($1, $2)
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
	if _, err := s.pool.Exec(ctx, `DELETE FROM blob_deletions WHERE digest = $1`, string(d)); err != nil {
		return fmt.Errorf("release blob %s: %w", d, err)
	}
	return nil
}
