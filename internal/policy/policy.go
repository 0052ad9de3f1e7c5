// Package policy checks images against a containers-policy.json
// (containers-policy.json(5)) before they are mirrored, as oc-mirror's
// --secure-policy does: sigstoreSigned requirements are verified against
// cosign signatures (the sha256-<hex>.sig tag next to the image) with
// sigstore's verifiers; signedBy (GPGKeys) requirements against simple
// signatures from the lookaside server registries.d names, with
// internal/simplesign; insecureAcceptAnything and reject apply as
// written. What Ferry cannot verify (keyless sigstore, other key types)
// is refused when the file is read, so a policy is never half applied.
package policy

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	digest "github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/ferry-mirror/ferry/internal/simplesign"
)

// Policy is a parsed containers-policy.json, for the docker transport.
type Policy struct {
	file   string
	def    []requirement
	scopes map[string][]requirement
}

type requirement struct {
	Type           string    `json:"type"`
	KeyPath        string    `json:"keyPath"`
	KeyPaths       []string  `json:"keyPaths"`
	KeyData        string    `json:"keyData"`
	KeyDatas       []string  `json:"keyDatas"`
	SignedIdentity *identity `json:"signedIdentity"`
	// KeyType is signedBy's; only GPGKeys is defined.
	KeyType string `json:"keyType"`
	// Present only to be refused: Ferry verifies public keys alone.
	Fulcio       json.RawMessage `json:"fulcio"`
	RekorKeyPath string          `json:"rekorPublicKeyPath"`

	verifiers []signature.Verifier // sigstoreSigned
	gpgKeys   openpgp.EntityList   // signedBy
}

type identity struct {
	Type             string `json:"type"`
	DockerReference  string `json:"dockerReference"`
	DockerRepository string `json:"dockerRepository"`
	Prefix           string `json:"prefix"`
	SignedPrefix     string `json:"signedPrefix"`
}

type file struct {
	Default    []requirement                       `json:"default"`
	Transports map[string]map[string][]requirement `json:"transports"`
}

// DefaultPaths are where containers tools look for the policy.
func DefaultPaths() []string {
	var ps []string
	if home, err := os.UserHomeDir(); err == nil {
		ps = append(ps, filepath.Join(home, ".config", "containers", "policy.json"))
	}
	return append(ps, "/etc/containers/policy.json")
}

