package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"

	"github.com/opencontainers/go-digest"
	"modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// OpenSQLite opens (creating and migrating if needed) the SQLite database
// at path, in WAL mode. Writes go through a single connection, each
// transaction started with BEGIN IMMEDIATE: SQLite has one writer anyway,
// and this way writers queue on the lock instead of failing busy. Reads go
// through a pool, which WAL lets run beside the writer.
func OpenSQLite(ctx context.Context, path string) (*Store, error) {
	w, err := sql.Open("sqlite", sqliteDSN(path, false))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open("sqlite", sqliteDSN(path, true))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	n := 2 * runtime.GOMAXPROCS(0)
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	s, err := open(ctx, w, r, sqliteDialect{})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

func sqliteDSN(path string, readOnly bool) string {
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

type sqliteDialect struct{}

func (sqliteDialect) bind(q string) string { return q }

// oneOf binds each value: SQLite has no array parameters. Callers keep
// lists under SQLite's limit of 32766 variables.
func (sqliteDialect) oneOf(col string, vals []string) (string, []any) {
	args := make([]any, len(vals))
	for i, v := range vals {
		args[i] = v
	}
	return col + " IN (?" + strings.Repeat(", ?", len(vals)-1) + ")", args
}

// byteOrder is empty: SQLite's default collation, BINARY, is byte-wise.
func (sqliteDialect) byteOrder() string { return "" }

// lockDigest does nothing: every write transaction begins IMMEDIATE, which
// takes the database's one write lock (across processes too, so serve and
// gc), so LinkBlob and ClaimDeletion never interleave.
func (sqliteDialect) lockDigest(context.Context, *sql.Tx, digest.Digest) error { return nil }

// retryable is false: a writer waits for the lock (busy_timeout) at BEGIN
// rather than failing in the middle of a transaction.
func (sqliteDialect) retryable(error) bool { return false }

func (sqliteDialect) foreignKey(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

func (sqliteDialect) schema() schemaTypes {
	return schemaTypes{Bytes: "BLOB", NowMillis: "CAST(strftime('%s', 'now') AS INTEGER) * 1000"}
}

// lockSchema does nothing: the migration's write transactions hold the
// database's write lock.
func (sqliteDialect) lockSchema(context.Context, *sql.Conn) (func(), error) { return func() {}, nil }

// schemaVersion is the database's user_version, where Ferry has always
// kept it.
func (sqliteDialect) schemaVersion(ctx context.Context, tx *sql.Tx) (int, error) {
	var v int
	err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

func (sqliteDialect) setSchemaVersion(ctx context.Context, tx *sql.Tx, n int) error {
	_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", n))
	return err
}
