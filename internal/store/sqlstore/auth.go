package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/ferry-mirror/ferry/internal/store"
)

// CreateUser implements store.AuthStore.
func (s *Store) CreateUser(ctx context.Context, name, hash string) error {
	return s.execOne(ctx, "create user "+name, store.ErrConflict,
		`INSERT INTO users (name, password_hash, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, name, hash, now())
}

// SetPassword implements store.AuthStore.
func (s *Store) SetPassword(ctx context.Context, name, hash string) error {
	return s.execOne(ctx, "set password of user "+name, store.ErrNotFound, `UPDATE users SET password_hash = ? WHERE name = ?`, hash, name)
}

// DeleteUser implements store.AuthStore. Grants and tokens go with the
// user (ON DELETE CASCADE).
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	return s.execOne(ctx, "delete user "+name, store.ErrNotFound, `DELETE FROM users WHERE name = ?`, name)
}

// User implements store.AuthStore.
func (s *Store) User(ctx context.Context, name string) (*store.User, error) {
	u := store.User{Name: name}
	var created int64
	err := s.queryRow(ctx, `SELECT password_hash, created_at FROM users WHERE name = ?`, name).Scan(&u.PasswordHash, &created)
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
	type row struct {
		user string
		store.Grant
	}
	rows, err := collect(ctx, s, `SELECT username, prefix, perm FROM grants WHERE ? = '' OR username = ? ORDER BY username, prefix, perm`,
		[]any{name, name}, func(r *sql.Rows, g *row) error { return r.Scan(&g.user, &g.Prefix, &g.Perm) })
	if err != nil {
		return nil, fmt.Errorf("grants: %w", err)
	}
	out := map[string][]store.Grant{}
	for _, g := range rows {
		out[g.user] = append(out[g.user], g.Grant)
	}
	return out, nil
}

// Users implements store.AuthStore.
func (s *Store) Users(ctx context.Context) ([]store.User, error) {
	us, err := collect(ctx, s, `SELECT name, password_hash, created_at FROM users ORDER BY name`, nil, func(r *sql.Rows, u *store.User) error {
		var created int64
		err := r.Scan(&u.Name, &u.PasswordHash, &created)
		u.Created = time.UnixMilli(created)
		return err
	})
	if err != nil {
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
	var exists bool
	if err := s.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users)`).Scan(&exists); err != nil {
		return false, fmt.Errorf("users: %w", err)
	}
	return exists, nil
}

// AddGrant implements store.AuthStore.
func (s *Store) AddGrant(ctx context.Context, name string, g store.Grant) error {
	_, err := s.exec(ctx, `INSERT INTO grants (username, prefix, perm) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, name, g.Prefix, g.Perm)
	if err != nil && s.d.foreignKey(err) {
		return fmt.Errorf("user %s: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("grant %s %s to %s: %w", g.Perm, g.Prefix, name, err)
	}
	return nil
}

// RemoveGrant implements store.AuthStore.
func (s *Store) RemoveGrant(ctx context.Context, name string, g store.Grant) error {
	return s.execOne(ctx, fmt.Sprintf("revoke %s on %q from %s", g.Perm, g.Prefix, name), store.ErrNotFound,
		`DELETE FROM grants WHERE username = ? AND prefix = ? AND perm = ?`, name, g.Prefix, g.Perm)
}

// CreateToken implements store.AuthStore.
func (s *Store) CreateToken(ctx context.Context, t *store.Token) error {
	_, err := s.exec(ctx, `INSERT INTO robot_tokens (id, username, secret_hash, description, created_at) VALUES (?, ?, ?, ?, ?)`,
		t.ID, t.User, t.SecretHash, t.Description, now())
	if err != nil && s.d.foreignKey(err) {
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
	err := s.queryRow(ctx, `SELECT username, secret_hash, description, created_at FROM robot_tokens WHERE id = ?`, id).
		Scan(&t.User, &t.SecretHash, &t.Description, &created)
	if err != nil {
		return nil, notFound(err, "token "+id)
	}
	t.Created = time.UnixMilli(created)
	return &t, nil
}

// Tokens implements store.AuthStore.
func (s *Store) Tokens(ctx context.Context, user string) ([]store.Token, error) {
	ts, err := collect(ctx, s, `SELECT id, username, secret_hash, description, created_at FROM robot_tokens
		WHERE ? = '' OR username = ? ORDER BY username, created_at, id`, []any{user, user}, func(r *sql.Rows, t *store.Token) error {
		var created int64
		err := r.Scan(&t.ID, &t.User, &t.SecretHash, &t.Description, &created)
		t.Created = time.UnixMilli(created)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	return ts, nil
}

// DeleteToken implements store.AuthStore.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	return s.execOne(ctx, "revoke token "+id, store.ErrNotFound, `DELETE FROM robot_tokens WHERE id = ?`, id)
}

// Secret implements store.AuthStore: the row id of signing_keys, stored
// as candidate unless a row is there already (whoever stored it first
// wins).
func (s *Store) Secret(ctx context.Context, id store.SecretID, candidate string) (string, error) {
	if _, err := s.exec(ctx, `INSERT INTO signing_keys (id, secret) VALUES (?, ?) ON CONFLICT DO NOTHING`, int(id), candidate); err != nil {
		return "", fmt.Errorf("store secret %d: %w", id, err)
	}
	var v string
	if err := s.w.QueryRowContext(ctx, s.d.bind(`SELECT secret FROM signing_keys WHERE id = ?`), int(id)).Scan(&v); err != nil {
		return "", fmt.Errorf("read secret %d: %w", id, err)
	}
	return v, nil
}

// SwapSecret implements store.AuthStore.
func (s *Store) SwapSecret(ctx context.Context, id store.SecretID, old, new string) (bool, error) {
	res, err := s.exec(ctx, `UPDATE signing_keys SET secret = ? WHERE id = ? AND secret = ?`, new, int(id), old)
	if err != nil {
		return false, fmt.Errorf("replace secret %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("replace secret %d: %w", id, err)
	}
	return n == 1, nil
}