// Load reads and checks a policy file; every requirement's keys are read
// now, so a bad key stops the run before anything is copied.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read signature policy: %w (give it with --policy <policy.json>)", err)
	}
	var f file
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("signature policy %s does not parse: %v; expected a containers-policy.json (see containers-policy.json(5))", path, err)
	}
	if f.Default == nil {
		return nil, fmt.Errorf("signature policy %s has no \"default\" requirements; containers-policy.json(5) requires them (e.g. [{\"type\": \"reject\"}])", path)
	}
	p := &Policy{file: path, scopes: map[string][]requirement{}}
	base := filepath.Dir(path)
	if p.def, err = p.check(f.Default, "default", base); err != nil {
		return nil, err
	}
	for transport, scopes := range f.Transports {
		if transport != "docker" {
			continue // Ferry reads registries only
		}
		for scope, reqs := range scopes {
			if p.scopes[scope], err = p.check(reqs, "transports.docker."+scope, base); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

func (p *Policy) check(reqs []requirement, where, base string) ([]requirement, error) {
	if len(reqs) == 0 {
		return nil, fmt.Errorf("signature policy %s: %s lists no requirements; write [{\"type\": \"insecureAcceptAnything\"}] to accept anything", p.file, where)
	}
	for i := range reqs {
		r := &reqs[i]
		at := fmt.Sprintf("signature policy %s: %s[%d]", p.file, where, i)
		switch r.Type {
		case "insecureAcceptAnything", "reject":
		case "sigstoreSigned":
			if len(r.Fulcio) > 0 || r.RekorKeyPath != "" {
				return nil, fmt.Errorf("%s: fulcio and rekor (keyless) verification is not supported; give the public key with keyPath or keyData", at)
			}
			keys, err := r.keys(base)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", at, err)
			}
			if len(keys) == 0 {
				return nil, fmt.Errorf("%s: sigstoreSigned needs keyPath, keyPaths, keyData or keyDatas", at)
			}
			for _, k := range keys {
				pub, err := cryptoutils.UnmarshalPEMToPublicKey(k.pem)
				if err != nil {
					return nil, fmt.Errorf("%s: public key %s: %v", at, k.name, err)
				}
				v, err := signature.LoadVerifier(pub, crypto.SHA256)
				if err != nil {
					return nil, fmt.Errorf("%s: public key %s: %v", at, k.name, err)
				}
				r.verifiers = append(r.verifiers, v)
			}
			if err := r.SignedIdentity.check(); err != nil {
				return nil, fmt.Errorf("%s: %w", at, err)
			}
		case "signedBy":
			if r.KeyType != "GPGKeys" {
				return nil, fmt.Errorf("%s: signedBy keyType %q is not supported; containers-policy.json(5) defines \"GPGKeys\"", at, r.KeyType)
			}
			keys, err := r.keys(base)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", at, err)
			}
			if len(keys) == 0 {
				return nil, fmt.Errorf("%s: signedBy needs keyPath, keyPaths or keyData (an OpenPGP public key, as gpg --export writes)", at)
			}
			for _, k := range keys {
				ring, err := simplesign.ReadKeys(k.pem)
				if err != nil {
					return nil, fmt.Errorf("%s: GPG key %s %w", at, k.name, err)
				}
				r.gpgKeys = append(r.gpgKeys, ring...)
			}
			if err := r.SignedIdentity.check(); err != nil {
				return nil, fmt.Errorf("%s: %w", at, err)
			}
		default:
			return nil, fmt.Errorf("%s: unknown requirement type %q; containers-policy.json(5) has insecureAcceptAnything, reject, signedBy and sigstoreSigned", at, r.Type)
		}
	}
	return reqs, nil
}

type key struct {
	name string
	pem  []byte
}

func (r *requirement) keys(base string) ([]key, error) {
	var ks []key
	for _, p := range append(r.KeyPaths, r.KeyPath) {
		if p == "" {
			continue
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read public key: %w", err)
		}
		ks = append(ks, key{p, data})
	}
	for i, d := range append(r.KeyDatas, r.KeyData) {
		if d == "" {
			continue
		}
		data, err := base64.StdEncoding.DecodeString(d)
		if err != nil {
			return nil, fmt.Errorf("keyData %d is not base64: %v", i, err)
		}
		ks = append(ks, key{fmt.Sprintf("keyData %d", i), data})
	}
	return ks, nil
}

func (id *identity) check() error {
	if id == nil {
		return nil
	}
	switch id.Type {
	case "matchRepoDigestOrExact", "matchRepository", "matchExact":
	case "exactReference":
		if id.DockerReference == "" {
			return errors.New("signedIdentity exactReference needs dockerReference")
		}
	case "exactRepository":
		if id.DockerRepository == "" {
			return errors.New("signedIdentity exactRepository needs dockerRepository")
		}
	case "remapIdentity":
		if id.Prefix == "" || id.SignedPrefix == "" {
			return errors.New("signedIdentity remapIdentity needs prefix and signedPrefix")
		}
	default:
		return fmt.Errorf("signedIdentity type %q is not supported; use matchRepoDigestOrExact, matchRepository, matchExact, exactReference, exactRepository or remapIdentity", id.Type)
	}
	return nil
}

// HasSignedBy reports whether any requirement is signedBy, so callers
// read registries.d only then.
func (p *Policy) HasSignedBy() bool {
	for _, reqs := range p.scopes {
		for _, r := range reqs {
			if r.Type == "signedBy" {
				return true
			}
		}
	}
	for _, r := range p.def {
		if r.Type == "signedBy" {
			return true
		}
	}
	return false
}

