package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ferry-mirror/ferry/internal/secretbox"
	"github.com/ferry-mirror/ferry/internal/store"
)

// Mode says whether credentials are required.
type Mode string

const (
	// On enforces authentication, the default.
	On Mode = "on"
	// Off never asks for credentials: an open registry.
	Off Mode = "off"
)

// ParseMode checks a --auth value. "auto", which once meant "open until
// the first user exists", now means on: a registry is never open unless
// asked for with --auth=off.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case On, Off:
		return m, nil
	case "auto":
		return On, nil
	}
	return "", fmt.Errorf("--auth %q: use on (the default) or off (an open registry)", s)
}

// Options configures an Authorizer.
type Options struct {
	Store         store.AuthStore
	Mode          Mode
	AnonymousPull bool // let requests without credentials pull
	Logger        *slog.Logger
	// Box seals the signing keys in the store; required unless Mode is Off.
	Box *secretbox.Box
}

// Authorizer checks the credentials of registry requests and issues
// bearer tokens. It keeps no state another replica would need: users,
// grants and the signing key live in the store.
type Authorizer struct {
	st   store.AuthStore
	mode Mode
	anon bool
	log  *slog.Logger
	keys ringStore
	now  func() time.Time

	mu     sync.Mutex
	ring   *keyring                // signing keys, reread every RingRefresh
	ringAt time.Time               // when ring was read
	basic  map[[32]byte]basicEntry // recently verified Basic credentials
}

type basicEntry struct {
	hash    string // the stored bcrypt hash the password matched
	expires time.Time
}

// farFuture marks a ring that is never reread.
var farFuture = time.Unix(1<<40, 0)

// How long a verified Basic password is remembered.
const (
	basicTTL = 5 * time.Minute
	maxBasic = 1024
)

// New loads the signing keys (creating them once, shared by all replicas
// through the store, sealed with o.Box) and returns an Authorizer.
func New(ctx context.Context, o Options) (*Authorizer, error) {
	a := &Authorizer{st: o.Store, mode: o.Mode, anon: o.AnonymousPull, log: o.Logger,
		keys: ringStore{o.Store, o.Box}, now: time.Now, basic: map[[32]byte]basicEntry{}}
	if a.mode == "" {
		a.mode = On
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.mode == Off {
		// Tokens are never checked: sign with a key of this process only,
		// and leave the store's keys alone.
		k, err := newRingKey(a.now())
		if err != nil {
			return nil, err
		}
		a.ring, a.ringAt = &keyring{Keys: []ringKey{k}}, farFuture
		return a, nil
	}
	if o.Box == nil {
		return nil, errors.New("auth: no secrets key to seal the signing keys with")
	}
	// Prune at start too, so a rotated-out key does not outlive its
	// tokens by more than the time between restarts or rotations.
	r, err := a.keys.update(ctx, a.now(), func(r *keyring) (bool, error) { return r.prune(a.now()), nil })
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	a.ring, a.ringAt = r, a.now()
	return a, nil
}

// Enforced reports whether requests need credentials.
func (a *Authorizer) Enforced(context.Context) (bool, error) {
	return a.mode != Off, nil
}

// currentRing returns the signing keys, rereading them when they are
// older than maxAge; a failed reread keeps the keys already known.
func (a *Authorizer) currentRing(ctx context.Context, maxAge time.Duration) *keyring {
	a.mu.Lock()
	r, at := a.ring, a.ringAt
	a.mu.Unlock()
	if a.now().Sub(at) < maxAge || at == farFuture {
		return r
	}
	fresh, _, err := a.keys.load(ctx, a.now())
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.log.WarnContext(ctx, "rereading the signing keys failed; using the ones known", "err", err)
		a.ringAt = a.now() // do not hammer a failing store
		return a.ring
	}
	a.ring, a.ringAt = fresh, a.now()
	return fresh
}

// signToken signs c with the newest signing key.
func (a *Authorizer) signToken(ctx context.Context, c claims) string {
	return sign(a.currentRing(ctx, RingRefresh).newest(), c)
}

