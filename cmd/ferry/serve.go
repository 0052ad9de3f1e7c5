package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"

	"github.com/ferry-mirror/ferry/internal/audit"
	"github.com/ferry-mirror/ferry/internal/auth"
	"github.com/ferry-mirror/ferry/internal/certs"
	"github.com/ferry-mirror/ferry/internal/console"
	"github.com/ferry-mirror/ferry/internal/registry"
	"github.com/ferry-mirror/ferry/internal/secretbox"
	"github.com/ferry-mirror/ferry/internal/store"
)

type serveOptions struct {
	storeFlags
	listen          string
	plainHTTP       bool
	tlsCert         string
	tlsKey          string
	hostnames       []string
	readOnly        bool
	maxManifestSize int64
	logLevel        string
	config          string
	authMode        string
	anonymousPull   bool
	uploadMaxAge    time.Duration
	blobRedirect    bool
	failedLogins    int
	maxConnections  int
	bodyReadTimeout time.Duration
	maxUploads      int
	auditLog        string
}

func newServeCmd() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the mirror registry (OCI distribution v1.1 / Docker Registry v2)",
		Long: `Run the mirror registry on embedded storage: blobs under <data-dir>/blobs,
metadata in <data-dir>/metadata.db (SQLite).

For high availability run several replicas behind any load balancer, all
with the same shared stores (no sticky sessions, no local state):
  --metadata postgres://user:pass@db:5432/ferry?sslmode=verify-full
  --blob-store 's3://bucket?endpoint=minio:9000&region=us-east-1&insecure=false'
S3 credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or
FERRY_S3_ACCESS_KEY/FERRY_S3_SECRET_KEY. The schema is migrated on start
(safely when replicas start together) and the bucket created if missing.
With both stores remote the data dir holds only generated TLS files, and
nothing with --tls-cert or --plain-http.

Every flag can also be set with a FERRY_* environment variable (FERRY_LISTEN,
FERRY_DATA_DIR, FERRY_PLAIN_HTTP, FERRY_HOSTNAME=a,b, ...) or in the YAML file
given with --config, whose keys are the flag names. Flags win over the
environment, which wins over the file.

With neither --tls-cert nor --plain-http, serve creates a CA and a server
certificate under <data-dir>/tls and prints the CA's path, to add to a
cluster's additionalTrustBundle.

A web console is served at / on the same listener (sign in with a user
and password or robot token): repositories, images, mirrored releases and
operator catalogs, mirror runs, health, and for administrators storage,
permissions and robot tokens. The API paths (/v2/, /healthz, /readyz,
/metrics) are unchanged.

Authentication is on by default: the first start creates the user admin
with a random password, prints it once and leaves it in
<data-dir>/initial-admin-password (mode 0600). The token signing keys and
the shared CA are kept in the metadata store sealed with a key outside it:
<data-dir>/secrets.key (made on first start), --secrets-key-file, or the
key itself in FERRY_SECRETS_KEY. Replicas sharing one store need the same
key: generate it once with  head -c 32 /dev/urandom | base64`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnvAndConfig(cmd.Flags(), o.config); err != nil {
				return err
			}
			return runServe(cmd.Context(), &o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", ":8443", "address to listen on")
	o.storeFlags.register(f, true)
	f.BoolVar(&o.plainHTTP, "plain-http", false, "serve HTTP without TLS (loopback and tests only)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "server certificate (PEM); default: generated under <data-dir>/tls")
	f.StringVar(&o.tlsKey, "tls-key", "", "server key (PEM), with --tls-cert")
	f.StringSliceVar(&o.hostnames, "hostname", nil, "extra name for the generated certificate (repeatable)")
	f.BoolVar(&o.readOnly, "read-only", false, "refuse pushes and deletes (maintenance)")
	f.Int64Var(&o.maxManifestSize, "max-manifest-size", registry.DefaultMaxManifestSize, "largest manifest accepted, in bytes")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.config, "config", "", "YAML file with the same keys as the flags")
	f.StringVar(&o.authMode, "auth", "on", "on: require credentials (a first start creates the user admin, see `ferry user`); off: an open registry, refused on a store that ever had authentication on")
	f.BoolVar(&o.anonymousPull, "anonymous-pull", false, "let clients without credentials pull (pushes and deletes still need a user)")
	f.BoolVar(&o.blobRedirect, "blob-redirect", false, "with an s3:// blob store, send clients to presigned S3 URLs for blob downloads (they must reach the S3 endpoint)")
	o.storeFlags.registerSecretsKey(f)
	f.IntVar(&o.failedLogins, "failed-logins-per-minute", auth.DefaultFailedLogins, "failed logins a client address may make per minute (a user name twice as many) before it gets 429; -1: no limit")
	f.IntVar(&o.maxConnections, "max-connections", 2048, "open client connections at most; more wait to be accepted (0: no limit)")
	f.DurationVar(&o.bodyReadTimeout, "body-read-timeout", time.Minute, "end a request whose body sends no data for this long (0: wait for ever)")
	f.StringVar(&o.auditLog, "audit-log", "", "audit trail of pushes, deletes and logins (JSON lines): a file, - for standard output, or off (default <data-dir>/audit.log; standard output with --metadata postgres://)")
	f.IntVar(&o.maxUploads, "max-uploads-per-user", 200, "upload sessions one user (or client address with auth off) may have open, across replicas; more get 429 (0: no limit)")
	f.DurationVar(&o.uploadMaxAge, "upload-max-age", 24*time.Hour, "remove uploads nobody wrote to for this long, with their data (0: never)")
	return cmd
}

