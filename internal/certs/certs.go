// Package certs generates and renews the TLS material of `ferry serve`: a
// long-lived CA that clusters trust once (install-config
// additionalTrustBundle) and a shorter-lived server certificate signed by
// it, renewed in place while the server runs.
package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// File names under the manager's directory.
const (
	caCertFile     = "ca.crt"
	caKeyFile      = "ca.key"
	serverCertFile = "server.crt"
	serverKeyFile  = "server.key"
)

// Default lifetimes: the CA outlives any cluster that trusts it; the server
// certificate is short enough that renewal is exercised in practice.
const (
	defaultCALifetime     = 10 * 365 * 24 * time.Hour
	defaultServerLifetime = 365 * 24 * time.Hour
)

// options are the knobs tests turn; production uses the defaults.
type options struct {
	now            func() time.Time
	caLifetime     time.Duration
	serverLifetime time.Duration
	// share, when set, settles the CA with the other replicas: given this
	// one's CA (PEM certificate then key) it returns the one they all use.
	share func(candidate string) (string, error)
}

// Manager owns the CA and the server certificate under one directory.
type Manager struct {
	dir    string
	names  names
	logger *slog.Logger
	opts   options

	ca      *authority
	created bool // the CA was made by this start, so no client trusts it yet
	current atomic.Pointer[tls.Certificate]
	renewMu sync.Mutex // one renewal at a time; readers never wait on it
}

// NewManager loads or creates under dir a CA and a server certificate for
// hostnames (plus os.Hostname(), localhost, 127.0.0.1, ::1), and renews the
// server certificate before it expires, without a restart.
func NewManager(dir string, hostnames []string, logger *slog.Logger) (*Manager, error) {
	return newManager(dir, hostnames, logger, options{})
}

// NewSharedManager is NewManager for replicas that serve one name behind a
// load balancer: share stores the first CA offered where every replica
// reads it (the metadata store) and returns the one stored, so all their
// certificates chain to one CA that clusters trust once.
func NewSharedManager(dir string, hostnames []string, logger *slog.Logger, share func(candidate string) (string, error)) (*Manager, error) {
	return newManager(dir, hostnames, logger, options{share: share})
}

func newManager(dir string, hostnames []string, logger *slog.Logger, opts options) (*Manager, error) {
	if opts.now == nil {
		opts.now = time.Now
	}
	if opts.caLifetime <= 0 {
		opts.caLifetime = defaultCALifetime
	}
	if opts.serverLifetime <= 0 {
		opts.serverLifetime = defaultServerLifetime
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n, err := parseNames(hostnames)
	if err != nil {
		return nil, err
	}
	// The machine's own name is a convenience: one that no certificate can
	// carry is left out rather than stopping the server.
	if h, err := os.Hostname(); err == nil && h != "" {
		if withHost, err := parseNames(append(append([]string(nil), hostnames...), h)); err == nil {
			n = withHost
		} else {
			logger.Warn("host name left out of the TLS certificate", "hostname", h, "err", err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tls: create certificate directory: %w", err)
	}
	m := &Manager{dir: dir, names: n, logger: logger, opts: opts}
	if m.ca, err = m.loadOrCreateCA(); err != nil {
		return nil, err
	}
	if err := m.loadOrIssueServer(); err != nil {
		return nil, err
	}
	return m, nil
}

// CAFile returns the path of the CA certificate (PEM).
func (m *Manager) CAFile() string { return filepath.Join(m.dir, caCertFile) }

// TLSConfig returns a configuration whose GetCertificate serves the current
// certificate, renewed when less than a third of its lifetime remains.
func (m *Manager) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return m.certificate(), nil
		},
	}
}

// certificate returns the server certificate, renewing it first when due.
// A failed renewal is logged and the old certificate served: it is still
// valid for a third of its lifetime, and the next handshake retries.
func (m *Manager) certificate() *tls.Certificate {
	cert := m.current.Load()
	if !m.due(cert.Leaf) {
		return cert
	}
	m.renewMu.Lock()
	defer m.renewMu.Unlock()
	if cert = m.current.Load(); !m.due(cert.Leaf) {
		return cert // renewed by a concurrent handshake
	}
	renewed, err := m.issueServer()
	if err != nil {
		m.logger.Error("renew TLS server certificate; serving the old one", "expires", cert.Leaf.NotAfter, "err", err)
		return cert
	}
	m.logger.Info("renewed TLS server certificate", "expires", renewed.Leaf.NotAfter, "file", filepath.Join(m.dir, serverCertFile))
	return renewed
}

// due reports whether less than a third of leaf's lifetime remains.
func (m *Manager) due(leaf *x509.Certificate) bool {
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	return leaf.NotAfter.Sub(m.opts.now()) < life/3
}

func (m *Manager) loadOrIssueServer() error {
	certPath, keyPath := filepath.Join(m.dir, serverCertFile), filepath.Join(m.dir, serverKeyFile)
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		// First start.
	case err != nil:
		m.logger.Warn("server certificate unreadable; issuing a new one", "file", certPath, "err", err)
	default:
		if reason := m.unusable(cert.Leaf); reason != "" {
			m.logger.Info("issuing a new TLS server certificate", "reason", reason)
		} else {
			m.current.Store(&cert)
			return nil
		}
	}
	c, err := m.issueServer()
	if err != nil {
		return err
	}
	m.logger.Info("issued TLS server certificate", "names", m.names.all(), "expires", c.Leaf.NotAfter, "file", certPath)
	return nil
}

// unusable says why a stored server certificate cannot be kept, or "".
func (m *Manager) unusable(leaf *x509.Certificate) string {
	pool := x509.NewCertPool()
	pool.AddCert(m.ca.cert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: m.opts.now()}); err != nil {
		return "not valid under the current CA: " + err.Error()
	}
	if missing := m.names.missingFrom(leaf); len(missing) > 0 {
		return fmt.Sprintf("does not cover %v", missing)
	}
	if m.due(leaf) {
		return "less than a third of its lifetime remains"
	}
	return ""
}