// Needs reports which signatures checking im reads, so callers fetch
// them only then: cosign ones (sigstoreSigned) and simple ones from the
// lookaside (signedBy).
func (p *Policy) Needs(im Image) (cosign, simple bool) {
	_, reqs := p.requirementsFor(im)
	for _, r := range reqs {
		switch r.Type {
		case "sigstoreSigned":
			cosign = true
		case "signedBy":
			simple = true
		}
	}
	return cosign, simple
}

// Image is what is checked: the source repository (host/path), the tag
// it was asked by ("" for a digest), and the digest it resolved to.
type Image struct {
	Repo   string
	Tag    string
	Digest digest.Digest
}

func (im Image) String() string {
	if im.Tag != "" {
		return im.Repo + ":" + im.Tag
	}
	return im.Repo + "@" + im.Digest.String()
}

// Signature is one cosign signature: the simple-signing payload and its
// base64 signature (the dev.cosignproject.cosign/signature annotation).
type Signature struct {
	Payload []byte
	Base64  string
}

// Signatures are what an image's requirements are checked with.
type Signatures struct {
	Cosign []Signature
	// Simple are OpenPGP signed messages from the lookaside, raw.
	Simple [][]byte
	// Where says where Simple came from, for messages.
	Where string
}

// requirementsFor finds the most specific scope for im, as
// containers-policy.json(5) orders them.
func (p *Policy) requirementsFor(im Image) (string, []requirement) {
	if im.Tag != "" {
		if r, ok := p.scopes[im.Repo+":"+im.Tag]; ok {
			return im.Repo + ":" + im.Tag, r
		}
	}
	if r, ok := p.scopes[im.Repo+"@"+im.Digest.String()]; ok {
		return im.Repo + "@" + im.Digest.String(), r
	}
	for s := im.Repo; s != ""; {
		if r, ok := p.scopes[s]; ok {
			return s, r
		}
		i := strings.LastIndex(s, "/")
		if i < 0 {
			break
		}
		s = s[:i]
	}
	host, _, _ := strings.Cut(im.Repo, "/")
	hostname, _, _ := strings.Cut(host, ":")
	for d := hostname; strings.Contains(d, "."); {
		_, rest, _ := strings.Cut(d, ".")
		if r, ok := p.scopes["*."+rest]; ok {
			return "*." + rest, r
		}
		d = rest
	}
	if r, ok := p.scopes[""]; ok {
		return `""`, r
	}
	return "default", p.def
}

// Check returns nil when im satisfies the policy with sigs, or an error
// saying which requirement failed and why.
func (p *Policy) Check(im Image, sigs Signatures) error {
	scope, reqs := p.requirementsFor(im)
	for _, r := range reqs {
		switch r.Type {
		case "insecureAcceptAnything":
		case "reject":
			return fmt.Errorf("signature policy %s rejects %s (scope %s)", p.file, im, scope)
		case "sigstoreSigned":
			if err := r.verify(im, sigs.Cosign); err != nil {
				return fmt.Errorf("signature policy %s (scope %s): %s: %w", p.file, scope, im, err)
			}
		case "signedBy":
			if err := r.verifySimple(im, sigs); err != nil {
				return fmt.Errorf("signature policy %s (scope %s): %s: %w", p.file, scope, im, err)
			}
		}
	}
	return nil
}

