// Package registry is the HTTP API of `ferry serve`: every route of the OCI
// distribution-spec v1.1 (which is also Docker Registry v2), health and
// metrics endpoints, over a store.BlobStore and a store.MetadataStore.
package registry

import (
	"context"
	_ "crypto/sha256" // digest algorithms the registry accepts
	_ "crypto/sha512"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferry-mirror/ferry/internal/audit"
	"github.com/ferry-mirror/ferry/internal/auth"
	"github.com/ferry-mirror/ferry/internal/runreport"
	"github.com/ferry-mirror/ferry/internal/store"
	"github.com/ferry-mirror/ferry/internal/upload"
)

// DefaultMaxManifestSize is the largest manifest accepted unless configured.
const DefaultMaxManifestSize = 4 << 20

// Options configures a Registry.
type Options struct {
	Blobs           store.BlobStore
	Meta            store.MetadataStore
	Logger          *slog.Logger
	MaxManifestSize int64 // 0: DefaultMaxManifestSize
	ReadOnly        bool  // refuse pushes and deletes, for maintenance
	// Registerer receives the metrics; nil: a private registry served at
	// /metrics.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// Auth checks credentials and permissions and serves /v2/token; nil:
	// everyone may do everything.
	Auth *auth.Authorizer
	// Audit records pushes and deletes; nil records nothing.
	Audit *audit.Logger
	// BlobRedirect, when positive, answers blob GETs with a redirect to a
	// URL of the blob store valid this long, if the store can make one
	// (S3), so the bytes do not flow through the registry.
	BlobRedirect time.Duration
	// BodyReadTimeout, when positive, ends a request whose body sends no
	// data for this long (each read renews it), so a client trickling
	// bytes cannot hold a connection and an upload open for ever.
	BodyReadTimeout time.Duration
	// MaxUploadsPerUser, when positive, is how many upload sessions one
	// user (or, with authentication off, one client address) may have
	// open, across every replica sharing the metadata store.
	MaxUploadsPerUser int
	// Console serves every path outside /v2/ and the operations
	// endpoints (the web console); nil: those paths are 404.
	Console http.Handler
}

// presigner is a blob store that can hand out direct download URLs.
type presigner interface {
	PresignGet(ctx context.Context, d digest.Digest, ttl time.Duration) (*url.URL, error)
}

// Registry serves the distribution API.
type Registry struct {
	blobs    store.BlobStore
	meta     store.MetadataStore
	log      *slog.Logger
	maxMan   int64
	readOnly bool
	metrics  *metrics
	gatherer prometheus.Gatherer
	uploads  *upload.Manager
	auth     *auth.Authorizer
	audit    *audit.Logger
	redirect time.Duration
	presign  presigner // nil unless redirects are on and the store can
	console  http.Handler

	bodyTimeout time.Duration
}

