package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// backdate covers clocks of clients that run a little behind the server's.
const backdate = time.Hour

// authority is the CA that signs server certificates.
type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// loadOrCreateCA reuses the stored CA, so clusters that trust it keep
// trusting the server. It never replaces a CA that exists: that would
// silently break every client that trusts it.
func (m *Manager) loadOrCreateCA() (*authority, error) {
	if m.opts.share != nil {
		return m.sharedCA()
	}
	return m.localCA()
}

// sharedCA offers this replica's CA (made now, in memory, if it has none)
// to the others and adopts the one they use. Only the CA that wins is
// written here, so the CA file never names a CA the replicas do not use. A
// replica whose own CA lost is refused rather than switched: clients may
// trust the one it has.
func (m *Manager) sharedCA() (*authority, error) {
	certPath, keyPath := filepath.Join(m.dir, caCertFile), filepath.Join(m.dir, caKeyFile)
	var local *authority
	var certPEM, keyPEM, der []byte
	var err error
	if _, statErr := os.Stat(certPath); statErr == nil {
		if local, err = m.localCA(); err != nil {
			return nil, err
		}
		if certPEM, err = os.ReadFile(certPath); err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		if keyPEM, err = os.ReadFile(keyPath); err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
	} else {
		if local, der, err = m.newCA(); err != nil {
			return nil, err
		}
		if certPEM, keyPEM, err = encodePair(der, local.key); err != nil {
			return nil, err
		}
		m.created = true
	}
	shared, err := m.opts.share(string(certPEM) + string(keyPEM))
	if err != nil {
		return nil, fmt.Errorf("tls: share the CA with the other replicas: %w", err)
	}
	if shared == string(certPEM)+string(keyPEM) {
		if der != nil {
			if err := writePair(certPath, keyPath, der, local.key); err != nil {
				return nil, err
			}
			m.logger.Info("created TLS CA", "file", certPath, "expires", local.cert.NotAfter)
		}
		return local, nil
	}
	pair, err := tls.X509KeyPair([]byte(shared), []byte(shared))
	if err != nil {
		return nil, fmt.Errorf("tls: the replicas' shared CA is unreadable: %w", err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || !pair.Leaf.IsCA {
		return nil, errors.New("tls: the replicas' shared CA is not an ECDSA CA")
	}
	if m.opts.now().After(pair.Leaf.NotAfter) {
		return nil, fmt.Errorf("tls: the replicas' shared CA expired on %s; give every replica --tls-cert", pair.Leaf.NotAfter.Format(time.DateOnly))
	}
	if !m.created {
		return nil, fmt.Errorf("tls: this replica's CA %s is not the one the other replicas share; move %s away to adopt theirs, or give every replica --tls-cert", certPath, m.dir)
	}
	if err := writePair(certPath, keyPath, pair.Leaf.Raw, key); err != nil {
		return nil, err
	}
	m.logger.Info("adopted the CA the other replicas share", "file", certPath, "expires", pair.Leaf.NotAfter)
	return &authority{cert: pair.Leaf, key: key}, nil
}

// localCA loads the CA stored in the directory or creates one there.
func (m *Manager) localCA() (*authority, error) {
	certPath, keyPath := filepath.Join(m.dir, caCertFile), filepath.Join(m.dir, caKeyFile)
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err == nil {
		key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("tls: CA key %s is not an ECDSA key", keyPath)
		}
		if !pair.Leaf.IsCA {
			return nil, fmt.Errorf("tls: %s is not a CA certificate; move it away to generate a new CA", certPath)
		}
		if m.opts.now().After(pair.Leaf.NotAfter) {
			return nil, fmt.Errorf("tls: CA %s expired on %s; move %s and %s away to generate a new CA, then update the clients' trust bundle",
				certPath, pair.Leaf.NotAfter.Format(time.DateOnly), certPath, keyPath)
		}
		return &authority{cert: pair.Leaf, key: key}, nil
	}
	// The certificate is written after the key, so its absence means no CA
	// was ever completed here: a stray key from a crash is overwritten.
	if _, statErr := os.Stat(certPath); !errors.Is(statErr, os.ErrNotExist) {
		return nil, fmt.Errorf("tls: load CA %s: %w", certPath, err)
	}
	return m.createCA()
}

func (m *Manager) createCA() (*authority, error) {
	a, der, err := m.newCA()
	if err != nil {
		return nil, err
	}
	if err := writePair(filepath.Join(m.dir, caCertFile), filepath.Join(m.dir, caKeyFile), der, a.key); err != nil {
		return nil, err
	}
	m.logger.Info("created TLS CA", "file", filepath.Join(m.dir, caCertFile), "expires", a.cert.NotAfter)
	m.created = true
	return a, nil
}

// newCA makes a CA in memory.
func (m *Manager) newCA() (*authority, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: generate CA key: %w", err)
	}
	now := m.opts.now()
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"Ferry"}, CommonName: "Ferry CA " + host},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(m.opts.caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		// Clusters trust this CA for everything; the constraints make it
		// good only for this registry's names, so its key cannot be used
		// to impersonate quay.io or any other site to them.
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         m.names.constraintDomains(),
		PermittedIPRanges:           m.names.constraintRanges(),
	}
	cert, der, err := sign(tmpl, &key.PublicKey, tmpl, key)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: create CA: %w", err)
	}
	return &authority{cert: cert, key: key}, der, nil
}

// issueServer signs a new server certificate, stores it and makes it current.
func (m *Manager) issueServer() (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tls: generate server key: %w", err)
	}
	now := m.opts.now()
	notAfter := now.Add(m.opts.serverLifetime)
	if notAfter.After(m.ca.cert.NotAfter) {
		notAfter = m.ca.cert.NotAfter // a leaf cannot outlive its CA
	}
	cn := m.names.dns[0] // localhost, unless the operator named the host
	if len(m.names.dns) > 1 {
		cn = m.names.dns[1]
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{Organization: []string{"Ferry"}, CommonName: cn},
		NotBefore:   now.Add(-backdate),
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    m.names.dns,
		IPAddresses: m.names.ips,
	}
	leaf, der, err := sign(tmpl, &key.PublicKey, m.ca.cert, m.ca.key)
	if err != nil {
		return nil, fmt.Errorf("tls: issue server certificate: %w", err)
	}
	if err := writePair(filepath.Join(m.dir, serverCertFile), filepath.Join(m.dir, serverKeyFile), der, key); err != nil {
		return nil, err
	}
	cert := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	m.current.Store(cert)
	return cert, nil
}

func sign(tmpl *x509.Certificate, pub *ecdsa.PublicKey, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, []byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, der, err
}
