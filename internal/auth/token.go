package auth

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-mirror/ferry/internal/audit"
	"github.com/ferry-mirror/ferry/internal/store"
)

// tokenResponse is the Docker token API answer; "token" and
// "access_token" carry the same value for old and OAuth2 clients.
type tokenResponse struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
}

// ServeToken answers the token endpoint (/v2/token): GET with Basic
// credentials (docker, podman, skopeo, crane), or POST with an OAuth2
// password grant form. No credentials get an anonymous token when
// anonymous pull is on. The token names the user only; what it may do is
// read from the store on each request.
func (a *Authorizer) ServeToken(w http.ResponseWriter, req *http.Request) {
	ctx := req.Context()
	user, pw, hasCreds := req.BasicAuth()
	switch req.Method {
	case http.MethodGet:
	case http.MethodPost:
		if err := req.ParseForm(); err != nil {
			tokenError(w, http.StatusBadRequest, "UNSUPPORTED", "unreadable form: "+err.Error())
			return
		}
		if req.PostForm.Get("grant_type") == "password" {
			user, pw, hasCreds = req.PostForm.Get("username"), req.PostForm.Get("password"), true
		}
	default:
		tokenError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "use GET with Basic credentials or POST with grant_type=password")
		return
	}
	c := claims{IssuedAt: a.now().Unix(), Expires: a.now().Add(TokenLifetime).Unix()}
	switch {
	case hasCreds:
		cred, err := a.checkBasic(ctx, ClientAddr(req), user, pw)
		if err != nil {
			var th *Throttled
			if errors.As(err, &th) {
				w.Header().Set("Retry-After", strconv.Itoa(th.RetryAfterSeconds()))
				a.audit.Record(ctx, audit.Event{Action: audit.Login, Remote: ClientAddr(req), Result: audit.Refused, Status: http.StatusTooManyRequests, Detail: th.Msg})
				tokenError(w, http.StatusTooManyRequests, "TOOMANYREQUESTS", th.Msg)
				return
			}
			if errors.Is(err, errBadCredentials) {
				w.Header().Set("WWW-Authenticate", `Basic realm="ferry"`)
				tokenError(w, http.StatusUnauthorized, "UNAUTHORIZED", err.Error())
				return
			}
			if errors.Is(err, store.ErrUnavailable) {
				// The user store is restarting: the client may ask again.
				a.log.WarnContext(ctx, "token request failed", "err", err)
				w.Header().Set("Retry-After", "1")
				tokenError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "the user store is unavailable for the moment; retry shortly")
				return
			}
			a.log.ErrorContext(ctx, "token request failed", "err", err)
			tokenError(w, http.StatusInternalServerError, "UNKNOWN", "internal error; see the server log")
			return
		}
		c.Subject, c.Credential = user, cred
		a.audit.Record(ctx, audit.Event{Action: audit.Login, User: user, Remote: ClientAddr(req), Result: audit.OK, Detail: credentialKind(cred)})
	case a.anon:
		c.Anonymous = true
	default:
		if on, err := a.Enforced(ctx); err == nil && !on {
			c.Anonymous = true // open registry: any token will do
			break
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="ferry"`)
		tokenError(w, http.StatusUnauthorized, "UNAUTHORIZED", "credentials required: log in with a user name and password or robot token")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	tok := a.signToken(ctx, c)
	json.NewEncoder(w).Encode(tokenResponse{Token: tok, AccessToken: tok,
		ExpiresIn: int(TokenLifetime / time.Second), IssuedAt: time.Unix(c.IssuedAt, 0).UTC().Format(time.RFC3339)})
}

func tokenError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}

// credentialKind says in the audit log what a login used, never the secret.
func credentialKind(cred string) string {
	if id, ok := strings.CutPrefix(cred, "r:"); ok {
		return "robot token " + id
	}
	return "password"
}