// New returns a Registry; call Handler to serve it.
func New(o Options) *Registry {
	r := &Registry{blobs: o.Blobs, meta: o.Meta, log: o.Logger, maxMan: o.MaxManifestSize, readOnly: o.ReadOnly, auth: o.Auth, audit: o.Audit,
		console: o.Console, bodyTimeout: o.BodyReadTimeout, uploads: upload.New(o.Blobs, o.Meta, o.MaxUploadsPerUser)}
	if p, ok := o.Blobs.(presigner); ok && o.BlobRedirect > 0 {
		r.presign, r.redirect = p, o.BlobRedirect
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.maxMan <= 0 {
		r.maxMan = DefaultMaxManifestSize
	}
	reg, gat := o.Registerer, o.Gatherer
	if reg == nil {
		pr := prometheus.NewRegistry()
		pr.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
		reg, gat = pr, pr
	}
	r.metrics = newMetrics(reg)
	if o.Auth != nil {
		reg.MustRegister(o.Auth.Collectors()...)
	}
	r.gatherer = gat
	return r
}

// Handler returns the HTTP handler: /v2/..., /healthz, /readyz, /metrics,
// wrapped in access logging and metrics.
func (r *Registry) Handler() http.Handler {
	return r.instrument(http.HandlerFunc(r.serve))
}

func (r *Registry) serve(w http.ResponseWriter, req *http.Request) {
	switch req.URL.Path {
	case "/healthz":
		w.Write([]byte("ok\n"))
		return
	case "/readyz":
		r.ready(w, req)
		return
	case "/metrics":
		r.serveMetrics(w, req)
		return
	}
	if r.console != nil && req.URL.Path != "/v2" && !strings.HasPrefix(req.URL.Path, "/v2/") {
		setRoute(w, "console")
		r.console.ServeHTTP(w, req)
		return
	}
	if r.auth != nil && req.URL.Path == "/v2/token" {
		r.auth.ServeToken(w, req)
		return
	}
	rt, ok := parseRoute(req.URL.Path)
	if !ok {
		r.fail(w, req, newError(errNameUnknown, "no such API route: "+req.URL.Path).withStatus(http.StatusNotFound))
		return
	}
	setRoute(w, rt.kind)
	var who *auth.Identity
	if act := auditAction(req.Method, rt.kind); act != "" && r.audit != nil {
		defer func() { r.recordAudit(req, w, act, rt, who) }()
	}
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if rt.kind == "base" {
		// Before authentication: clients ping /v2/ without credentials.
		w.Header().Set(runreport.Header, "1")
	}
	if rt.kind != "base" && rt.kind != "catalog" && !validName(rt.name) {
		r.fail(w, req, newError(errNameInvalid, "invalid repository name "+quote(rt.name)+
			": use lowercase letters, digits and single separators (. _ __ -) between path components, at most 255 characters").
			withDetail(map[string]string{"name": truncate(rt.name, 300)}))
		return
	}
	if r.auth != nil {
		var err error
		if who, err = r.authorize(req, rt); err != nil {
			r.fail(w, req, err)
			return
		}
	}
	rt.who = requester(req, who)
	if r.readOnly && req.Method != http.MethodGet && req.Method != http.MethodHead {
		r.fail(w, req, newError(errUnsupported, "the registry is in read-only mode; pushes and deletes are refused until it is restarted without --read-only"))
		return
	}
	var err error
	switch rt.kind {
	case "base":
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		if req.Method != http.MethodHead {
			w.Write([]byte("{}"))
		}
		return
	case "catalog":
		cat := r.catalog
		if who != nil {
			cat = r.catalogFor(who)
		}
		err = r.methods(w, req, map[string]handlerFunc{"GET": cat}, rt)
	case "tags":
		err = r.methods(w, req, map[string]handlerFunc{"GET": r.tags}, rt)
	case "referrers":
		err = r.methods(w, req, map[string]handlerFunc{"GET": r.referrers}, rt)
	case "manifest":
		err = r.methods(w, req, map[string]handlerFunc{"GET": r.getManifest, "HEAD": r.getManifest, "PUT": r.putManifest, "DELETE": r.deleteManifest}, rt)
	case "blob":
		err = r.methods(w, req, map[string]handlerFunc{"GET": r.getBlob, "HEAD": r.getBlob, "DELETE": r.deleteBlob}, rt)
	case "uploads":
		err = r.methods(w, req, map[string]handlerFunc{"POST": r.startUpload}, rt)
	case "upload":
		err = r.methods(w, req, map[string]handlerFunc{"GET": r.uploadStatus, "PATCH": r.patchUpload, "PUT": r.finishUpload, "DELETE": r.cancelUpload}, rt)
	}
	if err != nil {
		r.fail(w, req, err)
	}
}

type handlerFunc func(http.ResponseWriter, *http.Request, route) error

func (r *Registry) methods(w http.ResponseWriter, req *http.Request, hs map[string]handlerFunc, rt route) error {
	h, ok := hs[req.Method]
	if !ok {
		return newError(errUnsupported, "method "+req.Method+" is not allowed on "+req.URL.Path)
	}
	return h(w, req, rt)
}

// fail answers err: an apiError as itself, a client's broken body as 400,
// anything else as a logged 500.
func (r *Registry) fail(w http.ResponseWriter, req *http.Request, err error) {
	var ae *apiError
	var be *bodyError
	var re *auth.Refusal
	var th *auth.Throttled
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &th):
		w.Header().Set("Retry-After", strconv.Itoa(th.RetryAfterSeconds()))
		ae = newError(errTooManyRequests, th.Msg)
	case errors.As(err, &re) && re.Challenge() != "":
		w.Header().Set("WWW-Authenticate", re.Challenge())
		ae = newError(errUnauthorized, re.Msg)
	case errors.As(err, &re):
		ae = newError(errDenied, re.Msg)
	case errors.As(err, &be):
		ae = newError(errBlobUploadInvalid, "reading the request body failed: "+be.err.Error())
	case errors.Is(err, store.ErrUnavailable), backendUnreachable(err):
		// A store restarting or unreachable: nothing was half-done (writes
		// are transactions, uploads commit last), so the client may simply
		// send the request again, which balancers and clients do on 503.
		r.log.WarnContext(req.Context(), "store unavailable", "method", req.Method, "path", req.URL.Path, "err", err)
		w.Header().Set("Retry-After", "1")
		ae = newError(errUnavailable, "a storage backend is unavailable for the moment; retry the request shortly")
	default:
		r.log.ErrorContext(req.Context(), "request failed", "method", req.Method, "path", req.URL.Path, "err", err)
		ae = newError(errUnknown, "internal error; see the server log")
	}
	writeAPIError(w, req, ae)
}

