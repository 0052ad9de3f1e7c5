package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/opencontainers/go-digest"
)

// OpenPostgres connects to the PostgreSQL database at dsn
// (postgres://user:pass@host:port/db?...) and applies pending migrations.
// It is the store of highly available deployments: every replica opens the
// same database, and safety across them comes from the database alone.
func OpenPostgres(ctx context.Context, dsn string) (*Store, error) {
	// Parsed as a pool configuration so that the pool_* parameters
	// accepted before (pool_max_conns, ...) keep working.
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse %s: %w", redact(dsn), err)
	}
	db := sql.OpenDB(reconnector{stdlib.GetConnector(*cfg.ConnConfig)})
	db.SetMaxOpenConns(int(cfg.MaxConns))
	db.SetMaxIdleConns(int(cfg.MaxConns))
	db.SetConnMaxLifetime(cfg.MaxConnLifetime)
	db.SetConnMaxIdleTime(cfg.MaxConnIdleTime)
	s, err := open(ctx, db, db, postgresDialect{})
	if err != nil {
		return nil, fmt.Errorf("postgres %s: %w", redact(dsn), err)
	}
	return s, nil
}

// redact hides the password of a connection URL for messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

type postgresDialect struct{}

func (postgresDialect) bind(q string) string { return dollarBind(q) }

// oneOf passes the values as one text[] parameter: one statement text
// whatever the count, so the prepared-statement cache is not churned.
func (postgresDialect) oneOf(col string, vals []string) (string, []any) {
	return col + " = ANY(?)", []any{vals}
}

func (postgresDialect) byteOrder() string { return ` COLLATE "C"` }

// lockDigest takes a transaction-scoped advisory lock on the digest: READ
// COMMITTED alone would let LinkBlob and ClaimDeletion both pass their
// checks at once.
func (postgresDialect) lockDigest(ctx context.Context, tx *sql.Tx, d digest.Digest) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, string(d))
	return err
}

// retryable: a serialization failure or deadlock between replicas.
func (postgresDialect) retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

func (postgresDialect) foreignKey(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

func (postgresDialect) schema() schemaTypes {
	return schemaTypes{Bytes: "BYTEA", NowMillis: "CAST(extract(epoch FROM now()) * 1000 AS BIGINT)", ByteOrder: postgresDialect{}.byteOrder()}
}

// migrationLock is the pg_advisory_lock key that serializes migrations
// when several replicas start at once ("ferrymig" in ASCII).
const migrationLock = 0x666572727920696d

// lockSchema makes replicas that start together take turns: the first
// migrates, the others then find nothing to do.
func (postgresDialect) lockSchema(ctx context.Context, conn *sql.Conn) (func(), error) {
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLock)); err != nil {
		return nil, fmt.Errorf("take lock: %w", err)
	}
	// An unlock failure means the session is broken; closing it releases
	// the lock anyway.
	return func() {
		conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrationLock))
	}, nil
}

// schemaVersion is the highest version in ferry_schema, the table Ferry
// has always recorded applied migrations in.
func (postgresDialect) schemaVersion(ctx context.Context, tx *sql.Tx) (int, error) {
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS ferry_schema (version INTEGER NOT NULL)`); err != nil {
		return 0, err
	}
	var v int
	err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM ferry_schema`).Scan(&v)
	return v, err
}

func (postgresDialect) setSchemaVersion(ctx context.Context, tx *sql.Tx, n int) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO ferry_schema (version) VALUES ($1)`, n)
	return err
}