// applyEnvAndConfig fills every flag the command line did not set from
// FERRY_<FLAG> in the environment, then from the config file.
func applyEnvAndConfig(flags *pflag.FlagSet, configPath string) error {
	if configPath == "" {
		configPath = os.Getenv("FERRY_CONFIG")
	}
	file := map[string]any{}
	if configPath != "" {
		b, err := os.ReadFile(configPath)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		if err := yaml.Unmarshal(b, &file); err != nil {
			return fmt.Errorf("config %s: %w", configPath, err)
		}
		for k := range file {
			if flags.Lookup(k) == nil || k == "config" {
				return fmt.Errorf("config %s: unknown key %q (keys are the flag names, e.g. listen, data-dir, plain-http)", configPath, k)
			}
		}
	}
	var errs []error
	flags.VisitAll(func(fl *pflag.Flag) {
		if fl.Changed || fl.Name == "config" {
			return
		}
		env := "FERRY_" + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := fl.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
			return
		}
		v, ok := file[fl.Name]
		if !ok {
			return
		}
		var vals []string
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				vals = append(vals, fmt.Sprint(e))
			}
		case float64:
			vals = []string{fmt.Sprintf("%.0f", x)}
		default:
			vals = []string{fmt.Sprint(x)}
		}
		for _, s := range vals {
			if err := fl.Value.Set(s); err != nil {
				errs = append(errs, fmt.Errorf("config %s: %s: %w", configPath, fl.Name, err))
			}
		}
	})
	return errors.Join(errs...)
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

