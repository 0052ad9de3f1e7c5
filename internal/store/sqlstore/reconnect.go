package sqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/ferry-mirror/ferry/internal/store"
)

// A PostgreSQL restart leaves every pooled connection closed by the
// server. pgx already reports a connection that broke before a query was
// sent as driver.ErrBadConn, so database/sql tries another one; these
// wrappers add the other cases seen in a restart, and mark every
// connection failure as store.ErrUnavailable so the registry answers 503
// with Retry-After instead of 500:
//   - the server's "terminating connection" (SQLSTATE 57P01-57P03) read in
//     reply to a statement: the server ended that session without running
//     the statement, so it is retried on a fresh connection;
//   - a failed connect while the server is down or starting up;
//   - any other error after which the connection is closed.

// connLost is a connection failure. retry says the statement did not run,
// so database/sql may send it again on a fresh connection (it treats the
// error as driver.ErrBadConn).
type connLost struct {
	err   error
	retry bool
}

func (e *connLost) Error() string { return "database connection lost: " + e.err.Error() }
func (e *connLost) Unwrap() error { return e.err }

func (e *connLost) Is(target error) bool {
	return target == store.ErrUnavailable || e.retry && target == driver.ErrBadConn
}

// serverEnded reports the server's notice that it ended the session:
// admin_shutdown, crash_shutdown, cannot_connect_now.
func serverEnded(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03")
}

// classify turns the error of a statement on c into a connLost when it
// was a connection failure.
func classify(c *stdlib.Conn, err error) error {
	if err == nil {
		return nil
	}
	var cl *connLost
	if errors.As(err, &cl) {
		return err
	}
	switch {
	case errors.Is(err, driver.ErrBadConn), serverEnded(err), pgconn.SafeToRetry(err):
		return &connLost{err: err, retry: true}
	case c.Conn().IsClosed():
		return &connLost{err: err}
	}
	return err
}

// reconnector opens connections through pgx and wraps them.
type reconnector struct{ inner driver.Connector }

func (r reconnector) Connect(ctx context.Context) (driver.Conn, error) {
	c, err := r.inner.Connect(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, &connLost{err: fmt.Errorf("connect: %w", err)}
	}
	return &conn{c.(*stdlib.Conn)}, nil
}

func (r reconnector) Driver() driver.Driver { return r.inner.Driver() }

// conn is a pgx connection whose errors are classified.
type conn struct{ c *stdlib.Conn }

var (
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
	_ driver.NamedValueChecker  = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
)

func (c *conn) Prepare(q string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), q)
}

func (c *conn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	st, err := c.c.PrepareContext(ctx, q)
	if err != nil {
		return nil, classify(c.c, err)
	}
	return &stmt{st.(*stdlib.Stmt), c.c}, nil
}

func (c *conn) Close() error              { return c.c.Close() }
func (c *conn) Begin() (driver.Tx, error) { return c.BeginTx(context.Background(), driver.TxOptions{}) }

func (c *conn) BeginTx(ctx context.Context, o driver.TxOptions) (driver.Tx, error) {
	t, err := c.c.BeginTx(ctx, o)
	if err != nil {
		return nil, classify(c.c, err)
	}
	return txn{t, c.c}, nil
}

func (c *conn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	res, err := c.c.ExecContext(ctx, q, args)
	return res, classify(c.c, err)
}

func (c *conn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := c.c.QueryContext(ctx, q, args)
	return rows, classify(c.c, err)
}

func (c *conn) Ping(ctx context.Context) error             { return classify(c.c, c.c.Ping(ctx)) }
func (c *conn) CheckNamedValue(v *driver.NamedValue) error { return c.c.CheckNamedValue(v) }
func (c *conn) ResetSession(ctx context.Context) error     { return c.c.ResetSession(ctx) }

// txn classifies the errors of a transaction's end. A statement inside a
// transaction is never resent by database/sql; Store.inTx runs the whole
// transaction again instead.
type txn struct {
	t driver.Tx
	c *stdlib.Conn
}

func (t txn) Commit() error   { return classify(t.c, t.t.Commit()) }
func (t txn) Rollback() error { return classify(t.c, t.t.Rollback()) }

// stmt is a prepared statement whose errors are classified.
type stmt struct {
	s *stdlib.Stmt
	c *stdlib.Conn
}

func (s *stmt) Close() error  { return s.s.Close() }
func (s *stmt) NumInput() int { return s.s.NumInput() }

func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	res, err := s.s.Exec(args) //nolint:staticcheck // required by driver.Stmt
	return res, classify(s.c, err)
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	rows, err := s.s.Query(args) //nolint:staticcheck // required by driver.Stmt
	return rows, classify(s.c, err)
}

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	res, err := s.s.ExecContext(ctx, args)
	return res, classify(s.c, err)
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := s.s.QueryContext(ctx, args)
	return rows, classify(s.c, err)
}
