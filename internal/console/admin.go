package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/ferry-mirror/ferry/internal/auth"
	"github.com/ferry-mirror/ferry/internal/store"
)

// admin lets only administrators (admin on every repository) through;
// everyone else gets 403, signed in or not.
func (c *Console) admin(view func(http.ResponseWriter, *request)) func(http.ResponseWriter, *request) {
	return func(w http.ResponseWriter, r *request) {
		if c.users == nil || !r.who.IsAdmin() {
			c.fail(w, r, http.StatusForbidden, "Only administrators (admin on every repository) may manage users, permissions and tokens.")
			return
		}
		view(w, r)
	}
}

type adminPage struct {
	Users    []store.User
	Tokens   []store.Token
	NewToken string // a token just created, shown once
	NewFor   string
	Message  string
	Perms    []string
}

func (c *Console) adminView(w http.ResponseWriter, r *request) {
	c.renderAdmin(w, r, http.StatusOK, adminPage{Message: r.URL.Query().Get("msg")})
}

func (c *Console) renderAdmin(w http.ResponseWriter, r *request, status int, p adminPage) {
	ctx := r.Context()
	var err error
	if p.Users, err = c.users.Users(ctx); err != nil {
		c.internal(w, r, "listing users", err)
		return
	}
	if p.Tokens, err = c.users.Tokens(ctx, ""); err != nil {
		c.internal(w, r, "listing tokens", err)
		return
	}
	p.Perms = []string{auth.Pull, auth.Push, auth.Delete, auth.Admin}
	c.render(w, r, status, "admin", "Admin", p)
}

// done redirects back to the admin page after a change (post/redirect/get).
func done(w http.ResponseWriter, r *request, msg string) {
	http.Redirect(w, r.Request, "/admin?"+url.Values{"msg": {msg}}.Encode(), http.StatusSeeOther)
}

func (c *Console) createToken(w http.ResponseWriter, r *request) {
	user, desc := strings.TrimSpace(r.PostFormValue("user")), strings.TrimSpace(r.PostFormValue("description"))
	secret, id, hash, err := auth.NewRobotSecret()
	if err != nil {
		c.internal(w, r, "creating a token", err)
		return
	}
	err = c.users.CreateToken(r.Context(), &store.Token{ID: id, User: user, SecretHash: hash, Description: desc})
	if errors.Is(err, store.ErrNotFound) {
		c.renderAdmin(w, r, http.StatusBadRequest, adminPage{Message: "No user " + user + "; pick one from the list."})
		return
	}
	if err != nil {
		c.internal(w, r, "creating a token", err)
		return
	}
	c.log.InfoContext(r.Context(), "robot token created in the console", "by", r.who.User, "user", user, "token", id)
	// Shown in this answer only, never stored: no redirect.
	c.renderAdmin(w, r, http.StatusOK, adminPage{NewToken: secret, NewFor: user,
		Message: "Token " + id + " created for " + user + ". Copy it now: it is not shown again."})
}

func (c *Console) revokeToken(w http.ResponseWriter, r *request) {
	id := r.PostFormValue("id")
	err := c.users.DeleteToken(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		done(w, r, "No token "+id+"; it may have been revoked already.")
		return
	}
	if err != nil {
		c.internal(w, r, "revoking a token", err)
		return
	}
	c.log.InfoContext(r.Context(), "robot token revoked in the console", "by", r.who.User, "token", id)
	done(w, r, "Token "+id+" revoked.")
}

func (c *Console) createUser(w http.ResponseWriter, r *request) {
	name, pw := strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("password")
	if err := auth.CheckUserName(name); err != nil {
		c.renderAdmin(w, r, http.StatusBadRequest, adminPage{Message: err.Error()})
		return
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		c.renderAdmin(w, r, http.StatusBadRequest, adminPage{Message: err.Error()})
		return
	}
	err = c.users.CreateUser(r.Context(), name, hash)
	if errors.Is(err, store.ErrConflict) {
		c.renderAdmin(w, r, http.StatusBadRequest, adminPage{Message: "User " + name + " exists already."})
		return
	}
	if err != nil {
		c.internal(w, r, "creating a user", err)
		return
	}
	c.log.InfoContext(r.Context(), "user created in the console", "by", r.who.User, "user", name)
	done(w, r, "User "+name+" created, with no permissions yet: grant some below.")
}

func (c *Console) deleteUser(w http.ResponseWriter, r *request) {
	name := r.PostFormValue("name")
	if name == r.who.User {
		c.renderAdmin(w, r, http.StatusBadRequest, adminPage{Message: "You cannot delete yourself here; another administrator can, or `ferry user delete`."})
		return
	}
	err := c.users.DeleteUser(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		done(w, r, "No user "+name+"; it may have been deleted already.")
		return
	}
	if err != nil {
		c.internal(w, r, "deleting a user", err)
		return
	}
	c.log.InfoContext(r.Context(), "user deleted in the console", "by", r.who.User, "user", name)
	done(w, r, "User "+name+" deleted, with its permissions and robot tokens.")
}

func (c *Console) grantArgs(r *request) (string, store.Grant, error) {
	perm, err := auth.ParsePerm(r.PostFormValue("perm"))
	if err != nil {
		return "", store.Grant{}, err
	}
	return strings.TrimSpace(r.PostFormValue("user")), store.Grant{Prefix: auth.NormalizePrefix(r.PostFormValue("prefix")), Perm: perm}, nil
}

func (c *Console) addGrant(w http.ResponseWriter, r *request) {
	user, g, err := c.grantArgs(r)
	if err != nil {
		c.renderAdmin(w, r, http.StatusBadRequest, adminPage{Message: err.Error()})
		return
	}
	err = c.users.AddGrant(r.Context(), user, g)
	if errors.Is(err, store.ErrNotFound) {
		c.renderAdmin(w, r, http.StatusBadRequest, adminPage{Message: "No user " + user + "; pick one from the list."})
		return
	}
	if err != nil {
		c.internal(w, r, "granting a permission", err)
		return
	}
	c.log.InfoContext(r.Context(), "permission granted in the console", "by", r.who.User, "user", user, "perm", g.Perm, "prefix", g.Prefix)
	done(w, r, user+" may now "+g.Perm+" "+showPrefix(g.Prefix)+".")
}

func (c *Console) revokeGrant(w http.ResponseWriter, r *request) {
	user, g, err := c.grantArgs(r)
	if err != nil {
		c.renderAdmin(w, r, http.StatusBadRequest, adminPage{Message: err.Error()})
		return
	}
	if user == r.who.User && g.Perm == auth.Admin && g.Prefix == "" {
		c.renderAdmin(w, r, http.StatusBadRequest, adminPage{Message: "You cannot take admin from yourself here; another administrator can, or `ferry user revoke`."})
		return
	}
	err = c.users.RemoveGrant(r.Context(), user, g)
	if errors.Is(err, store.ErrNotFound) {
		done(w, r, user+" did not have "+g.Perm+" on "+showPrefix(g.Prefix)+".")
		return
	}
	if err != nil {
		c.internal(w, r, "revoking a permission", err)
		return
	}
	c.log.InfoContext(r.Context(), "permission revoked in the console", "by", r.who.User, "user", user, "perm", g.Perm, "prefix", g.Prefix)
	done(w, r, user+" no longer has "+g.Perm+" on "+showPrefix(g.Prefix)+".")
}

func showPrefix(p string) string {
	if p == "" {
		return "every repository"
	}
	return p + "/…"
}
