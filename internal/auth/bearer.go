package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// TokenLifetime is how long a bearer token from /v2/token is valid, and
// the longest lifetime a token may claim. Permissions are read from the
// store on every request, and a token dies with the credential it was
// obtained with, so a revocation applies at once.
const TokenLifetime = 15 * time.Minute

// clockSkew is how far in the future a token's issue time may be: replicas'
// clocks differ a little.
const clockSkew = time.Minute

// claims is what a bearer token says: who (empty for anonymous), with
// which credential, and until when. It carries no permissions: those are
// checked live.
type claims struct {
	KeyID     string `json:"kid"`
	Subject   string `json:"sub"`
	Anonymous bool   `json:"anon,omitempty"`
	// Credential names what the token was obtained with: "p:" and a
	// fingerprint of the password hash, or "r:" and a robot token's id.
	Credential string `json:"cred,omitempty"`
	Expires    int64  `json:"exp"`
	IssuedAt   int64  `json:"iat"`
	// Use is "" for a bearer token and "console" for a web console
	// session, so neither is accepted as the other.
	Use string `json:"use,omitempty"`
}

// sign makes a token with key k.
func sign(k ringKey, c claims) string {
	c.KeyID = k.ID
	body, _ := json.Marshal(c) // a struct of strings and ints cannot fail
	p := base64.RawURLEncoding.EncodeToString(body)
	return p + "." + base64.RawURLEncoding.EncodeToString(mac(k.Key, p))
}

func mac(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

var errBadToken = errors.New("invalid or expired token")

// errUnknownKey is a well-formed token signed with a key this replica
// does not know (yet): the ring may have been rotated by another process.
var errUnknownKey = errors.New("token signed with an unknown key")

// verify checks a token of the given use, living at most maxLife,
// against the keys of r.
func (r *keyring) verify(tok string, now time.Time, use string, maxLife time.Duration) (claims, error) {
	p, sig, ok := strings.Cut(tok, ".")
	if !ok {
		return claims{}, errBadToken
	}
	body, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return claims{}, errBadToken
	}
	var c claims
	if err := json.Unmarshal(body, &c); err != nil {
		return claims{}, errBadToken
	}
	k, ok := r.key(c.KeyID)
	if !ok {
		return claims{}, errUnknownKey
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(k.Key, p)) {
		return claims{}, errBadToken
	}
	switch {
	case now.Unix() >= c.Expires:
		return claims{}, errBadToken
	case c.Use != use:
		return claims{}, errBadToken
	case c.Expires-c.IssuedAt > int64(maxLife/time.Second), c.IssuedAt > now.Add(clockSkew).Unix():
		// Longer-lived than this server issues: not one of ours.
		return claims{}, errBadToken
	}
	return c, nil
}
