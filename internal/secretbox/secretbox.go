// Package secretbox seals the secrets Ferry keeps in its metadata store
// (the bearer-token signing keys, the generated CA's key) with a key kept
// outside that store, so whoever reads the database (a copied SQLite file,
// a PostgreSQL dump or replica) cannot forge tokens or certificates.
//
// The key is 32 random bytes, base64 in a 0600 file (<data-dir>/secrets.key
// by default) or in the FERRY_SECRETS_KEY environment variable, which every
// replica sharing one metadata store must be given alike.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// KeyEnv holds the key itself (base64), for replicas that share a store.
const KeyEnv = "FERRY_SECRETS_KEY"

const prefix = "ferry-sealed:v1:"

// ErrNotSealed is returned by Open for a value stored in plain text, as
// versions before sealing stored them.
var ErrNotSealed = errors.New("value is not sealed")

// Box seals and opens values with AES-256-GCM.
type Box struct {
	aead cipher.AEAD
	// Fingerprint names the key in messages without revealing it.
	Fingerprint string
}

// New returns a Box for a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secrets key: %d bytes, want 32 (generate one with: head -c 32 /dev/urandom | base64)", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	sum := sha256.Sum256(key)
	return &Box{aead: aead, Fingerprint: hex.EncodeToString(sum[:4])}, nil
}

// Parse reads a base64 key, as written to a key file or KeyEnv.
func Parse(text string) (*Box, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil {
		return nil, fmt.Errorf("secrets key is not base64: %w (generate one with: head -c 32 /dev/urandom | base64)", err)
	}
	return New(key)
}

// Generate returns a new random key, base64.
func Generate() (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("random secrets key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(key), nil
}

// LoadFile reads the key file at path. With create, a missing file is
// made with a new key (mode 0600). A file other local users can read is
// refused: the key is worth as much as the database it protects.
func LoadFile(path string, create bool) (*Box, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		text, gerr := Generate()
		if gerr != nil {
			return nil, gerr
		}
		f, cerr := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(cerr, fs.ErrExist) {
			return LoadFile(path, false) // another process made it first
		}
		if cerr != nil {
			return nil, fmt.Errorf("create secrets key: %w", cerr)
		}
		_, werr := f.WriteString(text + "\n")
		if serr := f.Sync(); werr == nil {
			werr = serr
		}
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return nil, fmt.Errorf("write secrets key %s: %w", path, werr)
		}
		return Parse(text)
	}
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secrets key %s is readable by other users (mode %v): run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	box, err := Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return box, nil
}

// Seal encrypts plain for the slot named purpose; the purpose is
// authenticated, so a value sealed for one slot does not open in another.
func (b *Box) Seal(purpose, plain string) string {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("secretbox: no randomness: " + err.Error()) // crypto/rand never fails on Linux
	}
	out := b.aead.Seal(nonce, nonce, []byte(plain), []byte(purpose))
	return prefix + base64.RawStdEncoding.EncodeToString(out)
}

// Sealed reports whether v was written by Seal.
func Sealed(v string) bool { return strings.HasPrefix(v, prefix) }

// Open decrypts a value sealed for purpose. ErrNotSealed means a plain
// value; any other error, a value sealed with another key or damaged.
func (b *Box) Open(purpose, v string) (string, error) {
	rest, ok := strings.CutPrefix(v, prefix)
	if !ok {
		return "", ErrNotSealed
	}
	raw, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil || len(raw) < b.aead.NonceSize() {
		return "", fmt.Errorf("sealed %s is damaged", purpose)
	}
	n := b.aead.NonceSize()
	plain, err := b.aead.Open(nil, raw[:n], raw[n:], []byte(purpose))
	if err != nil {
		return "", fmt.Errorf("the %s in the metadata store was sealed with another secrets key than this one (fingerprint %s): give every replica the same key (%s, or the same --secrets-key-file); after a restore, put back the secrets.key of the backup", purpose, b.Fingerprint, KeyEnv)
	}
	return string(plain), nil
}
