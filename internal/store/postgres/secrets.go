package postgres

import (
	"context"
	"fmt"

	"github.com/ferry-mirror/ferry/internal/store"
)

// Secret implements store.AuthStore.
func (s *Store) Secret(ctx context.Context, id store.SecretID, candidate string) (string, error) {
	if _, err := s.pool.Exec(ctx, `INSERT INTO signing_keys (id, secret) VALUES ($1, $2) ON CONFLICT DO NOTHING`, int(id), candidate); err != nil {
		return "", fmt.Errorf("store secret %d: %w", id, err)
	}
	var v string
	if err := s.pool.QueryRow(ctx, `SELECT secret FROM signing_keys WHERE id = $1`, int(id)).Scan(&v); err != nil {
		return "", fmt.Errorf("read secret %d: %w", id, err)
	}
	return v, nil
}

// SwapSecret implements store.AuthStore.
func (s *Store) SwapSecret(ctx context.Context, id store.SecretID, old, new string) (bool, error) {
	res, err := s.pool.Exec(ctx, `UPDATE signing_keys SET secret = $1 WHERE id = $2 AND secret = $3`, new, int(id), old)
	if err != nil {
		return false, fmt.Errorf("replace secret %d: %w", id, err)
	}
	return res.RowsAffected() == 1, nil
}
