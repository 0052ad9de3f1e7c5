package release

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ferry-mirror/ferry/internal/simplesign"
)

// DefaultSignatureURL is where Red Hat publishes release signatures, as
// oc-mirror and the cluster-version operator read them.
const DefaultSignatureURL = "https://mirror.openshift.com/pub/openshift-v4/signatures/openshift/release/"

// redHatKeys are Red Hat's release-signing public keys (release key 2 and
// beta key 2), byte for byte the armored block the cluster-version
// operator ships in openshift/cluster-update-keys and oc-mirror embeds:
// with them a config with platform.channels needs no key set up.
//
//go:embed redhat-release-keys.asc
var redHatKeys []byte

// BuiltinKeys parses the built-in Red Hat release keys.
func BuiltinKeys() (openpgp.EntityList, error) {
	keys, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(redHatKeys))
	if err != nil {
		return nil, fmt.Errorf("built-in Red Hat release keys: %w", err)
	}
	return keys, nil
}

// maxSignatures bounds how many signature-N files are fetched per release;
// servers publish one or two.
const maxSignatures = 16

// signatureAdvice tells the user what to do when a release is not verified.
const signatureAdvice = "set OCP_SIGNATURE_VERIFICATION_PK (or --release-signature-key) to the armored public key that signs these releases, or pass --ignore-release-signature"

// SignatureOptions configure a Verifier.
type SignatureOptions struct {
	// BaseURL holds sha256=<hex>/signature-N; with or without a trailing /.
	BaseURL string
	// KeyFile is an armored OpenPGP public key file; empty means the
	// built-in Red Hat release keys.
	KeyFile  string
	HTTP     *http.Client
	Attempts int           // default 4
	Backoff  time.Duration // default 1s
	Log      *slog.Logger
}

// SignatureOptionsFromEnv reads OCP_SIGNATURE_URL and
// OCP_SIGNATURE_VERIFICATION_PK; a key flag, when given, wins over the
// environment.
func SignatureOptionsFromEnv(getenv func(string) string, keyFlag string) SignatureOptions {
	o := SignatureOptions{BaseURL: getenv("OCP_SIGNATURE_URL"), KeyFile: getenv("OCP_SIGNATURE_VERIFICATION_PK")}
	if keyFlag != "" {
		o.KeyFile = keyFlag
	}
	return o
}

// Verifier fetches release signatures and checks them against a keyring.
type Verifier struct {
	opts SignatureOptions
	keys openpgp.EntityList
	// keySource names the keyring in messages.
	keySource string
}

// NewVerifier loads the key file, or the built-in Red Hat keys when none
// is given.
func NewVerifier(opts SignatureOptions) (*Verifier, error) {
	if opts.BaseURL == "" {
		opts.BaseURL = DefaultSignatureURL
	}
	opts.BaseURL = strings.TrimSuffix(opts.BaseURL, "/")
	if !isHTTPURL(opts.BaseURL) {
		return nil, fmt.Errorf("signature URL %q is not an http(s) URL; check OCP_SIGNATURE_URL", opts.BaseURL)
	}
	opts.HTTP, opts.Attempts, opts.Backoff, opts.Log = retryDefaults(opts.HTTP, time.Minute, opts.Attempts, opts.Backoff, opts.Log)
	if opts.KeyFile == "" {
		keys, err := BuiltinKeys()
		if err != nil {
			return nil, err
		}
		return &Verifier{opts: opts, keys: keys, keySource: "the built-in Red Hat release keys"}, nil
	}
	data, err := os.ReadFile(opts.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("release signature key: %w; %s", err, signatureAdvice)
	}
	keys, err := simplesign.ReadKeys(data)
	if err != nil {
		return nil, fmt.Errorf("release signature key %s %w", opts.KeyFile, err)
	}
	return &Verifier{opts: opts, keys: keys, keySource: "the key in " + opts.KeyFile}, nil
}

// Fingerprints lists the keyring's primary key fingerprints, upper-case
// hex as gpg prints them, for messages.
func (v *Verifier) Fingerprints() []string {
	return Fingerprints(v.keys)
}

