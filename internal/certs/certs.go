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
	"strings"
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
	host := ""
	if h, err := os.Hostname(); err == nil && h != "" {
		if withHost, err := parseNames(append(append([]string(nil), hostnames...), h)); err == nil {
			if lh := strings.ToLower(strings.TrimSuffix(h, ".")); len(withHost.all()) > len(n.all()) {
				host = lh // not also named by --hostname
			}
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
	if err := m.fitNames(host); err != nil {
		return nil, err
	}
	if err := m.loadOrIssueServer(); err != nil {
		return nil, err
	}
	return m, nil
}

// CAFile returns the path of the CA certificate (PEM).
func (m *Manager) CAFile() string { return filepath.Join(m.dir, caCertFile) }

// TLSConfig returns a ServerConfig whose GetCertificate serves the current
// certificate, renewed when less than a third of its lifetime remains.
func (m *Manager) TLSConfig() *tls.Config {
	cfg := ServerConfig()
	cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return m.certificate(), nil
	}
	return cfg
}

// ServerConfig is the TLS configuration every ferry server starts from:
// TLS 1.2 or newer, and for TLS 1.2 only forward-secret AEAD suites (TLS
// 1.3 has only those). CBC suites are out: their MAC-then-encrypt design
// is what padding-oracle attacks (Lucky13) feed on.
func ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
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

// fitNames checks the names to serve against the CA's name constraints.
// The machine's own name (host), a convenience, is left out when the CA
// does not permit it, as on a replica that adopted another's CA; any other
// name outside them stops the start, since clusters would refuse it. A CA
// without constraints, made before Ferry added them, keeps working, with
// a warning that says how to replace it.
func (m *Manager) fitNames(host string) error {
	ca := m.ca.cert
	if len(ca.PermittedDNSDomains) == 0 && len(ca.PermittedIPRanges) == 0 {
		m.logger.Warn("the TLS CA has no name constraints: whoever obtains its key can make certificates for any site (quay.io, registry.redhat.io) that clients trusting it accept. "+
			"To replace it with a CA limited to this registry's names: stop serve, move the directory away, start serve, then put the new CA file in every cluster's trust bundle "+
			"(keep the old one trusted until then)", "dir", m.dir, "ca", filepath.Join(m.dir, caCertFile))
		return nil
	}
	var outside []string
	dns := m.names.dns[:0:0]
	for _, d := range m.names.dns {
		switch {
		case permitsDNS(ca, d):
			dns = append(dns, d)
		case d == host:
			m.logger.Warn("host name left out of the TLS certificate: the CA's name constraints do not cover it", "hostname", d, "permitted", constraints(ca))
		default:
			outside = append(outside, d)
		}
	}
	ips := m.names.ips[:0:0]
	for _, ip := range m.names.ips {
		switch {
		case permitsIP(ca, ip):
			ips = append(ips, ip)
		case ip.String() == host:
			m.logger.Warn("host address left out of the TLS certificate: the CA's name constraints do not cover it", "hostname", host, "permitted", constraints(ca))
		default:
			outside = append(outside, ip.String())
		}
	}
	if len(outside) > 0 {
		return fmt.Errorf("tls: the CA %s may only sign certificates for %v (its name constraints), not for %v; "+
			"start with the --hostname list the CA was made with (every replica the same), or move %s away to create a CA for the new names and give clusters its new ca.crt, or use --tls-cert",
			filepath.Join(m.dir, caCertFile), constraints(ca), outside, m.dir)
	}
	m.names = names{dns: dns, ips: ips}
	return nil
}
