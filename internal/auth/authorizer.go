package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/ferry-mirror/ferry/internal/audit"
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
	// Audit records logins; nil records nothing.
	Audit *audit.Logger
	// Box seals the signing keys in the store; required unless Mode is Off.
	Box *secretbox.Box
	// FailedLogins is how many failed logins a client address may make
	// per minute (a user name twice as many); 0: DefaultFailedLogins,
	// negative: no limit.
	FailedLogins int
	// PasswordChecks bounds the bcrypt checks run at once; 0: half the
	// CPUs, at least one.
	PasswordChecks int
}

// DefaultFailedLogins is the failed logins per minute a client address
// may make when Options.FailedLogins is 0.
const DefaultFailedLogins = 10

// Authorizer checks the credentials of registry requests and issues
// bearer tokens. It keeps no state another replica would need: users,
// grants and the signing key live in the store.
type Authorizer struct {
	st    store.AuthStore
	mode  Mode
	anon  bool
	log   *slog.Logger
	keys  ringStore
	audit *audit.Logger
	now   func() time.Time

	mu     sync.Mutex
	ring   *keyring                // signing keys, reread every RingRefresh
	ringAt time.Time               // when ring was read
	basic  map[[32]byte]basicEntry // recently verified Basic credentials

	byAddr  *failureLimiter // failed logins per client address
	byUser  *failureLimiter // failed logins per user name
	slots   checkSlots
	flights singleflight.Group // identical checks in flight share one bcrypt
	metrics authMetrics
}

type basicEntry struct {
	hash    string // the stored bcrypt hash the password matched
	expires time.Time
}

// farFuture marks a ring that is never reread.
var farFuture = time.Unix(1<<40, 0)

const (
	// basicTTL is how long a verified Basic password is remembered.
	basicTTL = 5 * time.Minute
	maxBasic = 1024
	// maxTracked bounds the addresses and user names whose failures are
	// counted.
	maxTracked = 10000
	// slotWait is how long a login waits for a free password check before
	// it is told to come back.
	slotWait = 10 * time.Second
)

