package ocmirror_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// cosignSign pushes a cosign-format signature of repo@d, signed with key,
// as cosign sign does: an OCI image tagged sha256-<hex>.sig whose layer is
// the simple-signing payload, with the signature in an annotation.
func cosignSign(t *testing.T, repo string, d v1.Hash, key *ecdsa.PrivateKey) {
	t.Helper()
	payload := []byte(fmt.Sprintf(`{"critical":{"identity":{"docker-reference":%q},"image":{"docker-manifest-digest":%q},"type":"cosign container image signature"},"optional":null}`, repo, d.String()))
	signer, err := signature.LoadSigner(key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signer.SignMessage(bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:       static.NewLayer(payload, "application/vnd.dev.cosign.simplesigning.v1+json"),
		Annotations: map[string]string{"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sig)},
	})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(fmt.Sprintf("%s:sha256-%s.sig", repo, d.Hex), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
}

func newKey(t *testing.T, dir, name string) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := cryptoutils.MarshalPublicKeyToPEM(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, name), string(pub))
	return k
}

// TestSecurePolicy: a policy requiring a sigstore signature by a test
// key lets the image signed with it through, and refuses an unsigned
// image and one signed with another key (exit bit 8, both named).
func TestSecurePolicy(t *testing.T) {
	bin := ocMirror(t)
	up := testenv.StartDockerRegistry(t)
	keys := t.TempDir()
	trusted, other := newKey(t, keys, "trusted.pub"), newKey(t, keys, "other.pub")
	signed := pushRandom(t, up.Host+"/apps/signed:1")
	cosignSign(t, up.Host+"/apps/signed", signed, trusted)
	pushRandom(t, up.Host+"/apps/unsigned:1")
	wrong := pushRandom(t, up.Host+"/apps/wrongkey:1")
	cosignSign(t, up.Host+"/apps/wrongkey", wrong, other)
	free := pushRandom(t, up.Host+"/tools/free:1")

	pol := writeFile(t, filepath.Join(keys, "policy.json"), fmt.Sprintf(`{
  "default": [{"type": "reject"}],
  "transports": {
    "docker": {
      "%[1]s/apps": [{"type": "sigstoreSigned", "keyPath": "trusted.pub", "signedIdentity": {"type": "matchRepository"}}],
      "%[1]s/tools": [{"type": "insecureAcceptAnything"}]
    }
  }
}`, up.Host))
	isc := writeFile(t, filepath.Join(t.TempDir(), "isc.yaml"), fmt.Sprintf(`kind: ImageSetConfiguration
apiVersion: mirror.openshift.io/v2alpha1
mirror:
  additionalImages:
  - name: %[1]s/apps/signed:1
  - name: %[1]s/apps/unsigned:1
  - name: %[1]s/apps/wrongkey:1
  - name: %[1]s/tools/free:1
`, up.Host))
	dst := testenv.StartFerry(t, testenv.FerryOptions{})
	ws := t.TempDir()
	out, code := run(t, nil, bin, "-c", isc, "--workspace", "file://"+ws, "docker://"+dst.Host, "--v2", "--secure-policy", "--policy", pol,
		"--src-tls-verify=false", "--dest-tls-verify=false")
	if code != 8 {
		t.Errorf("exit %d, want 8 (additional images refused)", code)
	}
	if f := testenv.GetManifest(t, dst.Host, "apps/signed", "1"); f.Status != http.StatusOK || f.Digest != signed.String() {
		t.Errorf("the signed image was not mirrored: status %d", f.Status)
	}
	if f := testenv.GetManifest(t, dst.Host, "apps/signed", "sha256-"+signed.Hex+".sig"); f.Status != http.StatusOK {
		t.Errorf("the signature did not travel with the image: status %d", f.Status)
	}
	if f := testenv.GetManifest(t, dst.Host, "tools/free", "1"); f.Status != http.StatusOK || f.Digest != free.String() {
		t.Errorf("the image the policy accepts anything for was not mirrored: status %d", f.Status)
	}
	for _, repo := range []string{"apps/unsigned", "apps/wrongkey"} {
		if f := testenv.GetManifest(t, dst.Host, repo, "1"); f.Status != http.StatusNotFound {
			t.Errorf("%s:1 was mirrored against the policy (status %d)", repo, f.Status)
		}
	}
	errs, _ := filepath.Glob(filepath.Join(ws, "working-dir", "logs", "mirroring_errors_*.txt"))
	if len(errs) != 1 {
		t.Fatalf("want one mirroring_errors file, got %v", errs)
	}
	report, _ := os.ReadFile(errs[0])
	for _, want := range []string{"apps/unsigned:1", "no sigstore signature", "apps/wrongkey:1", "does not verify with the policy's keys"} {
		if !strings.Contains(string(report), want) || !strings.Contains(out, want) {
			t.Errorf("report and output do not say %q:\n%s", want, report)
		}
	}
	if strings.Contains(string(report), "apps/signed:1") {
		t.Errorf("the signed image is reported as failed:\n%s", report)
	}

	// delete --delete-signatures takes the cosign signature with the image.
	disc := writeFile(t, filepath.Join(t.TempDir(), "delete.yaml"), fmt.Sprintf("kind: DeleteImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\ndelete:\n  additionalImages:\n  - name: %s/apps/signed:1\n", up.Host))
	if _, code := run(t, nil, bin, "delete", "--generate", "--delete-signatures", "-c", disc, "--workspace", "file://"+ws, "docker://"+dst.Host, "--v2", "--src-tls-verify=false"); code != 0 {
		t.Fatalf("delete --generate --delete-signatures: exit %d", code)
	}
	list, err := os.ReadFile(filepath.Join(ws, "working-dir", "delete", "delete-images.yaml"))
	if err != nil || !strings.Contains(string(list), "apps/signed:sha256-"+signed.Hex+".sig") {
		t.Fatalf("the delete list does not name the signature (%v):\n%s", err, list)
	}
	if _, code := run(t, nil, bin, "delete", "--delete-yaml-file", filepath.Join(ws, "working-dir", "delete", "delete-images.yaml"), "docker://"+dst.Host, "--v2", "--dest-tls-verify=false"); code != 0 {
		t.Fatalf("delete: exit %d", code)
	}
	for _, ref := range []string{"1", "sha256-" + signed.Hex + ".sig"} {
		if f := testenv.GetManifest(t, dst.Host, "apps/signed", ref); f.Status != http.StatusNotFound {
			t.Errorf("apps/signed:%s is left after delete --delete-signatures (status %d)", ref, f.Status)
		}
	}
	if f := testenv.GetManifest(t, dst.Host, "tools/free", "1"); f.Status != http.StatusOK {
		t.Errorf("an image the delete does not name was deleted (status %d)", f.Status)
	}

	// A policy that does not parse stops the run before anything is copied.
	for _, bad := range []struct{ body, want string }{
		{`{"default": [{"type": "reject"}`, "does not parse"},
		{`{"default": [{"type": "sigstoreSigned"}]}`, "needs keyPath"},
		{`{"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "k.gpg"}]}`, "k.gpg"},
		{`{"default": [{"type": "sigstoreSigned", "keyPath": "missing.pub"}]}`, "missing.pub"},
	} {
		p := writeFile(t, filepath.Join(t.TempDir(), "policy.json"), bad.body)
		dst2 := t.TempDir()
		out, code := run(t, nil, bin, "-c", isc, "file://"+dst2, "--v2", "--secure-policy", "--policy", p, "--src-tls-verify=false")
		if code != 1 || !strings.Contains(out, bad.want) || !strings.Contains(out, p) {
			t.Errorf("policy %s: exit %d, want 1 naming the file and %q", bad.body, code, bad.want)
		}
		if chunks, _ := filepath.Glob(filepath.Join(dst2, "*.tar")); len(chunks) > 0 {
			t.Errorf("policy %s: an archive was written: %v", bad.body, chunks)
		}
	}
}
