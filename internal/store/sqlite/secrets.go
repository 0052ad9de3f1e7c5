package sqlite

import (
	"context"
	"fmt"

	"github.com/ferry-mirror/ferry/internal/store"
)

// Secret implements store.AuthStore.
func (s *Store) Secret(ctx context.Context, id store.SecretID, candidate string) (string, error) {
	if _, err := s.w.ExecContext(ctx, `INSERT INTO signing_keys (id, secret) VALUES (?, ?) ON CONFLICT DO NOTHING`, int(id), candidate); err != nil {
		return "", fmt.Errorf("store secret %d: %w", id, err)
	}
	var v string
	if err := s.w.QueryRowContext(ctx, `SELECT secret FROM signing_keys WHERE id = ?`, int(id)).Scan(&v); err != nil {
		return "", fmt.Errorf("read secret %d: %w", id, err)
	}
	return v, nil
}

// SwapSecret implements store.AuthStore.
func (s *Store) SwapSecret(ctx context.Context, id store.SecretID, old, new string) (bool, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE signing_keys SET secret = ? WHERE id = ? AND secret = ?`, new, int(id), old)
	if err != nil {
		return false, fmt.Errorf("replace secret %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("replace secret %d: %w", id, err)
	}
	return n == 1, nil
}