func (r requirement) verify(im Image, sigs []Signature) error {
	if len(sigs) == 0 {
		return errors.New("no sigstore signature (no cosign .sig tag for this digest)")
	}
	var why []string
	for _, s := range sigs {
		raw, err := base64.StdEncoding.DecodeString(s.Base64)
		if err != nil {
			why = append(why, "a signature is not base64")
			continue
		}
		ok := false
		for _, v := range r.verifiers {
			if v.VerifySignature(bytes.NewReader(raw), bytes.NewReader(s.Payload)) == nil {
				ok = true
				break
			}
		}
		if !ok {
			why = append(why, "a signature does not verify with the policy's keys")
			continue
		}
		var pl simplesign.Payload
		if err := json.Unmarshal(s.Payload, &pl); err != nil {
			why = append(why, "a signed payload does not parse")
			continue
		}
		if pl.Critical.Type != "cosign container image signature" {
			why = append(why, fmt.Sprintf("a signed payload has type %q", pl.Critical.Type))
			continue
		}
		if pl.Critical.Image.DockerManifestDigest != im.Digest.String() {
			why = append(why, fmt.Sprintf("a signature is for digest %s", pl.Critical.Image.DockerManifestDigest))
			continue
		}
		if err := r.identityMatches(im, pl.Critical.Identity.DockerReference); err != nil {
			why = append(why, err.Error())
			continue
		}
		return nil
	}
	return fmt.Errorf("no valid sigstore signature: %s", strings.Join(why, "; "))
}

func (r requirement) verifySimple(im Image, sigs Signatures) error {
	if len(sigs.Simple) == 0 {
		return fmt.Errorf("no simple signature (GPG) at the lookaside (%s)", sigs.Where)
	}
	var why []string
	for i, s := range sigs.Simple {
		c, err := simplesign.Open(s, r.gpgKeys)
		var unknown *simplesign.UnknownKeyError
		switch {
		case errors.As(err, &unknown):
			why = append(why, fmt.Sprintf("signature-%d is signed by key %s, not one of the policy's GPG keys (fingerprints %s)", i+1, unknown.KeyID, strings.Join(simplesign.Fingerprints(r.gpgKeys), ", ")))
		case err != nil:
			why = append(why, fmt.Sprintf("signature-%d: %v", i+1, err))
		case c.Digest != im.Digest.String():
			why = append(why, fmt.Sprintf("signature-%d is for digest %s", i+1, c.Digest))
		default:
			if err := r.identityMatches(im, c.DockerReference); err != nil {
				why = append(why, fmt.Sprintf("signature-%d: %v", i+1, err))
				continue
			}
			return nil
		}
	}
	return fmt.Errorf("no valid GPG signature: %s", strings.Join(why, "; "))
}

func (r requirement) identityMatches(im Image, signed string) error {
	typ := "matchRepoDigestOrExact"
	if r.SignedIdentity != nil {
		typ = r.SignedIdentity.Type
	}
	signedRepo := signed
	if i := strings.LastIndex(signed, ":"); i > strings.LastIndex(signed, "/") {
		signedRepo = signed[:i]
	}
	signedRepo, _, _ = strings.Cut(signedRepo, "@")
	switch typ {
	case "exactReference":
		if signed == r.SignedIdentity.DockerReference {
			return nil
		}
	case "remapIdentity":
		id := r.SignedIdentity
		if repo, ok := remap(im.Repo, id.Prefix, id.SignedPrefix); ok {
			mapped := Image{Repo: repo, Tag: im.Tag, Digest: im.Digest}
			if im.Tag == "" && signedRepo == mapped.Repo || signed == mapped.String() {
				return nil
			}
			break
		}
		if im.Tag == "" && signedRepo == im.Repo || signed == im.String() {
			return nil
		}
	case "matchRepository":
		if signedRepo == im.Repo {
			return nil
		}
	case "exactRepository":
		if signedRepo == r.SignedIdentity.DockerRepository {
			return nil
		}
	case "matchExact":
		if signed == im.String() {
			return nil
		}
	default: // matchRepoDigestOrExact
		if im.Tag == "" && signedRepo == im.Repo || signed == im.String() {
			return nil
		}
	}
	return fmt.Errorf("a signature names %q, which %s does not accept for %s", signed, typ, im)
}

// remap replaces prefix by signedPrefix in repo when prefix names repo or
// one of its namespaces (whole path elements only), as remapIdentity does.
func remap(repo, prefix, signedPrefix string) (string, bool) {
	if repo == prefix {
		return signedPrefix, true
	}
	if rest, ok := strings.CutPrefix(repo, prefix+"/"); ok {
		return signedPrefix + "/" + rest, true
	}
	return "", false
}
