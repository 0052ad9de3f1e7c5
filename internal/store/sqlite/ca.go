package sqlite

import (
	"context"
	"fmt"
)

// caKeyID is the signing_keys row holding the shared TLS CA; row 1 is the
// token signing key.
const caKeyID = 2

// SharedCA implements store.AuthStore.
func (s *Store) SharedCA(ctx context.Context, candidate string) (string, error) {
	if _, err := s.w.ExecContext(ctx, `INSERT INTO signing_keys (id, secret) VALUES (?, ?) ON CONFLICT DO NOTHING`, caKeyID, candidate); err != nil {
		return "", fmt.Errorf("store shared CA: %w", err)
	}
	var ca string
	if err := s.w.QueryRowContext(ctx, `SELECT secret FROM signing_keys WHERE id = ?`, caKeyID).Scan(&ca); err != nil {
		return "", fmt.Errorf("read shared CA: %w", err)
	}
	return ca, nil
}
