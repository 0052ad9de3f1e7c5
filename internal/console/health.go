package console

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"time"
)

type healthPage struct {
	Version    string
	Metadata   string // "ok" or the error
	Blobs      string
	TLS        bool
	CertExpiry time.Time
	CertNames  []string
	CertIssuer string
	CertErr    string
}

func (c *Console) health(w http.ResponseWriter, r *request) {
	ctx := r.Context()
	p := healthPage{Version: c.version, Metadata: "ok", Blobs: "ok", TLS: c.tls != nil}
	if err := c.meta.Ping(ctx); err != nil {
		p.Metadata = err.Error()
	}
	if err := c.blobs.Ping(ctx); err != nil {
		p.Blobs = err.Error()
	}
	if c.tls != nil {
		if cert, err := c.serverCert(r); err != nil {
			p.CertErr = err.Error()
		} else {
			p.CertExpiry, p.CertNames, p.CertIssuer = cert.NotAfter, cert.DNSNames, cert.Issuer.CommonName
		}
	}
	c.render(w, r, http.StatusOK, "health", "Health", p)
}

// serverCert is the certificate this request was served with.
func (c *Console) serverCert(r *request) (*x509.Certificate, error) {
	var cert *tls.Certificate
	if c.tls.GetCertificate != nil {
		hello := &tls.ClientHelloInfo{}
		if r.TLS != nil {
			hello.ServerName = r.TLS.ServerName
		}
		var err error
		if cert, err = c.tls.GetCertificate(hello); err != nil {
			return nil, err
		}
	} else if len(c.tls.Certificates) > 0 {
		cert = &c.tls.Certificates[0]
	}
	if cert == nil || len(cert.Certificate) == 0 {
		return nil, errors.New("no server certificate configured")
	}
	if cert.Leaf != nil {
		return cert.Leaf, nil
	}
	return x509.ParseCertificate(cert.Certificate[0])
}
