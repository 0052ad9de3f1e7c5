package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"sigs.k8s.io/yaml"

	"github.com/ferry-mirror/ferry/internal/simplesign"
	"github.com/ferry-mirror/ferry/internal/testenv"
)

func newKey(t testing.TB, name string) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(name, "test release key", strings.ToLower(name)+"@example.com",
		&packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// writePublicKey writes e's armored public key as gpg --export --armor does.
func writePublicKey(t testing.TB, e *openpgp.Entity) string {
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
	p := filepath.Join(t.TempDir(), "release-pk.asc")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// atomicDocument is the JSON a release signature signs.
func atomicDocument(d v1.Hash, ref, typ string) []byte {
	doc, _ := json.Marshal(map[string]any{
		"critical": map[string]any{
			"type":     typ,
			"image":    map[string]string{"docker-manifest-digest": d.String()},
			"identity": map[string]string{"docker-reference": ref},
		},
		"optional": map[string]any{"creator": "Red Hat OpenShift Signing Authority 0.0.1"},
	})
	return doc
}

// sign makes an OpenPGP signed message (not a detached signature), the
// shape of the files under signatures/.../signature-1.
func sign(t testing.TB, e *openpgp.Entity, doc []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := openpgp.Sign(&buf, e, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(doc)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func hashOf(s string) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256([]byte(s)))}
}

// signatureServer serves files at /sha256=<hex>/signature-N and counts
// requests per path.
type signatureServer struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string][]byte
	hits  map[string]int
	// missing is the status for an absent file: 404, or 403 as S3 answers.
	missing int
}