func runServe(ctx context.Context, o *serveOptions) error {
	logger, err := newLogger(o.logLevel)
	if err != nil {
		return err
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if o.blobRedirect && !strings.HasPrefix(o.blobStore, "s3://") {
		return errors.New("--blob-redirect sends clients to the S3 store; it needs --blob-store s3://...")
	}
	if o.uploadMaxAge < 0 {
		return errors.New("--upload-max-age must be positive, or 0 to keep abandoned uploads")
	}
	if o.maxConnections < 0 || o.maxUploads < 0 || o.bodyReadTimeout < 0 {
		return errors.New("--max-connections, --max-uploads-per-user and --body-read-timeout must be positive, or 0 for no limit")
	}
	if o.failedLogins == 0 {
		return errors.New("--failed-logins-per-minute must be positive, or -1 for no limit")
	}
	if o.plainHTTP && o.tlsCert != "" {
		return errors.New("--plain-http and --tls-cert exclude each other")
	}
	restrictNewFiles()
	blobs, meta, err := o.open(ctx)
	if err != nil {
		return err
	}
	defer meta.Close()
	// The sealing key is needed to keep tokens' keys (auth on) or a shared
	// generated CA in the store; an open plain-HTTP replica needs none.
	var box *secretbox.Box
	if o.authMode != string(auth.Off) || (o.shared() && !o.plainHTTP && o.tlsCert == "") {
		if box, err = o.secretsBox(true); err != nil {
			return err
		}
	}
	auditLog, err := audit.Open(auditDest(o.auditLog, o.storeFlags))
	if err != nil {
		return err
	}
	defer auditLog.Close()
	authz, err := newAuthorizer(ctx, o, meta, box, auditLog, logger)
	if err != nil {
		return err
	}
	var tlsCfg *tls.Config
	if !o.plainHTTP {
		if tlsCfg, err = tlsConfig(ctx, o, meta, box, logger); err != nil {
			return err
		}
	}
	con, err := console.New(console.Options{Meta: meta, Blobs: blobs, Auth: authz, Users: meta,
		Logger: logger, Version: version, TLS: tlsCfg})
	if err != nil {
		return fmt.Errorf("web console: %w", err)
	}
	reg := registry.New(registry.Options{
		Blobs: blobs, Meta: meta, Logger: logger, Audit: auditLog,
		MaxManifestSize: o.maxManifestSize, ReadOnly: o.readOnly, Auth: authz,
		BlobRedirect: blobRedirectTTL(o.blobRedirect), Console: con.Handler(),
		BodyReadTimeout: o.bodyReadTimeout, MaxUploadsPerUser: o.maxUploads,
	})
	srv := &http.Server{
		Handler:           reg.Handler(),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		TLSConfig:         tlsCfg,
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if o.maxConnections > 0 {
		ln = registry.LimitListener(ln, o.maxConnections)
	}
	logger.Info("ferry serve listening", "addr", ln.Addr().String(), "data_dir", o.dataDir, "tls", !o.plainHTTP, "read_only", o.readOnly)
	if o.uploadMaxAge > 0 && !o.readOnly {
		pctx, stopPurge := context.WithCancel(ctx)
		defer stopPurge()
		go reg.PurgeUploadsEvery(pctx, o.uploadMaxAge, min(max(o.uploadMaxAge/4, time.Second), time.Hour))
	}
	errc := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// newAuthorizer sets up authentication over the metadata store: secure
// by default (see bootstrapAuth), with the signing keys sealed.
func newAuthorizer(ctx context.Context, o *serveOptions, as store.AuthStore, box *secretbox.Box, al *audit.Logger, logger *slog.Logger) (*auth.Authorizer, error) {
	mode, err := auth.ParseMode(o.authMode)
	if err != nil {
		return nil, err
	}
	if o.authMode == "auto" {
		logger.Warn("--auth=auto is now --auth=on: a registry is open only with --auth=off")
	}
	if err := bootstrapAuth(ctx, o, as, mode, logger); err != nil {
		return nil, err
	}
	a, err := auth.New(ctx, auth.Options{Store: as, Mode: mode, AnonymousPull: o.anonymousPull, Logger: logger, Box: box, Audit: al,
		FailedLogins: o.failedLogins})
	if err != nil {
		return nil, err
	}
	if mode != auth.Off {
		logger.Info("authentication required", "anonymous_pull", o.anonymousPull, "secrets_key", box.Fingerprint)
	}
	return a, nil
}

// tlsConfig loads the given certificate, or the generated CA's server
// certificate, renewed in place.
func tlsConfig(ctx context.Context, o *serveOptions, as store.AuthStore, box *secretbox.Box, logger *slog.Logger) (*tls.Config, error) {
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		cfg := certs.ServerConfig()
		cfg.Certificates = []tls.Certificate{cert}
		return cfg, nil
	}
	dir := filepath.Join(o.dataDir, "tls")
	var m *certs.Manager
	var err error
	if o.shared() {
		// Replicas on a shared metadata store share one generated CA, so
		// clusters trust it once for the whole load-balanced name.
		m, err = certs.NewSharedManager(dir, o.hostnames, logger, sealedSharedCA(ctx, as, box))
	} else {
		m, err = certs.NewManager(dir, o.hostnames, logger)
	}
	if err != nil {
		return nil, fmt.Errorf("generated TLS: %w", err)
	}
	ca, err := filepath.Abs(m.CAFile())
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "ferry: serving HTTPS with a generated CA; trust %s (e.g. in install-config additionalTrustBundle)\n", ca)
	return m.TLSConfig(), nil
}

// blobRedirectTTL is how long a presigned blob URL stays valid: long enough
// for a slow client to start the download (S3 checks the time when the
// request arrives, not when it ends).
func blobRedirectTTL(on bool) time.Duration {
	if !on {
		return 0
	}
	return 20 * time.Minute
}

// auditDest is where the audit trail goes: the flag's value; by default
// <data-dir>/audit.log on a single node, and standard output for replicas
// of a shared store, which keep no local state (their output is collected
// by whatever runs them).
func auditDest(flag string, st storeFlags) string {
	switch {
	case flag != "":
		return flag
	case st.shared():
		return "-"
	}
	return filepath.Join(st.dataDir, "audit.log")
}
