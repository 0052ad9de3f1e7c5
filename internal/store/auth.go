package store

import (
	"context"
	"time"
)

// User is an account of the registry. PasswordHash is a bcrypt hash.
type User struct {
	Name         string
	PasswordHash string
	Created      time.Time
	Grants       []Grant
}

// Grant gives a permission (pull, push, delete, admin) on every repository
// under Prefix ("" or "*" for all).
type Grant struct {
	Prefix string
	Perm   string
}

// Token is a robot token: a secret usable as the user's password. Only its
// SHA-256 is stored.
type Token struct {
	ID          string
	User        string
	SecretHash  string
	Description string
	Created     time.Time
}

// AuthStore holds users, grants, robot tokens and the token signing key.
// The SQL store implements it beside MetadataStore, on both engines.
type AuthStore interface {
	// CreateUser adds a user; ErrConflict if the name is taken.
	CreateUser(ctx context.Context, name, passwordHash string) error
	// SetPassword replaces a user's hash; ErrNotFound if unknown.
	SetPassword(ctx context.Context, name, passwordHash string) error
	// DeleteUser removes a user with its grants and tokens; ErrNotFound if
	// unknown.
	DeleteUser(ctx context.Context, name string) error
	// User returns a user with its grants; ErrNotFound if unknown.
	User(ctx context.Context, name string) (*User, error)
	// Users lists every user with its grants, by name.
	Users(ctx context.Context) ([]User, error)
	// HasUsers reports whether any user exists.
	HasUsers(ctx context.Context) (bool, error)
	// AddGrant gives a user a permission (idempotent); ErrNotFound if the
	// user is unknown.
	AddGrant(ctx context.Context, name string, g Grant) error
	// RemoveGrant takes it back; ErrNotFound if it was not given.
	RemoveGrant(ctx context.Context, name string, g Grant) error

	// CreateToken stores a robot token; ErrNotFound if the user is unknown.
	CreateToken(ctx context.Context, t *Token) error
	// Token returns a token by id; ErrNotFound if unknown.
	Token(ctx context.Context, id string) (*Token, error)
	// Tokens lists a user's tokens ("" for everyone's).
	Tokens(ctx context.Context, user string) ([]Token, error)
	// DeleteToken revokes a token; ErrNotFound if unknown.
	DeleteToken(ctx context.Context, id string) error

	// Secret returns the value stored under id, storing candidate first
	// if nothing is stored there yet. Every caller sharing the store gets
	// the same value, whoever stored it: this is how replicas agree on the
	// token signing keys and the generated CA with no configuration.
	Secret(ctx context.Context, id SecretID, candidate string) (string, error)
	// SwapSecret replaces the value under id with new if it is still old,
	// and reports whether it did (false: another writer came first).
	SwapSecret(ctx context.Context, id SecretID, old, new string) (bool, error)
}

// SecretID names a row of the secrets every replica shares.
type SecretID int

// The shared secrets. The numbers are the signing_keys rows earlier
// versions wrote (1: the token signing key, 2: the shared CA), so a store
// they created keeps its values.
const (
	SecretSigningKeys SecretID = 1 // the bearer-token signing keyring
	SecretSharedCA    SecretID = 2 // the generated TLS CA, certificate and key
	SecretAuthEnabled SecretID = 3 // set once authentication was ever on
)