func startSignatureServer(t *testing.T) *signatureServer {
	s := &signatureServer{files: map[string][]byte{}, hits: map[string]int{}, missing: http.StatusNotFound}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.hits[r.URL.Path]++
		b, ok := s.files[r.URL.Path]
		if !ok {
			http.Error(w, "no such signature", s.missing)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *signatureServer) put(prefix string, d v1.Hash, n int, sig []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[fmt.Sprintf("%s/sha256=%s/signature-%d", prefix, d.Hex, n)] = sig
}

func TestVerifyReleaseSignature(t *testing.T) {
	trusted, other := newKey(t, "Release"), newKey(t, "Other")
	d := hashOf("release 4.16.3")
	ref := "quay.example/openshift-release-dev/ocp-release:4.16.3-x86_64"
	keyFile := writePublicKey(t, trusted)
	v, err := NewVerifier(SignatureOptions{KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}

	c, err := v.Verify(sign(t, trusted, atomicDocument(d, ref, "atomic container signature")), d)
	if err != nil {
		t.Fatal(err)
	}
	if c.DockerReference != ref || c.Digest != d || c.KeyID != trusted.PrimaryKey.KeyIdString() {
		t.Fatalf("claim %+v", c)
	}

	bad := []struct {
		name string
		sig  []byte
		want []string
	}{
		{"another key", sign(t, other, atomicDocument(d, ref, "atomic container signature")),
			[]string{"signed by key " + other.PrimaryKey.KeyIdString(), fmt.Sprintf("not one of the key in %s (fingerprints %X)", keyFile, trusted.PrimaryKey.Fingerprint), "--ignore-release-signature"}},
		{"digest mismatch", sign(t, trusted, atomicDocument(hashOf("another release"), ref, "atomic container signature")),
			[]string{"the signature is for " + hashOf("another release").String()}},
		{"wrong document type", sign(t, trusted, atomicDocument(d, ref, "cosign container image signature")),
			[]string{`critical.type "cosign container image signature"`}},
		{"not OpenPGP", []byte("<html>not found</html>"), []string{"not an OpenPGP signed message"}},
		// Tampered, and so long that a reader stopping early would never
		// reach the signature check.
		{"oversized document", tamper(sign(t, trusted, append(atomicDocument(d, ref, "atomic container signature"), bytes.Repeat([]byte(" "), 2<<20)...)), ref),
			[]string{"larger than 1 MiB"}},
		{"tampered", tamper(sign(t, trusted, atomicDocument(d, ref, "atomic container signature")), ref),
			[]string{"bad signature by key " + trusted.PrimaryKey.KeyIdString()}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(tc.sig, d)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// tamper changes one byte of the signed text inside the message, which is
// stored uncompressed by openpgp.Sign.
func tamper(sig []byte, ref string) []byte {
	out := bytes.Clone(sig)
	i := bytes.Index(out, []byte(ref))
	out[i] ^= 0x01
	return out
}

func TestFetchAndVerify(t *testing.T) {
	trusted, other := newKey(t, "Release"), newKey(t, "Other")
	srv := startSignatureServer(t)
	good, multi, unsigned, foreign := hashOf("4.16.3"), hashOf("4.16.4"), hashOf("4.16.5"), hashOf("4.17.0")
	ref := "quay.example/ocp-release:4.16.3-x86_64"
	srv.put("/pub/sigs", good, 1, sign(t, trusted, atomicDocument(good, ref, simplesign.AtomicType)))
	// Two signatures, one by a key we do not trust: the trusted one is kept.
	srv.put("/pub/sigs", multi, 1, sign(t, other, atomicDocument(multi, ref, simplesign.AtomicType)))
	srv.put("/pub/sigs", multi, 2, sign(t, trusted, atomicDocument(multi, ref, simplesign.AtomicType)))
	srv.put("/pub/sigs", foreign, 1, sign(t, other, atomicDocument(foreign, ref, simplesign.AtomicType)))

	// OCP_SIGNATURE_URL is written with a trailing slash by oc-mirror users.
	env := map[string]string{"OCP_SIGNATURE_URL": srv.URL + "/pub/sigs/", "OCP_SIGNATURE_VERIFICATION_PK": writePublicKey(t, trusted)}
	opts := SignatureOptionsFromEnv(func(k string) string { return env[k] }, "")
	opts.Backoff = time.Millisecond
	v, err := NewVerifier(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	s, err := v.FetchAndVerify(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Signatures) != 1 || s.Claims[0].DockerReference != ref {
		t.Fatalf("got %d signatures, claims %+v", len(s.Signatures), s.Claims)
	}
	if srv.hits["/pub/sigs/sha256="+good.Hex+"/signature-1"] != 1 || srv.hits["/pub/sigs/sha256="+good.Hex+"/signature-2"] != 1 {
		t.Errorf("requests %v: want signature-1, then signature-2 answering 404", srv.hits)
	}

	s, err = v.FetchAndVerify(ctx, multi)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Signatures) != 1 || s.Claims[0].KeyID != trusted.PrimaryKey.KeyIdString() {
		t.Fatalf("kept %d signatures %+v, want only the trusted one", len(s.Signatures), s.Claims)
	}

	_, err = v.FetchAndVerify(ctx, unsigned)
	if err == nil || !strings.Contains(err.Error(), srv.URL+"/pub/sigs/sha256="+unsigned.Hex+"/signature-1") ||
		!strings.Contains(err.Error(), "--ignore-release-signature") {
		t.Fatalf("err %v, want one naming the signature URL and what to do", err)
	}
	_, err = v.FetchAndVerify(ctx, foreign)
	if err == nil || !strings.Contains(err.Error(), other.PrimaryKey.KeyIdString()) {
		t.Fatalf("err %v, want one naming the other key", err)
	}

	// A store that answers 403 for a missing object ends the list too.
	srv.mu.Lock()
	srv.missing = http.StatusForbidden
	srv.mu.Unlock()
	if s, err := v.FetchAndVerify(ctx, good); err != nil || len(s.Signatures) != 1 {
		t.Fatalf("with 403 for signature-2: %v", err)
	}
	if _, err := v.FetchAndVerify(ctx, unsigned); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("err %v, want the 403 of signature-1 reported", err)
	}

	// A flag names the key even when the environment names another.
	if o := SignatureOptionsFromEnv(func(k string) string { return env[k] }, "/etc/flag.asc"); o.KeyFile != "/etc/flag.asc" {
		t.Errorf("key file %s, want the flag's", o.KeyFile)
	}
}

func TestSignatureServerDown(t *testing.T) {
	srv := startSignatureServer(t)
	url := srv.URL
	srv.Close()
	v, err := NewVerifier(SignatureOptions{BaseURL: url, KeyFile: writePublicKey(t, newKey(t, "Release")), Attempts: 2, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.FetchAndVerify(context.Background(), hashOf("x"))
	if err == nil || !strings.Contains(err.Error(), "unreachable after 2 attempts") || !strings.Contains(err.Error(), url) {
		t.Fatalf("err %v", err)
	}
}

// The published fingerprints of Red Hat's release keys, as
// access.redhat.com/security/team/key and cluster-update-keys list them.
var redHatFingerprints = []string{
	"567E347AD0044ADE55BA8A5F199E2F91FD431D51", // Red Hat, Inc. (release key 2)
	"B08B659EE86AF623BC90E8DB938A80CAF21541EB", // Red Hat, Inc. (beta key 2)
}

// TestBuiltinKeysArePublished checks the embedded keys are Red Hat's, by
// fingerprint, both as Ferry parses them and as gpg reads the file.
func TestBuiltinKeysArePublished(t *testing.T) {
	keys, err := BuiltinKeys()
	if err != nil {
		t.Fatal(err)
	}
	if got := Fingerprints(keys); !slices.Equal(got, redHatFingerprints) {
		t.Fatalf("built-in key fingerprints %v, want Red Hat's %v", got, redHatFingerprints)
	}
	for _, e := range keys {
		if e.PrivateKey != nil {
			t.Errorf("key %X carries a private key", e.PrimaryKey.Fingerprint)
		}
		if n, _ := e.PrimaryKey.BitLength(); n != 4096 {
			t.Errorf("key %X: %d bits, want the published RSA 4096", e.PrimaryKey.Fingerprint, n)
		}
		var uids []string
		for name := range e.Identities {
			uids = append(uids, name)
		}
		if len(uids) != 1 || !strings.HasPrefix(uids[0], "Red Hat, Inc. (") || !strings.HasSuffix(uids[0], ") <security@redhat.com>") {
			t.Errorf("key %X: user IDs %q, want one Red Hat, Inc. <security@redhat.com>", e.PrimaryKey.Fingerprint, uids)
		}
	}
	run := gpgHome(t)
	var fprs []string
	for line := range strings.SplitSeq(string(run(redHatKeys, "--with-colons", "--show-keys")), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" && len(f) > 9 {
			fprs = append(fprs, f[9])
		}
	}
	if !slices.Equal(fprs, redHatFingerprints) {
		t.Errorf("gpg reads fingerprints %v from the embedded file, want %v", fprs, redHatFingerprints)
	}
}

// TestNoKeyFileUsesBuiltinKeys: with no key configured the built-in keys
// verify, so a release signed by any other key is refused, and the
// message names the keys that were tried.
func TestNoKeyFileUsesBuiltinKeys(t *testing.T) {
	v, err := NewVerifier(SignatureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(v.Fingerprints(), redHatFingerprints) {
		t.Fatalf("verifier keys %v, want the built-in %v", v.Fingerprints(), redHatFingerprints)
	}
	d := hashOf("release 4.16.3")
	_, err = v.Verify(sign(t, newKey(t, "Other"), atomicDocument(d, "q.example/r:4.16.3-x86_64", simplesign.AtomicType)), d)
	if err == nil {
		t.Fatal("a signature by a key that is not Red Hat's was accepted")
	}
	for _, w := range append([]string{"not one of the built-in Red Hat release keys", "OCP_SIGNATURE_VERIFICATION_PK"}, redHatFingerprints...) {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

func TestNewVerifierBadKeyFile(t *testing.T) {
	_, err := NewVerifier(SignatureOptions{BaseURL: "mirror.example/sigs"})
	if err == nil || !strings.Contains(err.Error(), "OCP_SIGNATURE_URL") {
		t.Fatalf("err %v, want one about the signature URL", err)
	}
	p := filepath.Join(t.TempDir(), "key.asc")
	os.WriteFile(p, []byte("not a key"), 0o644)
	_, err = NewVerifier(SignatureOptions{KeyFile: p})
	if err == nil || !strings.Contains(err.Error(), "is not an OpenPGP public key") {
		t.Fatalf("err %v", err)
	}
	_, err = NewVerifier(SignatureOptions{BaseURL: "mirror.example/sigs", KeyFile: p})
	if err == nil || !strings.Contains(err.Error(), "OCP_SIGNATURE_URL") {
		t.Fatalf("err %v, want one about the signature URL", err)
	}
	_, err = NewVerifier(SignatureOptions{KeyFile: filepath.Join(t.TempDir(), "missing.asc")})
	if err == nil || !strings.Contains(err.Error(), "missing.asc") {
		t.Fatalf("err %v", err)
	}
}

// TestSignatureConfigMapVerifiesWithGPG writes the ConfigMaps, reads them
// back as a cluster would, and checks each signature with gpg itself.
func TestSignatureConfigMapVerifiesWithGPG(t *testing.T) {
	key := newKey(t, "Release")
	d1, d2 := hashOf("4.16.3"), hashOf("4.16.4")
	sig1 := sign(t, key, atomicDocument(d1, "q.example/r:4.16.3-x86_64", simplesign.AtomicType))
	sig2 := sign(t, key, atomicDocument(d2, "q.example/r:4.16.4-x86_64", simplesign.AtomicType))
	out, err := SignatureConfigMaps([]Signed{{Digest: d2, Signatures: [][]byte{sig2}}, {Digest: d1, Signatures: [][]byte{sig1}}})
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(out), "---\n")
	if len(docs) != 2 {
		t.Fatalf("%d documents, want one ConfigMap per release:\n%s", len(docs), out)
	}
	run := gpgHome(t)
	pub, _ := os.ReadFile(writePublicKey(t, key))
	run(pub, "--import")
	for i, want := range []struct {
		d   v1.Hash
		sig []byte
	}{{d1, sig1}, {d2, sig2}} {
		var cm struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name      string            `json:"name"`
				Namespace string            `json:"namespace"`
				Labels    map[string]string `json:"labels"`
			} `json:"metadata"`
			BinaryData map[string]string `json:"binaryData"`
		}
		if err := yaml.UnmarshalStrict([]byte(docs[i]), &cm); err != nil {
			t.Fatal(err)
		}
		hexName := "sha256-" + want.d.Hex
		if cm.APIVersion != "v1" || cm.Kind != "ConfigMap" || cm.Metadata.Name != hexName ||
			cm.Metadata.Namespace != "openshift-config-managed" || len(cm.BinaryData) != 1 {
			t.Fatalf("document %d:\n%s", i, docs[i])
		}
		if v, ok := cm.Metadata.Labels["release.openshift.io/verification-signatures"]; !ok || v != "" {
			t.Fatalf("labels %v", cm.Metadata.Labels)
		}
		raw, err := base64.StdEncoding.DecodeString(cm.BinaryData[hexName+"-1"])
		if err != nil || !bytes.Equal(raw, want.sig) {
			t.Fatalf("binaryData %s-1 does not hold the signature (err %v)", hexName, err)
		}
		run(raw, "--verify")
	}
}

// TestVerifyGPGMadeSignature checks a signature made by gpg itself, as
// the real release signatures are (compressed, RSA or EdDSA).
func TestVerifyGPGMadeSignature(t *testing.T) {
	run := gpgHome(t)
	run(nil, "--quick-gen-key", "Ferry Test Release <release@example.com>", "ed25519", "sign", "never")
	pub := run(nil, "--export", "--armor", "release@example.com")
	keyFile := filepath.Join(t.TempDir(), "pk.asc")
	os.WriteFile(keyFile, pub, 0o644)

	d := hashOf("4.17.2")
	sig := run(atomicDocument(d, "q.example/r:4.17.2-x86_64", simplesign.AtomicType), "--sign", "--compress-level", "6")
	v, err := NewVerifier(SignatureOptions{KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(sig, d); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(sig, hashOf("4.17.1")); err == nil {
		t.Fatal("a gpg signature for another digest was accepted")
	}
}

// gpgHome returns a runner for gpg with a keyring of its own; the agent gpg
// starts for it is stopped when the test ends.
func gpgHome(t *testing.T) func(stdin []byte, args ...string) []byte {
	gpg := testenv.Tool(t, "gpg")
	home := t.TempDir()
	t.Cleanup(func() {
		if gpgconf, err := exec.LookPath("gpgconf"); err == nil {
			exec.Command(gpgconf, "--homedir", home, "--kill", "gpg-agent").Run()
		}
	})
	return func(stdin []byte, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(gpg, append([]string{"--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		cmd.Stdin = bytes.NewReader(stdin)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("gpg %v: %v\n%s", args, err, stderr.String())
		}
		return stdout.Bytes()
	}
}

// TestSignatureConfigMapJSON checks signature-configmap.json holds the
// same ConfigMaps as the YAML: the object for one release, a v1 List for
// several.
func TestSignatureConfigMapJSON(t *testing.T) {
	d1, d2 := hashOf("4.16.3"), hashOf("4.16.4")
	type cm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		BinaryData map[string][]byte `json:"binaryData"`
		Items      []cm              `json:"items"`
	}
	one, err := SignatureConfigMapsJSON([]Signed{{Digest: d1, Signatures: [][]byte{[]byte("sig1")}}})
	if err != nil {
		t.Fatal(err)
	}
	var got cm
	if err := json.Unmarshal(one, &got); err != nil {
		t.Fatal(err)
	}
	if got.Kind != "ConfigMap" || got.Metadata.Name != "sha256-"+d1.Hex || got.Metadata.Namespace != SignatureNamespace || string(got.BinaryData["sha256-"+d1.Hex+"-1"]) != "sig1" {
		t.Errorf("one release:\n%s", one)
	}
	two, err := SignatureConfigMapsJSON([]Signed{{Digest: d2, Signatures: [][]byte{[]byte("sig2")}}, {Digest: d1, Signatures: [][]byte{[]byte("sig1")}}})
	if err != nil {
		t.Fatal(err)
	}
	got = cm{}
	if err := json.Unmarshal(two, &got); err != nil {
		t.Fatal(err)
	}
	if got.APIVersion != "v1" || got.Kind != "List" || len(got.Items) != 2 || got.Items[0].Kind != "ConfigMap" || string(got.Items[1].BinaryData["sha256-"+d2.Hex+"-1"]) != "sig2" {
		t.Errorf("two releases:\n%s", two)
	}
	if none, err := SignatureConfigMapsJSON(nil); none != nil || err != nil {
		t.Errorf("no releases = %q, %v", none, err)
	}
}
