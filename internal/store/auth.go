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

	// SigningKey returns the key that signs bearer tokens, storing
	// candidate first if no key exists yet. Every caller sharing the store
	// gets the same key, whoever stored it.
	SigningKey(ctx context.Context, candidate string) (string, error)
	// SharedCA returns the CA (PEM certificate then key) that generated
	// TLS uses on every replica sharing the store, storing candidate first
	// if none exists yet.
	SharedCA(ctx context.Context, candidate string) (string, error)
}
