// Package auth is who may do what on `ferry serve`: users with bcrypt
// passwords, robot tokens, bearer tokens signed with a key kept in the
// metadata store (so every replica verifies every other's), and
// permissions per repository prefix.
package auth

import (
	"fmt"
	"strings"

	"github.com/ferry-mirror/ferry/internal/store"
)

// Permissions a grant gives on a repository prefix. push and delete imply
// pull (both need to read what they change); admin implies all.
const (
	Pull   = "pull"
	Push   = "push"
	Delete = "delete"
	Admin  = "admin"
)

// ParsePerm checks a permission name.
func ParsePerm(s string) (string, error) {
	switch p := strings.ToLower(strings.TrimSpace(s)); p {
	case Pull, Push, Delete, Admin:
		return p, nil
	}
	return "", fmt.Errorf("unknown permission %q: use pull, push, delete or admin", s)
}

// NormalizePrefix turns a user's prefix into the stored form: "" for every
// repository ("*" and "/" too), else path components without a trailing
// slash, so "ocp/" and "ocp" both mean ocp and everything under it.
func NormalizePrefix(p string) string {
	p = strings.TrimSpace(p)
	if p == "*" {
		return ""
	}
	return strings.Trim(p, "/")
}

// underPrefix reports whether repo is prefix or below it, by path
// component: prefix "ocp" covers "ocp/release" but not "ocp2".
func underPrefix(repo, prefix string) bool {
	prefix = NormalizePrefix(prefix)
	return prefix == "" || repo == prefix || strings.HasPrefix(repo, prefix+"/")
}

// implies reports whether holding perm allows action.
func implies(perm, action string) bool {
	switch perm {
	case Admin:
		return true
	case Push, Delete:
		return action == Pull || action == perm
	}
	return perm == action
}

// Allowed reports whether grants allow action (pull, push or delete) on repo.
func Allowed(grants []store.Grant, repo, action string) bool {
	for _, g := range grants {
		if underPrefix(repo, g.Prefix) && implies(g.Perm, action) {
			return true
		}
	}
	return false
}

// CheckUserName checks a new user's name: it goes in Basic credentials
// (no colon) and in command lines and logs (no spaces).
func CheckUserName(n string) error {
	if n == "" || len(n) > 128 || strings.ContainsAny(n, ": \t\r\n") {
		return fmt.Errorf("invalid user name %q: use 1 to 128 characters without colons or spaces", n)
	}
	return nil
}
