package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/ferry-mirror/ferry/internal/store"
)

var _ store.AuthStore = (*Store)(nil)

// CreateUser implements store.AuthStore.
func (s *Store) CreateUser(ctx context.Context, name, hash string) error {
	res, err := s.w.ExecContext(ctx, `INSERT INTO users (name, password_hash, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, name, hash, now())
	if err != nil {
		return fmt.Errorf("create user %s: %w", name, err)
	}
	return affected(res, fmt.Sprintf("create user %s", name), store.ErrConflict)
}

// SetPassword implements store.AuthStore.
func (s *Store) SetPassword(ctx context.Context, name, hash string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE name = ?`, hash, name)
	if err != nil {
		return fmt.Errorf("set password of %s: %w", name, err)
	}
	return affected(res, "user "+name, store.ErrNotFound)
}

// DeleteUser implements store.AuthStore.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("delete user %s: %w", name, err)
	}
	return affected(res, "user "+name, store.ErrNotFound)
}

// affected turns "no row changed" into sentinel.
func affected(res sql.Result, what string, sentinel error) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, sentinel)
	}
	return nil
}

// User implements store.AuthStore.
func (s *Store) User(ctx context.Context, name string) (*store.User, error) {
	u := store.User{Name: name}
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT password_hash, created_at FROM users WHERE name = ?`, name).Scan(&u.PasswordHash, &created)
	if err != nil {
		return nil, notFound(err, "user "+name)
	}
	u.Created = time.UnixMilli(created)
	g, err := s.grants(ctx, name)
	if err != nil {
		return nil, err
	}
	u.Grants = g[name]
	return &u, nil
}

// grants returns the grants of user name, or of everyone when name is "".
func (s *Store) grants(ctx context.Context, name string) (map[string][]store.Grant, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT username, prefix, perm FROM grants WHERE ? = '' OR username = ? ORDER BY username, prefix, perm`, name, name)
	if err != nil {
		return nil, fmt.Errorf("grants: %w", err)
	}
	defer rows.Close()
	out := map[string][]store.Grant{}
	for rows.Next() {
		var user string
		var g store.Grant
		if err := rows.Scan(&user, &g.Prefix, &g.Perm); err != nil {
			return nil, fmt.Errorf("grants: %w", err)
		}
		out[user] = append(out[user], g)
	}
	return out, rows.Err()
}

// Users implements store.AuthStore.
func (s *Store) Users(ctx context.Context) ([]store.User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, password_hash, created_at FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	defer rows.Close()
	var us []store.User
	for rows.Next() {
		var u store.User
		var created int64
		if err := rows.Scan(&u.Name, &u.PasswordHash, &created); err != nil {
			return nil, fmt.Errorf("users: %w", err)
		}
		u.Created = time.UnixMilli(created)
		us = append(us, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	g, err := s.grants(ctx, "")
	if err != nil {
		return nil, err
	}
	for i := range us {
		us[i].Grants = g[us[i].Name]
	}
	return us, nil
}

// HasUsers implements store.AuthStore.
func (s *Store) HasUsers(ctx context.Context) (bool, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM users LIMIT 1) AS one`).Scan(&n); err != nil {
		return false, fmt.Errorf("users: %w", err)
	}
	return n > 0, nil
}

// AddGrant implements store.AuthStore.
func (s *Store) AddGrant(ctx context.Context, name string, g store.Grant) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO grants (username, prefix, perm) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, name, g.Prefix, g.Perm)
	if err != nil && strings.Contains(err.Error(), "FOREIGN KEY") {
		return fmt.Errorf("user %s: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("grant %s %s to %s: %w", g.Perm, g.Prefix, name, err)
	}
	return nil
}

// RemoveGrant implements store.AuthStore.
func (s *Store) RemoveGrant(ctx context.Context, name string, g store.Grant) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM grants WHERE username = ? AND prefix = ? AND perm = ?`, name, g.Prefix, g.Perm)
	if err != nil {
		return fmt.Errorf("revoke %s %s from %s: %w", g.Perm, g.Prefix, name, err)
	}
	return affected(res, fmt.Sprintf("grant %s on %q to %s", g.Perm, g.Prefix, name), store.ErrNotFound)
}

// CreateToken implements store.AuthStore.
func (s *Store) CreateToken(ctx context.Context, t *store.Token) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO robot_tokens (id, username, secret_hash, description, created_at) VALUES (?, ?, ?, ?, ?)`,
		t.ID, t.User, t.SecretHash, t.Description, now())
	if err != nil && strings.Contains(err.Error(), "FOREIGN KEY") {
		return fmt.Errorf("user %s: %w", t.User, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("create token for %s: %w", t.User, err)
	}
	return nil
}

// Token implements store.AuthStore.
func (s *Store) Token(ctx context.Context, id string) (*store.Token, error) {
	t := store.Token{ID: id}
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT username, secret_hash, description, created_at FROM robot_tokens WHERE id = ?`, id).
		Scan(&t.User, &t.SecretHash, &t.Description, &created)
	if err != nil {
		return nil, notFound(err, "token "+id)
	}
	t.Created = time.UnixMilli(created)
	return &t, nil
}

// Tokens implements store.AuthStore.
func (s *Store) Tokens(ctx context.Context, user string) ([]store.Token, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, username, secret_hash, description, created_at FROM robot_tokens
		WHERE ? = '' OR username = ? ORDER BY username, created_at, id`, user, user)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	defer rows.Close()
	var ts []store.Token
	for rows.Next() {
		var t store.Token
		var created int64
		if err := rows.Scan(&t.ID, &t.User, &t.SecretHash, &t.Description, &created); err != nil {
			return nil, fmt.Errorf("tokens: %w", err)
		}
		t.Created = time.UnixMilli(created)
		ts = append(ts, t)
	}
	return ts, rows.Err()
}

// DeleteToken implements store.AuthStore.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM robot_tokens WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	return affected(res, "token "+id, store.ErrNotFound)
}