// verifyToken checks a bearer token, rereading the keys once (at most
// every second) when it names a key this replica has not seen: another
// replica may have rotated.
func (a *Authorizer) verifyToken(ctx context.Context, tok string) (claims, error) {
	return a.verifyUse(ctx, tok, "", TokenLifetime)
}

func (a *Authorizer) verifyUse(ctx context.Context, tok, use string, maxLife time.Duration) (claims, error) {
	c, err := a.currentRing(ctx, RingRefresh).verify(tok, a.now(), use, maxLife)
	if errors.Is(err, errUnknownKey) {
		c, err = a.currentRing(ctx, time.Second).verify(tok, a.now(), use, maxLife)
	}
	if err != nil {
		return claims{}, errBadToken
	}
	return c, nil
}

// Refusal is a refused request: a 401 with Challenge set (no or bad
// credentials) or a 403 (authenticated, not allowed).
type Refusal struct {
	Msg       string
	challenge string
}

func (r *Refusal) Error() string { return r.Msg }

// Challenge is the WWW-Authenticate value of a 401, "" for a 403.
func (r *Refusal) Challenge() string { return r.challenge }

// Identity is who a request comes from.
type Identity struct {
	User      string // "" for anonymous
	open      bool   // authentication not enforced
	anonPull  bool
	grants    []store.Grant
	Anonymous bool
}

// Can reports whether the identity may do action (pull, push, delete) on repo.
func (id *Identity) Can(repo, action string) bool {
	switch {
	case id.open:
		return true
	case id.Anonymous:
		return id.anonPull && action == Pull
	}
	return Allowed(id.grants, repo, action)
}

// Authorize checks req for action on repo. action "" (with repo "") is
// the /v2/ login check, "catalog" the repository list.
func (a *Authorizer) Authorize(req *http.Request, repo, action string) (*Identity, error) {
	ctx := req.Context()
	on, err := a.Enforced(ctx)
	if err != nil {
		return nil, err
	}
	if !on {
		return &Identity{open: true}, nil
	}
	id, err := a.identify(ctx, req)
	if err != nil {
		return nil, err
	}
	hasHeader := req.Header.Get("Authorization") != ""
	switch {
	case id.Anonymous && action == "" && !hasHeader:
		// Clients learn the challenge from /v2/; answering 200 here would
		// make `podman login` succeed with any password.
		return nil, a.refuse(req, repo, action, "authentication required")
	case action == "" || action == "catalog":
		if id.Anonymous && !a.anon {
			return nil, a.refuse(req, repo, action, "authentication required")
		}
		return id, nil
	case id.Can(repo, action):
		return id, nil
	case id.Anonymous:
		return nil, a.refuse(req, repo, action, "authentication required to "+action+" "+repo)
	}
	return nil, &Refusal{Msg: fmt.Sprintf("user %s may not %s %s; ask an administrator for `ferry user grant %s %s <prefix>`", id.User, action, repo, id.User, action)}
}

// identify reads the request's credentials: none (anonymous), Basic
// (password or robot token) or Bearer (a token from /v2/token).
func (a *Authorizer) identify(ctx context.Context, req *http.Request) (*Identity, error) {
	h := req.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(h, " ")
	switch {
	case h == "":
		return &Identity{Anonymous: true, anonPull: a.anon}, nil
	case strings.EqualFold(scheme, "Bearer"):
		c, err := a.verifyToken(ctx, strings.TrimSpace(cred))
		if err != nil {
			return nil, a.refuse(req, "", "", err.Error()+"; log in again")
		}
		if c.Anonymous {
			return &Identity{Anonymous: true, anonPull: a.anon}, nil
		}
		return a.userIdentity(ctx, req, c.Subject, c.Credential)
	case strings.EqualFold(scheme, "Basic"):
		user, pw, ok := req.BasicAuth()
		if !ok {
			return nil, a.refuse(req, "", "", "malformed Basic credentials")
		}
		cred, err := a.checkBasic(ctx, user, pw)
		if err != nil {
			return nil, a.refuseOr(req, err)
		}
		return a.userIdentity(ctx, req, user, cred)
	}
	return nil, a.refuse(req, "", "", "unsupported authorization scheme "+scheme+": use Basic or Bearer")
}

