package certs

import (
	"crypto/x509"
	"fmt"
	"net"
	"slices"
	"strings"
)

// names are the subject alternative names a server certificate must carry.
type names struct {
	dns []string
	ips []net.IP
}

// parseNames splits hostnames into DNS names and IP addresses, adds the
// loopback names every local client uses, and rejects what no certificate
// can carry.
func parseNames(hostnames []string) (names, error) {
	var n names
	for _, h := range append([]string{"localhost", "127.0.0.1", "::1"}, hostnames...) {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil {
			if !slices.ContainsFunc(n.ips, ip.Equal) {
				n.ips = append(n.ips, ip)
			}
			continue
		}
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if err := checkDNSName(h); err != nil {
			return names{}, fmt.Errorf("tls: hostname %q: %w (give a DNS name or an IP address)", h, err)
		}
		if !slices.Contains(n.dns, h) {
			n.dns = append(n.dns, h)
		}
	}
	return n, nil
}

func checkDNSName(h string) error {
	if len(h) > 253 {
		return fmt.Errorf("longer than 253 characters")
	}
	for i, label := range strings.Split(h, ".") {
		if label == "*" && i == 0 {
			continue
		}
		if label == "" || len(label) > 63 {
			return fmt.Errorf("empty or over-long label")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("label %q starts or ends with '-'", label)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("character %q not allowed", r)
			}
		}
	}
	return nil
}

// missingFrom lists the names cert does not carry.
func (n names) missingFrom(cert *x509.Certificate) []string {
	var missing []string
	for _, d := range n.dns {
		if !slices.Contains(cert.DNSNames, d) {
			missing = append(missing, d)
		}
	}
	for _, ip := range n.ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			missing = append(missing, ip.String())
		}
	}
	return missing
}

func (n names) all() []string {
	out := slices.Clone(n.dns)
	for _, ip := range n.ips {
		out = append(out, ip.String())
	}
	return out
}

// constraintDomains are the DNS name constraints of a CA for these names:
// each name (which also permits its subdomains), a wildcard as its parent.
func (n names) constraintDomains() []string {
	var out []string
	for _, d := range n.dns {
		d = strings.TrimPrefix(d, "*.")
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// constraintRanges are the IP name constraints: each address alone.
func (n names) constraintRanges() []*net.IPNet {
	var out []*net.IPNet
	for _, ip := range n.ips {
		bits := 128
		if v4 := ip.To4(); v4 != nil {
			ip, bits = v4, 32
		}
		out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
	}
	return out
}

// permitsDNS reports whether ca's name constraints let it sign name. A
// CA without DNS constraints (made before Ferry added them) permits all.
func permitsDNS(ca *x509.Certificate, name string) bool {
	if len(ca.PermittedDNSDomains) == 0 {
		return true
	}
	for _, c := range ca.PermittedDNSDomains {
		c = strings.ToLower(c)
		if sub, ok := strings.CutPrefix(c, "."); ok {
			if strings.HasSuffix(name, "."+sub) {
				return true
			}
			continue
		}
		if name == c || strings.HasSuffix(name, "."+c) {
			return true
		}
	}
	return false
}

// permitsIP reports whether ca's name constraints let it sign ip.
func permitsIP(ca *x509.Certificate, ip net.IP) bool {
	if len(ca.PermittedIPRanges) == 0 {
		return true
	}
	return slices.ContainsFunc(ca.PermittedIPRanges, func(r *net.IPNet) bool { return r.Contains(ip) })
}

// constraints lists what ca may sign, for messages.
func constraints(ca *x509.Certificate) []string {
	out := slices.Clone(ca.PermittedDNSDomains)
	for _, r := range ca.PermittedIPRanges {
		out = append(out, r.String())
	}
	return out
}
