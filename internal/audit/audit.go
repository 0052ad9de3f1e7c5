// Package audit writes the registry's audit trail: who pushed, deleted,
// logged in or changed users, permissions and tokens, from where, on
// what, and with which result. It is a stream of its own (JSON lines), apart
// from the access and error logs, so it can be kept and shipped on its own
// terms, as Quay's audit log is.
package audit

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
)

// Actions recorded.
const (
	Push        = "push"         // a manifest stored, by tag or digest
	Delete      = "delete"       // a manifest, tag or blob deleted
	Login       = "login"        // a token issued, or credentials refused
	UserAdd     = "user.add"     // a user created
	UserPasswd  = "user.passwd"  // a password changed
	UserDelete  = "user.delete"  // a user deleted
	Grant       = "grant"        // a permission given
	Revoke      = "revoke"       // a permission taken back
	TokenCreate = "token.create" // a robot token created
	TokenRevoke = "token.revoke" // a robot token revoked
	KeyRotate   = "key.rotate"   // the token signing key rotated
)

// Results.
const (
	OK      = "ok"
	Failed  = "failed"
	Refused = "refused"
)

// Event is one audited action. Empty fields are left out.
type Event struct {
	Action string
	User   string // who acted ("" when anonymous or unknown)
	Remote string // the client's address, or "cli" for ferry user
	Repo   string
	Ref    string // tag or digest named in the request
	Digest string // the content affected
	Target string // the user, permission or token acted on
	Result string
	Status int    // the HTTP status answered, if any
	Detail string // why, for a failure
}

// Logger writes events; a nil Logger writes nothing.
type Logger struct {
	l *slog.Logger
	c io.Closer
}

// New writes events as JSON lines to w.
func New(w io.Writer) *Logger {
	return &Logger{l: slog.New(slog.NewJSONHandler(w, nil))}
}

// Open opens the audit stream dest: "-" for standard output, "off" or ""
// for none, else a file appended to (made 0600).
func Open(dest string) (*Logger, error) {
	switch dest {
	case "", "off":
		return nil, nil
	case "-":
		return New(os.Stdout), nil
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o700); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	l := New(f)
	l.c = f
	return l, nil
}

// Close closes the file behind l, if any.
func (a *Logger) Close() error {
	if a == nil || a.c == nil {
		return nil
	}
	return a.c.Close()
}

// Record writes e.
func (a *Logger) Record(ctx context.Context, e Event) {
	if a == nil {
		return
	}
	attrs := []slog.Attr{slog.String("action", e.Action), slog.String("result", e.Result)}
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	add("user", e.User)
	add("remote", e.Remote)
	add("repository", e.Repo)
	add("reference", e.Ref)
	add("digest", e.Digest)
	add("target", e.Target)
	if e.Status != 0 {
		attrs = append(attrs, slog.Int("status", e.Status))
	}
	add("detail", e.Detail)
	a.l.LogAttrs(ctx, slog.LevelInfo, "audit", attrs...)
}