// userIdentity loads a user's grants, checking that the credential the
// request's token was obtained with is still the user's: a changed
// password, a revoked robot token or a deleted (even re-created) user ends
// every token obtained with the old credential at once, on every replica.
func (a *Authorizer) userIdentity(ctx context.Context, req *http.Request, name, cred string) (*Identity, error) {
	u, err := a.st.User(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, a.refuse(req, "", "", "user "+name+" no longer exists")
	}
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	switch kind, v, _ := strings.Cut(cred, ":"); kind {
	case "p":
		if !sameHash(v, passwordFingerprint(u.PasswordHash)) {
			return nil, a.refuse(req, "", "", "the password of "+name+" changed since this token was issued; log in again")
		}
	case "r":
		t, err := a.st.Token(ctx, v)
		if errors.Is(err, store.ErrNotFound) || (err == nil && t.User != name) {
			return nil, a.refuse(req, "", "", "the robot token this token was obtained with was revoked; log in with a valid one")
		}
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
	default:
		return nil, a.refuse(req, "", "", "token names no credential; log in again")
	}
	return &Identity{User: u.Name, grants: u.Grants}, nil
}

// passwordFingerprint names a stored password hash in tokens without
// carrying it: bcrypt salts every hash, so a new password, or the same
// one set again, or a re-created user, changes it.
func passwordFingerprint(hash string) string {
	sum := sha256.Sum256([]byte("ferry token credential\x00" + hash))
	return hex.EncodeToString(sum[:12])
}

var errBadCredentials = errors.New("invalid username or password")

// checkBasic verifies a password or robot token and returns the
// credential it was, as tokens name it ("p:<fingerprint>" or "r:<id>"). A
// verified password is remembered briefly against the stored hash it
// matched (keyed by a hash of the pair, never the password), so a client
// sending Basic on every request does not pay bcrypt each time, while a
// changed password or a deleted user takes effect at once.
func (a *Authorizer) checkBasic(ctx context.Context, user, pw string) (string, error) {
	if id, ok := robotID(pw); ok {
		t, err := a.st.Token(ctx, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", fmt.Errorf("auth: %w", err)
		}
		if err != nil || t.User != user || !sameHash(t.SecretHash, hashSecret(pw)) {
			return "", errBadCredentials
		}
		return "r:" + id, nil
	}
	u, err := a.st.User(ctx, user)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("auth: %w", err)
	}
	hash := ""
	if err == nil {
		hash = u.PasswordHash
	}
	key := sha256.Sum256([]byte(user + "\x00" + pw))
	a.mu.Lock()
	e, ok := a.basic[key]
	a.mu.Unlock()
	if ok && hash != "" && e.hash == hash && a.now().Before(e.expires) {
		return "p:" + passwordFingerprint(hash), nil
	}
	if !checkPassword(hash, pw) {
		return "", errBadCredentials
	}
	a.mu.Lock()
	if len(a.basic) >= maxBasic {
		clear(a.basic)
	}
	a.basic[key] = basicEntry{hash: hash, expires: a.now().Add(basicTTL)}
	a.mu.Unlock()
	return "p:" + passwordFingerprint(hash), nil
}

func (a *Authorizer) refuseOr(req *http.Request, err error) error {
	if errors.Is(err, errBadCredentials) {
		a.log.InfoContext(req.Context(), "authentication failed", "remote", req.RemoteAddr)
		return a.refuse(req, "", "", err.Error())
	}
	return err
}

// refuse builds a 401 whose challenge sends clients to /v2/token with the
// scope they need.
func (a *Authorizer) refuse(req *http.Request, repo, action, msg string) *Refusal {
	realm, service := a.realm(req)
	ch := fmt.Sprintf(`Bearer realm=%q,service=%q`, realm, service)
	if repo != "" && action != "" {
		scope := "pull"
		if action != Pull {
			scope = "pull," + action
		}
		ch += fmt.Sprintf(`,scope="repository:%s:%s"`, repo, scope)
	}
	return &Refusal{Msg: msg, challenge: ch}
}

func (a *Authorizer) realm(req *http.Request) (realm, service string) {
	scheme := "http"
	if req.TLS != nil || strings.EqualFold(req.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + req.Host + "/v2/token", req.Host
}