// New loads the signing keys (creating them once, shared by all replicas
// through the store, sealed with o.Box) and returns an Authorizer.
func New(ctx context.Context, o Options) (*Authorizer, error) {
	a := &Authorizer{st: o.Store, mode: o.Mode, anon: o.AnonymousPull, log: o.Logger,
		keys: ringStore{o.Store, o.Box}, audit: o.Audit, now: time.Now, basic: map[[32]byte]basicEntry{},
		metrics: newAuthMetrics()}
	if o.FailedLogins == 0 {
		o.FailedLogins = DefaultFailedLogins
	}
	if o.FailedLogins > 0 {
		a.byAddr = newFailureLimiter(o.FailedLogins, time.Minute/time.Duration(o.FailedLogins), maxTracked)
		a.byUser = newFailureLimiter(2*o.FailedLogins, time.Minute/time.Duration(2*o.FailedLogins), maxTracked)
	}
	if o.PasswordChecks <= 0 {
		o.PasswordChecks = max(1, runtime.GOMAXPROCS(0)/2)
	}
	a.slots = checkSlots{ch: make(chan struct{}, o.PasswordChecks), wait: slotWait}
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
// the /v2/ login check, "catalog" the repository list. A user refused the
// action (a 403) is returned with the refusal, so callers can say who.
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
	return id, &Refusal{Msg: fmt.Sprintf("user %s may not %s %s; ask an administrator for `ferry user grant %s %s <prefix>`", id.User, action, repo, id.User, action)}
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
		cred, err := a.checkBasic(ctx, ClientAddr(req), user, pw)
		if err != nil {
			if errors.Is(err, errBadCredentials) {
				return nil, a.refuse(req, "", "", err.Error())
			}
			return nil, err
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

// checkBasic verifies a password or robot token sent from client address
// addr, logs a failure, and returns the credential it was, as tokens name
// it ("p:<fingerprint>" or "r:<id>"). A verified password is remembered briefly
// against the stored hash it matched (keyed by a hash of the pair, never
// the password), so a client sending Basic on every request does not pay
// bcrypt each time, while a changed password or a deleted user takes
// effect at once. Remembered credentials pass even while their address or
// name is throttled: an attack on a name must not lock out its owner's
// running pulls.
func (a *Authorizer) checkBasic(ctx context.Context, addr, user, pw string) (string, error) {
	u, err := a.st.User(ctx, user)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("auth: %w", err)
	}
	known := err == nil
	hash := ""
	if known {
		hash = u.PasswordHash
	}
	if id, robot := robotID(pw); robot {
		// A robot token has 256 random bits: guessing is hopeless and the
		// check is one lookup, so a right token passes even from a
		// throttled address; a wrong one still counts as a failure.
		ok, err := a.checkRobot(ctx, id, user, pw)
		if err != nil {
			return "", err
		}
		if ok {
			return "r:" + id, nil
		}
		a.byAddr.take(addr, a.now())
		a.byUser.take(user, a.now())
		return "", a.failed(ctx, addr, user, known)
	}
	cred := "p:" + passwordFingerprint(hash)
	key := sha256.Sum256([]byte(user + "\x00" + pw))
	if hash != "" && a.remembered(key, hash) {
		return cred, nil
	}
	if err := a.limited(addr, user); err != nil {
		a.metrics.throttled.WithLabelValues(err.reason).Inc()
		return "", err
	}
	// Identical credentials checked at once (a fleet of nodes starting
	// with one pull secret) share one check and its answer, and count as
	// one attempt.
	fkey := string(key[:]) + hash
	ch := a.flights.DoChan(fkey, func() (any, error) {
		if err := a.attempt(addr, user); err != nil {
			return false, err
		}
		ok, err := a.verify(context.WithoutCancel(ctx), pw, hash, key)
		if ok || err != nil {
			// Only a wrong secret counts against the address and the name.
			a.byAddr.refund(addr, a.now())
			a.byUser.refund(user, a.now())
		}
		if errors.Is(err, errBusy) {
			err = &Throttled{reason: "busy", RetryAfter: time.Second, Msg: "the server is busy checking passwords; retry in a second"}
		}
		return ok, err
	})
	var res singleflight.Result
	select {
	case res = <-ch:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	var th *Throttled
	if errors.As(res.Err, &th) {
		a.metrics.throttled.WithLabelValues(th.reason).Inc()
	}
	if res.Err != nil {
		return "", res.Err
	}
	if !res.Val.(bool) {
		return "", a.failed(ctx, addr, user, known)
	}
	return cred, nil
}

// failed logs and counts a refused login and returns errBadCredentials.
// The name is logged only when such a user exists: a password typed into
// the user field must not end up in the log.
func (a *Authorizer) failed(ctx context.Context, addr, user string, known bool) error {
	a.metrics.failures.Inc()
	name := "(unknown user, name not logged)"
	if known {
		name = user
	}
	a.log.InfoContext(ctx, "authentication failed", "remote", addr, "user", name)
	e := audit.Event{Action: audit.Login, Remote: addr, Result: audit.Failed, Detail: "invalid user name or password"}
	if known {
		e.User = user
	} else {
		e.Detail = "unknown user name (not recorded)"
	}
	a.audit.Record(ctx, e)
	return errBadCredentials
}

// checkRobot reports whether pw is robot token id of user.
func (a *Authorizer) checkRobot(ctx context.Context, id, user, pw string) (bool, error) {
	t, err := a.st.Token(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("auth: %w", err)
	}
	return t.User == user && sameHash(t.SecretHash, hashSecret(pw)), nil
}

// limited says why addr or user may not try now, or nil.
func (a *Authorizer) limited(addr, user string) *Throttled {
	now := a.now()
	if d := a.byAddr.wait(addr, now); d > 0 {
		return throttled("address", "from "+addr, d)
	}
	if d := a.byUser.wait(user, now); d > 0 {
		return throttled("user", "for this user name", d)
	}
	return nil
}

// attempt counts a check from addr for user against both limits, or says
// why it may not be made.
func (a *Authorizer) attempt(addr, user string) *Throttled {
	now := a.now()
	if d := a.byAddr.take(addr, now); d > 0 {
		return throttled("address", "from "+addr, d)
	}
	if d := a.byUser.take(user, now); d > 0 {
		a.byAddr.refund(addr, now)
		return throttled("user", "for this user name", d)
	}
	return nil
}

// remembered reports whether user and password (key) were verified
// recently against the stored hash.
func (a *Authorizer) remembered(key [32]byte, hash string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.basic[key]
	return ok && e.hash == hash && a.now().Before(e.expires)
}

// verify checks a password against hash ("" for an unknown user), one
// bcrypt at a time per slot, and remembers a good password.
func (a *Authorizer) verify(ctx context.Context, pw, hash string, key [32]byte) (bool, error) {
	if err := a.slots.acquire(ctx); err != nil {
		return false, err
	}
	a.metrics.checks.Inc()
	ok := checkPassword(hash, pw)
	a.slots.release()
	if !ok {
		return false, nil
	}
	a.mu.Lock()
	if len(a.basic) >= maxBasic {
		clear(a.basic)
	}
	a.basic[key] = basicEntry{hash: hash, expires: a.now().Add(basicTTL)}
	a.mu.Unlock()
	return true, nil
}

// ClientAddr is the request's peer address without its port. Proxy
// headers are not trusted: anyone can send them.
func ClientAddr(req *http.Request) string {
	if h, _, err := net.SplitHostPort(req.RemoteAddr); err == nil {
		return h
	}
	return req.RemoteAddr
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
