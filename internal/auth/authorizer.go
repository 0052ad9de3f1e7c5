package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ferry-mirror/ferry/internal/store"
)

// Mode says when credentials are required.
type Mode string

const (
	// Auto enforces authentication as soon as one user exists.
	Auto Mode = "auto"
	// Off never asks for credentials.
	Off Mode = "off"
	// On always enforces, even with no users (nobody can log in).
	On Mode = "on"
)

// ParseMode checks a --auth value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Auto, Off, On:
		return m, nil
	}
	return "", fmt.Errorf("--auth %q: use auto (enforced once a user exists), on or off", s)
}

// Options configures an Authorizer.
type Options struct {
	Store         store.AuthStore
	Mode          Mode
	AnonymousPull bool // let requests without credentials pull
	Logger        *slog.Logger
}

// Authorizer checks the credentials of registry requests and issues
// bearer tokens. It keeps no state another replica would need: users,
// grants and the signing key live in the store.
type Authorizer struct {
	st     store.AuthStore
	mode   Mode
	anon   bool
	log    *slog.Logger
	signer signer
	now    func() time.Time

	mu        sync.Mutex
	usersAt   time.Time // when haveUsers was last read
	haveUsers bool
	basic     map[[32]byte]basicEntry // recently verified Basic credentials
}

type basicEntry struct {
	hash    string // the stored bcrypt hash the password matched
	expires time.Time
}

// How long facts read from the store are trusted before reading again.
const (
	usersTTL = 2 * time.Second
	basicTTL = 5 * time.Minute
	maxBasic = 1024
)

// New loads (creating once, shared by all replicas) the signing key and
// returns an Authorizer.
func New(ctx context.Context, o Options) (*Authorizer, error) {
	cand, err := newKeyCandidate()
	if err != nil {
		return nil, err
	}
	key, err := o.Store.SigningKey(ctx, cand)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	a := &Authorizer{st: o.Store, mode: o.Mode, anon: o.AnonymousPull, log: o.Logger,
		signer: signer{key: []byte(key)}, now: time.Now, basic: map[[32]byte]basicEntry{}}
	if a.mode == "" {
		a.mode = Auto
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	return a, nil
}

// Enforced reports whether requests need credentials now.
func (a *Authorizer) Enforced(ctx context.Context) (bool, error) {
	switch a.mode {
	case Off:
		return false, nil
	case On:
		return true, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.haveUsers || a.now().Sub(a.usersAt) < usersTTL {
		// Once users exist, stay enforced: deleting the last user must
		// not silently open the registry.
		return a.haveUsers, nil
	}
	has, err := a.st.HasUsers(ctx)
	if err != nil {
		return false, fmt.Errorf("auth: %w", err)
	}
	a.haveUsers, a.usersAt = has, a.now()
	return has, nil
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
		c, err := a.signer.verify(strings.TrimSpace(cred), a.now())
		if err != nil {
			return nil, a.refuse(req, "", "", err.Error()+"; log in again")
		}
		if c.Anonymous {
			return &Identity{Anonymous: true, anonPull: a.anon}, nil
		}
		return a.userIdentity(ctx, req, c.Subject)
	case strings.EqualFold(scheme, "Basic"):
		user, pw, ok := req.BasicAuth()
		if !ok {
			return nil, a.refuse(req, "", "", "malformed Basic credentials")
		}
		if err := a.checkBasic(ctx, user, pw); err != nil {
			return nil, a.refuseOr(req, err)
		}
		return a.userIdentity(ctx, req, user)
	}
	return nil, a.refuse(req, "", "", "unsupported authorization scheme "+scheme+": use Basic or Bearer")
}

func (a *Authorizer) userIdentity(ctx context.Context, req *http.Request, name string) (*Identity, error) {
	u, err := a.st.User(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, a.refuse(req, "", "", "user "+name+" no longer exists")
	}
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return &Identity{User: u.Name, grants: u.Grants}, nil
}

var errBadCredentials = errors.New("invalid username or password")

// checkBasic verifies a password or robot token. A verified password is
// remembered briefly against the stored hash it matched (keyed by a hash
// of the pair, never the password), so a client sending Basic on every
// request does not pay bcrypt each time, while a changed password or a
// deleted user takes effect at once.
func (a *Authorizer) checkBasic(ctx context.Context, user, pw string) error {
	if id, ok := robotID(pw); ok {
		t, err := a.st.Token(ctx, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("auth: %w", err)
		}
		if err != nil || t.User != user || !sameHash(t.SecretHash, hashSecret(pw)) {
			return errBadCredentials
		}
		return nil
	}
	u, err := a.st.User(ctx, user)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("auth: %w", err)
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
		return nil
	}
	if !checkPassword(hash, pw) {
		return errBadCredentials
	}
	a.mu.Lock()
	if len(a.basic) >= maxBasic {
		clear(a.basic)
	}
	a.basic[key] = basicEntry{hash: hash, expires: a.now().Add(basicTTL)}
	a.mu.Unlock()
	return nil
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
