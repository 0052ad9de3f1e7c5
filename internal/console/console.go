// Package console is the web console of `ferry serve`: server-rendered
// pages (html/template, embedded assets, a little plain JavaScript) that
// show what the mirror holds to the users of the registry, each seeing
// only what they may pull, and let administrators manage robot tokens and
// permissions.
package console

import (
	"crypto/tls"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"

	"github.com/ferry-mirror/ferry/internal/auth"
	"github.com/ferry-mirror/ferry/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configures a Console.
type Options struct {
	Meta  store.MetadataStore
	Blobs store.BlobStore
	// Auth identifies sessions; required (an open registry has one with
	// auth.Off).
	Auth *auth.Authorizer
	// Users manages users, grants and tokens on the admin page; nil hides it.
	Users  store.AuthStore
	Logger *slog.Logger
	// Version is shown on the health page.
	Version string
	// TLS is the server's TLS configuration (nil for plain HTTP): the
	// health page shows its certificate's expiry.
	TLS *tls.Config
}

// Console serves the web console.
type Console struct {
	meta     store.MetadataStore
	blobs    store.BlobStore
	auth     *auth.Authorizer
	users    store.AuthStore
	log      *slog.Logger
	version  string
	tls      *tls.Config
	pages    map[string]*template.Template
	releases *digestCache[releaseFacts]
	catalogs *digestCache[catalogFacts]
	reports  reportCache
}

// New parses the templates and returns a Console.
func New(o Options) (*Console, error) {
	if o.Auth == nil {
		return nil, errors.New("console: no authorizer")
	}
	c := &Console{meta: o.Meta, blobs: o.Blobs, auth: o.Auth, users: o.Users, log: o.Logger,
		version: o.Version, tls: o.TLS, pages: map[string]*template.Template{},
		releases: newDigestCache[releaseFacts](4096), catalogs: newDigestCache[catalogFacts](32)}
	if c.log == nil {
		c.log = slog.Default()
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, err
		}
		c.pages[base] = t
	}
	return c, nil
}

// Handler returns the console's routes. Every page passes through
// c.page, which sets the security headers and finds who is asking.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	fileServer := http.StripPrefix("/static/", http.FileServerFS(static))
	mux.Handle("GET /static/", securityHeaders(fileServer))
	mux.Handle("GET /{$}", c.page(false, func(w http.ResponseWriter, r *request) {
		http.Redirect(w, r.Request, "/repositories", http.StatusSeeOther)
	}))
	mux.Handle("GET /login", c.page(true, c.loginForm))
	mux.Handle("POST /login", c.page(true, c.login))
	mux.Handle("POST /logout", c.page(true, c.logout))
	mux.Handle("GET /repositories", c.page(false, c.repositories))
	mux.Handle("GET /repository", c.page(false, c.repository))
	mux.Handle("GET /image", c.page(false, c.image))
	mux.Handle("GET /releases", c.page(false, c.releasesView))
	mux.Handle("GET /catalogs", c.page(false, c.catalogsView))
	mux.Handle("GET /runs", c.page(false, c.runs))
	mux.Handle("GET /run", c.page(false, c.run))
	mux.Handle("GET /health", c.page(false, c.health))
	mux.Handle("GET /storage", c.page(false, c.admin(c.storage)))
	mux.Handle("GET /admin", c.page(false, c.admin(c.adminView)))
	mux.Handle("POST /admin/users", c.page(false, c.admin(c.createUser)))
	mux.Handle("POST /admin/users/delete", c.page(false, c.admin(c.deleteUser)))
	mux.Handle("POST /admin/tokens", c.page(false, c.admin(c.createToken)))
	mux.Handle("POST /admin/tokens/revoke", c.page(false, c.admin(c.revokeToken)))
	mux.Handle("POST /admin/grants", c.page(false, c.admin(c.addGrant)))
	mux.Handle("POST /admin/grants/revoke", c.page(false, c.admin(c.revokeGrant)))
	mux.Handle("/", c.page(true, func(w http.ResponseWriter, r *request) {
		c.fail(w, r, http.StatusNotFound, "There is no page "+r.URL.Path+" here; the registry API is under /v2/.")
	}))
	return mux
}
