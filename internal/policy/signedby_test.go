package policy

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	digest "github.com/opencontainers/go-digest"
)

func newEntity(t *testing.T, name string) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", name+"@ferry.invalid", nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func armored(t *testing.T, e *openpgp.Entity) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return buf.Bytes()
}

// simpleSig signs an atomic container signature as gpg --sign does.
func simpleSig(t *testing.T, e *openpgp.Entity, ref string, d digest.Digest) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := openpgp.Sign(&buf, e, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(w, `{"critical":{"identity":{"docker-reference":%q},"image":{"docker-manifest-digest":%q},"type":"atomic container signature"},"optional":{}}`, ref, d)
	w.Close()
	return buf.Bytes()
}

func loadPolicy(t *testing.T, dir, body string) *Policy {
	t.Helper()
	p := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	pol, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

// TestSignedBy: signedBy accepts a simple signature by one of its keys
// for the image's digest and an identity its signedIdentity accepts, and
// says why it refuses anything else.
func TestSignedBy(t *testing.T) {
	dir := t.TempDir()
	trusted, other := newEntity(t, "trusted"), newEntity(t, "other")
	if err := os.WriteFile(filepath.Join(dir, "trusted.asc"), armored(t, trusted), 0o644); err != nil {
		t.Fatal(err)
	}
	pol := loadPolicy(t, dir, fmt.Sprintf(`{
  "default": [{"type": "reject"}],
  "transports": {"docker": {
    "quay.io/team": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "trusted.asc"}],
    "quay.io/repo": [{"type": "signedBy", "keyType": "GPGKeys", "keyData": %q, "signedIdentity": {"type": "matchRepository"}}],
    "quay.io/exact": [{"type": "signedBy", "keyType": "GPGKeys", "keyPaths": ["trusted.asc"], "signedIdentity": {"type": "exactReference", "dockerReference": "registry.example/prod/app:1.0"}}],
    "mirror.lan/ocp": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "trusted.asc", "signedIdentity": {"type": "remapIdentity", "prefix": "mirror.lan/ocp", "signedPrefix": "quay.io/openshift"}}],
    "docker.io": [{"type": "insecureAcceptAnything"}]
  }}
}`, base64.StdEncoding.EncodeToString(armored(t, trusted))))
	d, d2 := digest.FromString("image"), digest.FromString("another")
	team := Image{Repo: "quay.io/team/app", Tag: "v1", Digest: d}
	for _, c := range []struct {
		name string
		im   Image
		sigs [][]byte
		want string // "" accepts
	}{
		{"signed", team, [][]byte{simpleSig(t, trusted, "quay.io/team/app:v1", d)}, ""},
		{"second good", team, [][]byte{simpleSig(t, other, "quay.io/team/app:v1", d), simpleSig(t, trusted, "quay.io/team/app:v1", d)}, ""},
		{"unsigned", team, nil, "no simple signature"},
		{"other key", team, [][]byte{simpleSig(t, other, "quay.io/team/app:v1", d)}, "not one of the policy's GPG keys"},
		{"other digest", team, [][]byte{simpleSig(t, trusted, "quay.io/team/app:v1", d2)}, "is for digest " + d2.String()},
		{"other tag", team, [][]byte{simpleSig(t, trusted, "quay.io/team/app:v2", d)}, "matchRepoDigestOrExact"},
		{"garbage", team, [][]byte{[]byte("<html>")}, "not an OpenPGP signed message"},
		{"by digest", Image{Repo: "quay.io/team/app", Digest: d}, [][]byte{simpleSig(t, trusted, "quay.io/team/app:v9", d)}, ""},
		{"matchRepository", Image{Repo: "quay.io/repo/x", Tag: "2", Digest: d}, [][]byte{simpleSig(t, trusted, "quay.io/repo/x:1", d)}, ""},
		{"matchRepository other repo", Image{Repo: "quay.io/repo/x", Tag: "2", Digest: d}, [][]byte{simpleSig(t, trusted, "quay.io/repo/y:2", d)}, "matchRepository"},
		{"exactReference", Image{Repo: "quay.io/exact/a", Tag: "1", Digest: d}, [][]byte{simpleSig(t, trusted, "registry.example/prod/app:1.0", d)}, ""},
		{"exactReference other", Image{Repo: "quay.io/exact/a", Tag: "1", Digest: d}, [][]byte{simpleSig(t, trusted, "quay.io/exact/a:1", d)}, "exactReference"},
		{"remapIdentity", Image{Repo: "mirror.lan/ocp/release", Tag: "4.16", Digest: d}, [][]byte{simpleSig(t, trusted, "quay.io/openshift/release:4.16", d)}, ""},
		{"remapIdentity unmapped", Image{Repo: "mirror.lan/ocp/release", Tag: "4.16", Digest: d}, [][]byte{simpleSig(t, trusted, "mirror.lan/ocp/release:4.16", d)}, "remapIdentity"},
		{"no signature needed", Image{Repo: "docker.io/library/busybox", Tag: "1", Digest: d}, nil, ""},
	} {
		err := pol.Check(c.im, Signatures{Simple: c.sigs, Where: "registries.d /x"})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && err == nil:
			t.Errorf("%s: accepted, want a refusal saying %q", c.name, c.want)
		case c.want != "" && !strings.Contains(err.Error(), c.want):
			t.Errorf("%s: refusal %q does not say %q", c.name, err, c.want)
		}
	}
	if cosign, simple := pol.Needs(team); cosign || !simple {
		t.Errorf("Needs(%s) = %v, %v; want simple signatures only", team, cosign, simple)
	}
	if _, simple := pol.Needs(Image{Repo: "docker.io/library/busybox", Digest: d}); simple {
		t.Error("an image the policy accepts anything for needs signatures")
	}
	if !pol.HasSignedBy() {
		t.Error("HasSignedBy is false")
	}
}

// TestSignedByBadRequirements: what Ferry cannot apply is refused when the
// file is read, naming the file and the requirement.
func TestSignedByBadRequirements(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "not.asc"), []byte("not a key"), 0o644)
	for _, c := range []struct{ req, want string }{
		{`{"type": "signedBy", "keyPath": "not.asc"}`, `keyType ""`},
		{`{"type": "signedBy", "keyType": "X509Certificates", "keyPath": "not.asc"}`, "GPGKeys"},
		{`{"type": "signedBy", "keyType": "GPGKeys"}`, "needs keyPath"},
		{`{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "missing.asc"}`, "missing.asc"},
		{`{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "not.asc"}`, "is not an OpenPGP public key"},
		{`{"type": "signedBy", "keyType": "GPGKeys", "keyData": "!!"}`, "not base64"},
		{`{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "not.asc", "signedIdentity": {"type": "remapIdentity", "prefix": "a"}}`, "is not an OpenPGP"},
	} {
		p := filepath.Join(dir, "policy.json")
		os.WriteFile(p, []byte(`{"default": [`+c.req+`]}`), 0o644)
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "default[0]") {
			t.Errorf("%s: error %v, want one naming %s, default[0] and %q", c.req, err, p, c.want)
		}
	}
	e := newEntity(t, "k")
	os.WriteFile(filepath.Join(dir, "k.asc"), armored(t, e), 0o644)
	p := filepath.Join(dir, "policy.json")
	os.WriteFile(p, []byte(`{"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "k.asc", "signedIdentity": {"type": "remapIdentity", "prefix": "a"}}]}`), 0o644)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "signedPrefix") {
		t.Errorf("remapIdentity without signedPrefix: %v", err)
	}
}
