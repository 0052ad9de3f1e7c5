package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// TokenLifetime is how long a bearer token from /v2/token is valid.
// Permissions are read from the store on every request, so a revoked
// grant applies at once; only a deleted user's token lives this long
// (and is refused anyway, the user being gone).
const TokenLifetime = 15 * time.Minute

// claims is what a bearer token says: who (empty for anonymous) and until
// when. It carries no permissions: those are checked live.
type claims struct {
	Subject   string `json:"sub"`
	Anonymous bool   `json:"anon,omitempty"`
	Expires   int64  `json:"exp"`
	IssuedAt  int64  `json:"iat"`
}

// signer makes and checks bearer tokens with an HMAC-SHA256 key shared
// through the metadata store.
type signer struct{ key []byte }

func newKeyCandidate() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random signing key: %w", err)
	}
	return base64.RawStdEncoding.EncodeToString(b), nil
}

func (s signer) sign(c claims) string {
	body, _ := json.Marshal(c) // a struct of strings and ints cannot fail
	p := base64.RawURLEncoding.EncodeToString(body)
	return p + "." + base64.RawURLEncoding.EncodeToString(s.mac(p))
}

func (s signer) mac(payload string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

var errBadToken = errors.New("invalid or expired token")

func (s signer) verify(tok string, now time.Time) (claims, error) {
	p, sig, ok := strings.Cut(tok, ".")
	if !ok {
		return claims{}, errBadToken
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(p)) {
		return claims{}, errBadToken
	}
	body, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return claims{}, errBadToken
	}
	var c claims
	if err := json.Unmarshal(body, &c); err != nil || now.Unix() >= c.Expires {
		return claims{}, errBadToken
	}
	return c, nil
}
