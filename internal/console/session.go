package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-mirror/ferry/internal/auth"
)

// Cookie names. The session is a signed token from the authorizer: any
// replica verifies it, and it dies with the credential it was opened with.
const (
	sessionCookie = "ferry_session"
	csrfCookie    = "ferry_csrf"
)

// csp allows no inline script or style: everything comes from /static/.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// request is a console request with who sent it.
type request struct {
	*http.Request
	who     *auth.Identity
	session string // the session cookie's value, "" when none
	csrf    string // the token forms must carry
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(w, req)
	})
}

// page wraps a view: security headers, the identity behind the session
// cookie, the CSRF check of every POST, and a redirect to sign-in when
// the visitor may see nothing (public pages excepted).
func (c *Console) page(public bool, view func(http.ResponseWriter, *request)) http.Handler {
	return securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		r := &request{Request: req}
		if ck, err := req.Cookie(sessionCookie); err == nil {
			r.session = ck.Value
		}
		who, err := c.auth.Session(req, r.session)
		var refusal *auth.Refusal
		switch {
		case errors.As(err, &refusal):
			// An ended session: forget it and sign in again.
			c.clearSession(w, req)
			r.session = ""
			if public {
				who, _ = c.auth.Session(req, "")
				break
			}
			c.toLogin(w, r, true)
			return
		case err != nil:
			c.log.ErrorContext(req.Context(), "console session", "err", err)
			c.fail(w, r, http.StatusInternalServerError, "The registry could not check your session; see the server log.")
			return
		}
		r.who = who
		r.csrf = c.csrfToken(w, r)
		if req.Method == http.MethodPost && !c.csrfOK(r) {
			c.fail(w, r, http.StatusForbidden, "This form was not sent from this console (missing or wrong CSRF token). Reload the page and try again.")
			return
		}
		if !public && who.Anonymous && !who.Can("", auth.Pull) {
			c.toLogin(w, r, false)
			return
		}
		view(w, r)
	}))
}

// toLogin sends the visitor to sign in, then back. The sign-in page shows
// only messages of its own, never text from the URL, so a crafted link
// cannot put words in the registry's mouth.
func (c *Console) toLogin(w http.ResponseWriter, r *request, ended bool) {
	q := url.Values{"next": {r.URL.RequestURI()}}
	if ended {
		q.Set("ended", "1")
	}
	http.Redirect(w, r.Request, "/login?"+q.Encode(), http.StatusSeeOther)
}

// secure reports whether the browser talks HTTPS to us, directly or
// through a TLS-terminating proxy (as the registry's token realm does).
func secure(req *http.Request) bool {
	return req.TLS != nil || strings.EqualFold(req.Header.Get("X-Forwarded-Proto"), "https")
}

// csrfToken returns the token this browser's forms carry: a hash of a
// random cookie and the session, so neither a cross-site page (which
// cannot read either cookie) nor someone planting the random cookie
// alone can forge it. It sets the random cookie on first visit.
func (c *Console) csrfToken(w http.ResponseWriter, r *request) string {
	seed := ""
	if ck, err := r.Cookie(csrfCookie); err == nil && len(ck.Value) >= 32 {
		seed = ck.Value
	} else {
		b := make([]byte, 32)
		rand.Read(b)
		seed = base64.RawURLEncoding.EncodeToString(b)
		http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: seed, Path: "/", HttpOnly: true,
			Secure: secure(r.Request), SameSite: http.SameSiteStrictMode})
	}
	sum := sha256.Sum256([]byte("ferry console csrf\x00" + seed + "\x00" + r.session))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (c *Console) csrfOK(r *request) bool {
	if _, err := r.Cookie(csrfCookie); err != nil {
		return false
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return false
	}
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(r.csrf)) == 1
}

func (c *Console) setSession(w http.ResponseWriter, req *http.Request, v string, exp time.Time) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: v, Path: "/", Expires: exp,
		MaxAge: int(time.Until(exp) / time.Second), HttpOnly: true, Secure: secure(req), SameSite: http.SameSiteStrictMode})
}

func (c *Console) clearSession(w http.ResponseWriter, req *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: secure(req), SameSite: http.SameSiteStrictMode})
}

func (c *Console) loginForm(w http.ResponseWriter, r *request) {
	msg := ""
	if r.URL.Query().Get("ended") != "" {
		msg = "Your session ended (it expired, or its password or token changed). Sign in again."
	}
	c.render(w, r, http.StatusOK, "login", "Sign in", map[string]string{
		"Next": safeNext(r.URL.Query().Get("next")), "Msg": msg})
}

func (c *Console) login(w http.ResponseWriter, r *request) {
	user, pw := strings.TrimSpace(r.PostFormValue("user")), r.PostFormValue("password")
	next := safeNext(r.PostFormValue("next"))
	v, exp, err := c.auth.OpenSession(r.Context(), auth.ClientAddr(r.Request), user, pw)
	if err != nil {
		status, msg := http.StatusUnauthorized, "Wrong user name, password or robot token."
		var th *auth.Throttled
		switch {
		case errors.As(err, &th):
			w.Header().Set("Retry-After", strconv.Itoa(th.RetryAfterSeconds()))
			status, msg = http.StatusTooManyRequests, th.Msg
		case !errors.Is(err, auth.ErrBadCredentials):
			status, msg = http.StatusBadRequest, err.Error()
			if !strings.Contains(msg, "authentication is off") {
				c.log.ErrorContext(r.Context(), "console sign-in", "err", err)
				status, msg = http.StatusInternalServerError, "Signing in failed; see the server log."
			}
		}
		c.render(w, r, status, "login", "Sign in", map[string]string{"Next": next, "Msg": msg, "User": user})
		return
	}
	c.setSession(w, r.Request, v, exp)
	http.Redirect(w, r.Request, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *request) {
	c.clearSession(w, r.Request)
	http.Redirect(w, r.Request, "/login", http.StatusSeeOther)
}

// safeNext keeps a post-sign-in redirect on this site.
func safeNext(s string) string {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.HasPrefix(s, "/\\") {
		return "/repositories"
	}
	return s
}
