package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// robotPrefix starts every robot token, so a token is recognizable in a
// password field and in leaked-secret scanners.
const robotPrefix = "ferry_"

// HashPassword returns the bcrypt hash stored for a password.
func HashPassword(pw string) (string, error) {
	if len(pw) < 8 {
		return "", errors.New("password too short: use at least 8 characters")
	}
	if len(pw) > 72 {
		return "", errors.New("password too long: bcrypt uses at most 72 bytes")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// dummyHash is compared against when the user does not exist, so an
// unknown name costs as much time as a wrong password. It is made on
// first use: at init it cost every ferry command a bcrypt round.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("ferry-no-such-user"), bcrypt.DefaultCost)
	return h
})

func checkPassword(hash, pw string) bool {
	if hash == "" {
		bcrypt.CompareHashAndPassword(dummyHash(), []byte(pw))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}

// NewRobotSecret returns a fresh robot token (shown once to the user), its
// id and the hash to store. The secret has 256 random bits, so SHA-256 is
// enough to store it (no brute force to slow down) and keeps checks fast.
func NewRobotSecret() (secret, id, hash string, err error) {
	b := make([]byte, 40)
	if _, err := rand.Read(b); err != nil {
		return "", "", "", fmt.Errorf("random token: %w", err)
	}
	id = hex.EncodeToString(b[:8])
	secret = robotPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(b[8:])
	return secret, id, hashSecret(secret), nil
}

func hashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// robotID returns the id inside a robot token, or false if s is not one.
func robotID(s string) (string, bool) {
	rest, ok := strings.CutPrefix(s, robotPrefix)
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, "_")
	return id, ok && len(id) == 16
}

func sameHash(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
