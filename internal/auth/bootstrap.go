package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ferry-mirror/ferry/internal/store"
)

// InitialAdmin is the user a first serve creates.
const InitialAdmin = "admin"

const enabledPrefix = "enabled "

// Bootstrap records in the store that authentication is on. The first
// time it is recorded, on a store with no user, it creates InitialAdmin
// with admin on every repository and returns its random password, to be
// shown once; otherwise it returns "". Among replicas starting together
// exactly one creates the admin.
func Bootstrap(ctx context.Context, st store.AuthStore) (string, error) {
	// The random part tells this caller's mark from one another replica
	// wrote in the same instant.
	nonce := make([]byte, 8)
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	mark := enabledPrefix + time.Now().UTC().Format(time.RFC3339) + " " + hex.EncodeToString(nonce)
	v, err := st.Secret(ctx, store.SecretAuthEnabled, mark)
	if err != nil {
		return "", fmt.Errorf("auth: %w", err)
	}
	if v == "" { // read by an --auth=off serve before: claim it now
		ok, err := st.SwapSecret(ctx, store.SecretAuthEnabled, "", mark)
		if err != nil {
			return "", fmt.Errorf("auth: %w", err)
		}
		if ok {
			v = mark
		}
	}
	if v != mark {
		return "", nil // recorded before, by us or another replica
	}
	has, err := st.HasUsers(ctx)
	if err != nil || has {
		return "", err
	}
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random password: %w", err)
	}
	pw := base64.RawURLEncoding.EncodeToString(b)
	h, err := HashPassword(pw)
	if err != nil {
		return "", err
	}
	if err := st.CreateUser(ctx, InitialAdmin, h); errors.Is(err, store.ErrConflict) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("create the initial admin: %w", err)
	}
	if err := st.AddGrant(ctx, InitialAdmin, store.Grant{Prefix: "", Perm: Admin}); err != nil {
		return "", fmt.Errorf("grant the initial admin: %w", err)
	}
	return pw, nil
}

// EnabledSince says when authentication was first turned on for the
// store, or "" if never.
func EnabledSince(ctx context.Context, st store.AuthStore) (string, error) {
	// "" as the candidate: reading must not record anything.
	v, err := st.Secret(ctx, store.SecretAuthEnabled, "")
	if err != nil {
		return "", fmt.Errorf("auth: %w", err)
	}
	if rest, ok := strings.CutPrefix(v, enabledPrefix); ok {
		since, _, _ := strings.Cut(rest, " ")
		return "since " + since, nil
	}
	return "", nil
}
