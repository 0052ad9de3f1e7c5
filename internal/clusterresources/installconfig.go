package clusterresources

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// InstallConfigSnippet is the part of an install-config.yaml that points a
// new cluster at the mirror.
type InstallConfigSnippet struct {
	ImageDigestSources          []ImageMirrors `json:"imageDigestSources"`
	AdditionalTrustBundle       string         `json:"additionalTrustBundle,omitempty"`
	AdditionalTrustBundlePolicy string         `json:"additionalTrustBundlePolicy,omitempty"`
}

// installConfig lists every mirrored source repository, widened like the
// mirror sets: the installer pulls the release by digest, and tagged
// images once mirrored also answer by digest.
func installConfig(repos []repoMirror, bundle string) ([]byte, error) {
	var s InstallConfigSnippet
	s.ImageDigestSources = []ImageMirrors{}
	all := make([]repoMirror, len(repos))
	for i, r := range repos {
		r.group = "" // one list, whatever the section
		all[i] = r
	}
	s.ImageDigestSources = append(s.ImageDigestSources, scoped(all, func(repoMirror) bool { return true })[""]...)
	if bundle != "" {
		s.AdditionalTrustBundle = bundle
		s.AdditionalTrustBundlePolicy = "Always"
	}
	return yaml.Marshal(s)
}

// readCABundle returns the PEM certificates of path, refusing a file that
// holds none, so a wrong file is caught now and not at install time.
func readCABundle(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("CA bundle: %w", err)
	}
	var out []byte
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return "", fmt.Errorf("CA bundle %s: a certificate does not parse: %w", path, err)
		}
		out = append(out, pem.EncodeToMemory(block)...)
	}
	if len(out) == 0 {
		return "", fmt.Errorf("CA bundle %s holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the CA certificate the mirror registry's TLS certificate is signed by", path)
	}
	return string(out), nil
}
