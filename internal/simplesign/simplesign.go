// Package simplesign verifies "simple signing" signatures
// (containers-signature(5)): an OpenPGP signed message whose body is the
// JSON "atomic container signature" naming a manifest digest and the
// image reference it was signed as. OpenShift release signatures and the
// signedBy requirement of containers-policy.json(5) both use it.
package simplesign

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/ProtonMail/go-crypto/openpgp"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
)

// AtomicType is critical.type of a simple-signing document.
const AtomicType = "atomic container signature"

// maxDocument bounds the signed JSON; real ones are a few hundred bytes.
const maxDocument = 1 << 20

// Payload is the JSON document a signature signs (containers-signature(5));
// cosign's simple-signing payload has the same shape with another type.
type Payload struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// Claim is what a verified signature asserts.
type Claim struct {
	// DockerReference is the image as its signer named it.
	DockerReference string
	// Digest is critical.image.docker-manifest-digest, as written.
	Digest string
	// KeyID is the signing key's ID, upper-case hex.
	KeyID string
}

// ErrBadSignature is a signature by a known key that does not verify.
var ErrBadSignature = errors.New("bad signature")

// UnknownKeyError is a signature by a key outside the keyring.
type UnknownKeyError struct{ KeyID string }

func (e *UnknownKeyError) Error() string {
	return fmt.Sprintf("signed by key %s, which is not in the keyring", e.KeyID)
}

// ReadKeys parses an OpenPGP public keyring, armored (gpg --export
// --armor) or binary (gpg --export, as RPM-GPG-KEY files may be).
func ReadKeys(data []byte) (openpgp.EntityList, error) {
	var keys openpgp.EntityList
	var err error
	if bytes.Contains(data, []byte("-----BEGIN PGP")) {
		keys, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	} else {
		keys, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("is not an OpenPGP public key (gpg --export --armor writes one): %w", err)
	}
	if len(keys) == 0 {
		return nil, errors.New("holds no OpenPGP public key; export one with gpg --export --armor")
	}
	return keys, nil
}

// Fingerprints lists the primary key fingerprints of keys, upper-case hex
// as gpg prints them, for messages.
func Fingerprints(keys openpgp.EntityList) []string {
	out := make([]string, 0, len(keys))
	for _, e := range keys {
		out = append(out, fmt.Sprintf("%X", e.PrimaryKey.Fingerprint))
	}
	return out
}

// Open checks that sig is an OpenPGP signed message by a key of keys whose
// body is an atomic container signature, and returns what it claims. The
// caller compares the claim with the image it has.
func Open(sig []byte, keys openpgp.EntityList) (*Claim, error) {
	md, err := openpgp.ReadMessage(bytes.NewReader(sig), keys, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("the signature is not an OpenPGP signed message: %w", err)
	}
	if !md.IsSigned {
		return nil, errors.New("the signature document is not signed")
	}
	// The signature is checked only once the body is read to its end, so
	// a document over the limit is refused rather than cut short.
	body, err := io.ReadAll(io.LimitReader(md.UnverifiedBody, maxDocument+1))
	if err != nil && md.SignatureError == nil {
		return nil, fmt.Errorf("reading the signed document: %w", err)
	}
	if len(body) > maxDocument {
		return nil, errors.New("the signed document is larger than 1 MiB; it is not a container signature")
	}
	keyID := fmt.Sprintf("%016X", md.SignedByKeyId)
	if md.SignedBy == nil || errors.Is(md.SignatureError, pgperrors.ErrUnknownIssuer) {
		return nil, &UnknownKeyError{KeyID: keyID}
	}
	if md.SignatureError != nil {
		return nil, fmt.Errorf("%w by key %s: %w", ErrBadSignature, keyID, md.SignatureError)
	}
	var doc Payload
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("the signed document is not JSON: %w", err)
	}
	if doc.Critical.Type != AtomicType {
		return nil, fmt.Errorf("the signed document has critical.type %q, want %q", doc.Critical.Type, AtomicType)
	}
	return &Claim{DockerReference: doc.Critical.Identity.DockerReference, Digest: doc.Critical.Image.DockerManifestDigest, KeyID: keyID}, nil
}