// backendUnreachable reports a network failure talking to a store (the
// client's own connection failing is a bodyError, tested first).
func backendUnreachable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

// bodyError marks a failure to read the client's request body: the
// client's problem (or its connection's), never the server's.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return "request body: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// bodyReader tags read errors of the request body as bodyError.
type bodyReader struct{ r io.Reader }

func (b bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		return n, &bodyError{err}
	}
	return n, err
}

// requester names who sends req, for per-user limits: the user, or the
// client address when the request carries no user.
func requester(req *http.Request, who *auth.Identity) string {
	if who != nil && who.User != "" {
		return who.User
	}
	return auth.ClientAddr(req)
}

func quote(s string) string { return `"` + truncate(s, 300) + `"` }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// authorize checks the request's credentials for what its route does. A
// cross-repository mount from a repository the caller may not pull is
// turned into a plain upload, so it reveals nothing.
func (r *Registry) authorize(req *http.Request, rt route) (*auth.Identity, error) {
	repo, action := rt.name, auth.Pull
	switch {
	case rt.kind == "base":
		repo, action = "", ""
	case rt.kind == "catalog":
		repo, action = "", "catalog"
	case req.Method == http.MethodDelete && (rt.kind == "manifest" || rt.kind == "blob"):
		action = auth.Delete
	case rt.kind == "uploads" || rt.kind == "upload" || (rt.kind == "manifest" && req.Method == http.MethodPut):
		action = auth.Push
	}
	who, err := r.auth.Authorize(req, repo, action)
	if err != nil {
		return who, err // who is set for a 403: the audit trail names the user
	}
	// A mount without from may link the blob from any repository, which
	// the caller need not be allowed to read: only an open registry does it.
	if q := req.URL.Query(); rt.kind == "uploads" && q.Get("mount") != "" && !who.Can(q.Get("from"), auth.Pull) {
		q.Del("mount")
		q.Del("from")
		req.URL.RawQuery = q.Encode()
	}
	return who, nil
}

// catalogFor lists only the repositories who may pull, reading further
// pages of the store until n are found or the store is exhausted.
func (r *Registry) catalogFor(who *auth.Identity) handlerFunc {
	return func(w http.ResponseWriter, req *http.Request, _ route) error {
		n, last, aerr := pageArgs(req)
		if aerr != nil {
			return aerr
		}
		var repos []string
		for len(repos) < n {
			page, err := r.meta.Repositories(req.Context(), last, n)
			if err != nil {
				return err
			}
			for _, name := range page {
				if who.Can(name, auth.Pull) && len(repos) < n {
					repos = append(repos, name)
				}
			}
			if len(page) < n {
				break
			}
			last = page[len(page)-1]
		}
		nextLink(w, req.URL.Path, n, repos)
		return writeJSON(w, req, "application/json", struct {
			Repositories []string `json:"repositories"`
		}{repos})
	}
}
