package auth

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// SessionLifetime is how long a web console sign-in lasts. A session is
// a token like a bearer token, marked for the console: it is checked the
// same way on every request (the user reread, the credential it came from
// still the user's), so it needs no table shared by replicas and dies
// with the password or robot token it was opened with.
const SessionLifetime = 8 * time.Hour

const sessionUse = "console"

// ErrBadCredentials is a wrong user name, password or robot token.
var ErrBadCredentials = errBadCredentials

// OpenSession checks a user's password or robot token, sent from client
// address addr (failed sign-ins count against the same limits as failed
// logins), and returns a signed session value for a cookie, and when it
// expires.
func (a *Authorizer) OpenSession(ctx context.Context, addr, user, password string) (string, time.Time, error) {
	if a.mode == Off {
		return "", time.Time{}, errors.New("authentication is off on this registry: there is nothing to sign in to")
	}
	cred, err := a.checkBasic(ctx, addr, user, password)
	if err != nil {
		return "", time.Time{}, err
	}
	now := a.now()
	exp := now.Add(SessionLifetime)
	c := claims{Subject: user, Credential: cred, IssuedAt: now.Unix(), Expires: exp.Unix(), Use: sessionUse}
	return a.signToken(ctx, c), exp, nil
}

// Session returns who a console request comes from: the user of a valid
// session value, anonymous when there is none (whether anonymous may pull
// is the Identity's business), or everyone on an open registry. An invalid
// or ended session is a *Refusal.
func (a *Authorizer) Session(req *http.Request, session string) (*Identity, error) {
	ctx := req.Context()
	if a.mode == Off {
		return &Identity{open: true}, nil
	}
	if session == "" {
		return &Identity{Anonymous: true, anonPull: a.anon}, nil
	}
	c, err := a.verifyUse(ctx, session, sessionUse, SessionLifetime)
	if err != nil {
		return nil, &Refusal{Msg: "your session expired or is invalid; sign in again"}
	}
	return a.userIdentity(ctx, req, c.Subject, c.Credential)
}

// Open reports whether authentication is off (everyone may do everything).
func (id *Identity) Open() bool { return id.open }

// IsAdmin reports whether the identity holds admin on every repository:
// what managing users, permissions and tokens needs.
func (id *Identity) IsAdmin() bool {
	return !id.open && !id.Anonymous && Allowed(id.grants, "", Admin)
}
