// Package sqlstore is the SQL MetadataStore and AuthStore, written once
// over database/sql for two engines: SQLite (modernc.org/sqlite, embedded,
// one node) and PostgreSQL (pgx through its database/sql adapter, shared by
// HA replicas). A small dialect carries what differs between them:
// placeholders, list parameters, the per-digest lock, retryable and
// foreign-key errors, and the few type names of the migrations.
//
// Safety across processes comes from the database, never from process
// memory: writes are transactions, idempotent inserts are ON CONFLICT
// upserts, and an upload's offset moves only by a conditional UPDATE.
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/ferry-mirror/ferry/internal/store"
)

var (
	_ store.MetadataStore = (*Store)(nil)
	_ store.AuthStore     = (*Store)(nil)
)

// Store is a MetadataStore and AuthStore in a SQL database.
type Store struct {
	d dialect
	// w takes writes and r reads; they are one pool on PostgreSQL, and on
	// SQLite the single writer connection and a pool of readers.
	w, r *sql.DB

	// The registry's hot reads, prepared once.
	taggedStmt, manifestStmt, blobStmt *sql.Stmt
}

// The registry's hot reads: one primary-key lookup each.
const (
	taggedQuery = `SELECT m.digest, m.media_type, m.content FROM tags t
		JOIN manifests m ON m.repo = t.repo AND m.digest = t.digest
		WHERE t.repo = ? AND t.name = ?`
	manifestQuery = `SELECT media_type, content FROM manifests WHERE repo = ? AND digest = ?`
	blobQuery     = `SELECT size FROM blob_links WHERE repo = ? AND digest = ?`
)

// open migrates the database and prepares the store; it closes w and r
// when it fails.
func open(ctx context.Context, w, r *sql.DB, d dialect) (*Store, error) {
	s := &Store{d: d, w: w, r: r}
	if err := migrate(ctx, w, d); err != nil {
		s.Close()
		return nil, err
	}
	var err error
	prep := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = r.PrepareContext(ctx, d.bind(q))
		return st
	}
	s.taggedStmt = prep(taggedQuery)
	s.manifestStmt = prep(manifestQuery)
	s.blobStmt = prep(blobQuery)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("prepare: %w", err)
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
	if s.r == s.w {
		return s.w.Close()
	}
	return errors.Join(s.r.Close(), s.w.Close())
}

// Ping implements store.MetadataStore.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("metadata store: %w", err)
	}
	return nil
}

func now() int64 { return time.Now().UnixMilli() }

// notFound turns "no row" into store.ErrNotFound, naming what.
func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// affected turns "no row changed" into none.
func affected(res sql.Result, none error) error {
	n, err := res.RowsAffected()
	if err == nil && n == 0 {
		err = none
	}
	return err
}

// execOne runs a write that must change a row; none when it changes none.
func (s *Store) execOne(ctx context.Context, what string, none error, q string, args ...any) error {
	res, err := s.exec(ctx, q, args...)
	if err == nil {
		err = affected(res, none)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// exec runs a write outside any transaction.
func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return s.w.ExecContext(ctx, s.d.bind(q), args...)
}

// queryRow reads one row through the readers.
func (s *Store) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return s.r.QueryRowContext(ctx, s.d.bind(q), args...)
}

// collect runs q on the readers and scans every row with scan.
func collect[T any](ctx context.Context, s *Store, q string, args []any, scan func(*sql.Rows, *T) error) ([]T, error) {
	rows, err := s.r.QueryContext(ctx, s.d.bind(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		var v T
		if err := scan(rows, &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// strings reads the one text column of every row of q.
func (s *Store) strings(ctx context.Context, q string, args ...any) ([]string, error) {
	return collect(ctx, s, q, args, func(r *sql.Rows, v *string) error { return r.Scan(v) })
}

// tx is a write transaction whose queries are bound for the dialect.
type tx struct {
	*sql.Tx
	d dialect
}

func (t tx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.ExecContext(ctx, t.d.bind(q), args...)
}

func (t tx) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return t.QueryRowContext(ctx, t.d.bind(q), args...)
}

// inTx runs f in a write transaction, again from the start when the
// dialect says the failure was only contention, or once when the server
// closed the connection before the transaction could end (f must not keep
// state from a failed attempt).
func (s *Store) inTx(ctx context.Context, f func(tx) error) error {
	var err error
	reconnected := false
	for attempt := 0; attempt < 5; attempt++ {
		err = s.tryTx(ctx, f)
		switch {
		case s.d.retryable(err):
		case !reconnected && errors.Is(err, driver.ErrBadConn):
			reconnected = true
		default:
			return err
		}
	}
	return err
}

func (s *Store) tryTx(ctx context.Context, f func(tx) error) error {
	t, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx{t, s.d}); err != nil {
		t.Rollback()
		return err
	}
	return t.Commit()
}
