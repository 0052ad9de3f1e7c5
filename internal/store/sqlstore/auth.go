package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/ferry-mirror/ferry/internal/store"
)

// CreateUser implements store.AuthStore.
func (s *Store) CreateUser(ctx context.Context, name, hash string) error {
	res, err := s.exec(ctx, `INSERT INTO users (name, password_hash, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, name, hash, now())
	if err != nil {
		return fmt.Errorf("create user %s: %w", name, err)
	}
	return affected(res, "create user "+name, store.ErrConflict)
}

// SetPassword implements store.AuthStore.
func (s *Store) SetPassword(ctx context.Context, name, hash string) error {
	res, err := s.exec(ctx, `UPDATE users SET password_hash = ? WHERE name = ?`, hash, name)
	if err != nil {
		return fmt.Errorf("set password of %s: %w", name, err)
	}
	return affected(res, "user "+name, store.ErrNotFound)
}

// DeleteUser implements store.AuthStore. Grants and tokens go with the
// user (ON DELETE CASCADE).
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	res, err := s.exec(ctx, `DELETE FROM users WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("delete user %s: %w", name, err)
	}
	return affected(res, "user "+name, store.ErrNotFound)
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
	rows, err := s.r.QueryContext(ctx, s.d.bind(`SELECT username, prefix, perm FROM grants
		WHERE ? = '' OR username = ? ORDER BY username, prefix, perm`), name, name)
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
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("grants: %w", err)
	}
	return out, nil
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
	res, err := s.exec(ctx, `DELETE FROM grants WHERE username = ? AND prefix = ? AND perm = ?`, name, g.Prefix, g.Perm)
	if err != nil {
		return fmt.Errorf("revoke %s %s from %s: %w", g.Perm, g.Prefix, name, err)
	}
	return affected(res, fmt.Sprintf("grant %s on %q to %s", g.Perm, g.Prefix, name), store.ErrNotFound)
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
	rows, err := s.r.QueryContext(ctx, s.d.bind(`SELECT id, username, secret_hash, description, created_at FROM robot_tokens
		WHERE ? = '' OR username = ? ORDER BY username, created_at, id`), user, user)
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
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	return ts, nil
}

// DeleteToken implements store.AuthStore.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	res, err := s.exec(ctx, `DELETE FROM robot_tokens WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	return affected(res, "token "+id, store.ErrNotFound)
}

// Rows of signing_keys: the token signing key and the shared TLS CA.
const (
	signingKeyID = 1
	caKeyID      = 2
)

// SigningKey implements store.AuthStore.
func (s *Store) SigningKey(ctx context.Context, candidate string) (string, error) {
	k, err := s.sharedSecret(ctx, signingKeyID, candidate)
	if err != nil {
		return "", fmt.Errorf("signing key: %w", err)
	}
	return k, nil
}

// SharedCA implements store.AuthStore.
func (s *Store) SharedCA(ctx context.Context, candidate string) (string, error) {
	ca, err := s.sharedSecret(ctx, caKeyID, candidate)
	if err != nil {
		return "", fmt.Errorf("shared CA: %w", err)
	}
	return ca, nil
}

// sharedSecret stores candidate as row id of signing_keys unless a row is
// there already (whoever stored it first wins), and returns the row.
func (s *Store) sharedSecret(ctx context.Context, id int, candidate string) (string, error) {
	if _, err := s.exec(ctx, `INSERT INTO signing_keys (id, secret) VALUES (?, ?) ON CONFLICT DO NOTHING`, id, candidate); err != nil {
		return "", err
	}
	var v string
	err := s.w.QueryRowContext(ctx, s.d.bind(`SELECT secret FROM signing_keys WHERE id = ?`), id).Scan(&v)
	return v, err
}
