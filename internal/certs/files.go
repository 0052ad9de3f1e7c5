package certs

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
)

// writePair stores a key and then its certificate, so a crash in between
// leaves a key with no certificate, which loading treats as absent. Keys are
// private (0600); certificates are public (0644) so that an admin who is not
// root can copy the CA into a cluster's additionalTrustBundle.
func writePair(certPath, keyPath string, certDER []byte, key *ecdsa.PrivateKey) error {
	certPEM, keyPEM, err := encodePair(certDER, key)
	if err != nil {
		return err
	}
	if err := writeFile(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	return writeFile(certPath, certPEM, 0o644)
}

// encodePair is a certificate and its key in PEM.
func encodePair(certDER []byte, key *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// writeFile replaces path atomically: readers see the old or the new file,
// never a partial one.
func writeFile(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("tls: write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// Chmod sets the mode whatever the umask.
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("tls: write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("tls: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("tls: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("tls: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("tls: write %s: %w", path, err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename durable; best effort on filesystems that refuse
		d.Close()
	}
	return nil
}