// Fingerprints lists the primary key fingerprints of keys.
func Fingerprints(keys openpgp.EntityList) []string { return simplesign.Fingerprints(keys) }

// KeySource says which keys verify: the built-in ones or a file.
func (v *Verifier) KeySource() string { return v.keySource }

// Claim is what a verified signature asserts.
type Claim struct {
	// DockerReference is the release as its publisher named it, such as
	// quay.io/openshift-release-dev/ocp-release:4.16.3-x86_64.
	DockerReference string
	Digest          v1.Hash
	// KeyID is the signing key's ID, hex.
	KeyID string
}

// Signed is a release's verified signatures, raw as published, in the
// order found; the first carries key sha256-<hex>-1 in the ConfigMap.
type Signed struct {
	Digest     v1.Hash
	Signatures [][]byte
	Claims     []Claim
}

// signatureURL is <base>/sha256=<hex>/signature-<n>.
func (v *Verifier) signatureURL(d v1.Hash, n int) string {
	return fmt.Sprintf("%s/%s=%s/signature-%d", v.opts.BaseURL, d.Algorithm, d.Hex, n)
}

// Fetch downloads signature-1, signature-2, ... of digest until the
// server answers 404, as the cluster-version operator reads them.
func (v *Verifier) Fetch(ctx context.Context, d v1.Hash) ([][]byte, error) {
	var sigs [][]byte
	for n := 1; n <= maxSignatures; n++ {
		body, err := getWithRetry(ctx, v.opts.HTTP, v.signatureURL(d, n), "", v.opts.Attempts, v.opts.Backoff, v.opts.Log)
		var st *errStatus
		if errors.As(err, &st) && (st.code == http.StatusNotFound || (n > 1 && !retryable(err))) {
			// The first missing signature-N ends the list; some stores
			// answer 403 rather than 404 for a missing object.
			break
		}
		if err != nil {
			return nil, fmt.Errorf("release %s signature: %w", d, err)
		}
		sigs = append(sigs, body)
	}
	if len(sigs) == 0 {
		return nil, fmt.Errorf("release %s has no signature at %s; set OCP_SIGNATURE_URL to a server that holds its signatures, or pass --ignore-release-signature", d, v.signatureURL(d, 1))
	}
	return sigs, nil
}

// FetchAndVerify fetches the signatures of release digest d and keeps the
// ones made by a trusted key for d. None verifying is an error that says
// why and what to do.
func (v *Verifier) FetchAndVerify(ctx context.Context, d v1.Hash) (*Signed, error) {
	sigs, err := v.Fetch(ctx, d)
	if err != nil {
		return nil, err
	}
	out := &Signed{Digest: d}
	var errs []error
	for i, s := range sigs {
		c, err := v.Verify(s, d)
		if err != nil {
			errs = append(errs, fmt.Errorf("signature-%d: %w", i+1, err))
			continue
		}
		out.Signatures = append(out.Signatures, s)
		out.Claims = append(out.Claims, *c)
	}
	if len(out.Signatures) == 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Verify checks that sig is an OpenPGP-signed atomic container signature
// by a key of the keyring, for the manifest digest d.
func (v *Verifier) Verify(sig []byte, d v1.Hash) (*Claim, error) {
	c, err := simplesign.Open(sig, v.keys)
	var unknown *simplesign.UnknownKeyError
	if errors.As(err, &unknown) {
		return nil, fmt.Errorf("release %s is signed by key %s, which is not one of %s (fingerprints %s); %s",
			d, unknown.KeyID, v.keySource, strings.Join(v.Fingerprints(), ", "), signatureAdvice)
	}
	if errors.Is(err, simplesign.ErrBadSignature) {
		return nil, fmt.Errorf("release %s: %w; %s", d, err, signatureAdvice)
	}
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", d, err)
	}
	if c.Digest != d.String() {
		return nil, fmt.Errorf("release %s: the signature is for %s, another image; the signature server or the release reference is wrong", d, c.Digest)
	}
	return &Claim{DockerReference: c.DockerReference, Digest: d, KeyID: c.KeyID}, nil
}
