package ocmirror_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// gpgKeys is a gpg home holding test signing keys, made with gpg itself
// as a publisher would.
type gpgKeys struct {
	t    *testing.T
	gpg  string
	home string
}

func newGPG(t *testing.T) *gpgKeys {
	t.Helper()
	// A short home: gpg-agent's socket path must fit in sun_path.
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	g := &gpgKeys{t: t, gpg: testenv.Tool(t, "gpg"), home: home}
	t.Cleanup(func() {
		if gpgconf, err := exec.LookPath("gpgconf"); err == nil {
			exec.Command(gpgconf, "--homedir", home, "--kill", "gpg-agent").Run()
		}
		os.RemoveAll(home)
	})
	return g
}

func (g *gpgKeys) run(stdin []byte, args ...string) []byte {
	g.t.Helper()
	cmd := exec.Command(g.gpg, append([]string{"--homedir", g.home, "--batch", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		g.t.Fatalf("gpg %v: %v\n%s", args, err, stderr.String())
	}
	return out.Bytes()
}

// newKey makes a signing key for email and writes its armored public key
// to path, as gpg --export --armor does.
func (g *gpgKeys) newKey(email, path string) {
	g.t.Helper()
	g.run(nil, "--quick-gen-key", "Ferry test <"+email+">", "ed25519", "sign", "never")
	writeFile(g.t, path, string(g.run(nil, "--export", "--armor", email)))
}

// sign makes a simple signature (containers-signature(5)) of ref at
// digest d with email's key: gpg --sign of the JSON payload, as
// skopeo copy --sign-by writes it.
func (g *gpgKeys) sign(email, ref string, d v1.Hash) []byte {
	g.t.Helper()
	payload := fmt.Sprintf(`{"critical":{"identity":{"docker-reference":%q},"image":{"docker-manifest-digest":%q},"type":"atomic container signature"},"optional":{"creator":"ferry test"}}`, ref, d.String())
	return g.run([]byte(payload), "--local-user", email, "--sign")
}

// putSignature stores sig as signature-n of repoPath@d in a lookaside
// directory tree, as it is published on a static web server.
func putSignature(t *testing.T, root, repoPath string, d v1.Hash, n int, sig []byte) {
	t.Helper()
	dir := filepath.Join(root, repoPath+"@"+d.Algorithm+"="+d.Hex)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("signature-%d", n)), sig, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSecurePolicySignedBy: a signedBy (GPGKeys) policy with signatures
// on a lookaside web server named by --registries.d lets the image signed
// by the trusted key through and refuses an unsigned one, one signed by
// another key and one whose signature names another digest (exit bit 8,
// each named with why), in the oc-mirror personality and ferry mirror.
func TestSecurePolicySignedBy(t *testing.T) {
	bin := ocMirror(t)
	up := testenv.StartDockerRegistry(t)
	keys := t.TempDir()
	g := newGPG(t)
	g.newKey("trusted@ferry.invalid", filepath.Join(keys, "trusted.gpg"))
	g.newKey("other@ferry.invalid", filepath.Join(keys, "other.gpg"))

	site := t.TempDir()
	// A lookaside is a plain static web server.
	srv := httptest.NewServer(http.FileServer(http.Dir(site)))
	t.Cleanup(srv.Close)

	signed := pushRandom(t, up.Host+"/apps/signed:1")
	putSignature(t, site, "apps/signed", signed, 1, g.sign("trusted@ferry.invalid", up.Host+"/apps/signed:1", signed))
	pushRandom(t, up.Host+"/apps/unsigned:1")
	wrong := pushRandom(t, up.Host+"/apps/wrongkey:1")
	putSignature(t, site, "apps/wrongkey", wrong, 1, g.sign("other@ferry.invalid", up.Host+"/apps/wrongkey:1", wrong))
	moved := pushRandom(t, up.Host+"/apps/moved:1")
	// Signed by the trusted key, but for another image's digest.
	putSignature(t, site, "apps/moved", moved, 1, g.sign("trusted@ferry.invalid", up.Host+"/apps/moved:1", signed))
	// Two signatures: the first by an unknown key, the second good.
	two := pushRandom(t, up.Host+"/apps/two:1")
	putSignature(t, site, "apps/two", two, 1, g.sign("other@ferry.invalid", up.Host+"/apps/two:1", two))
	putSignature(t, site, "apps/two", two, 2, g.sign("trusted@ferry.invalid", up.Host+"/apps/two:1", two))
	free := pushRandom(t, up.Host+"/tools/free:1")

	regd := t.TempDir()
	writeFile(t, filepath.Join(regd, "default.yaml"), "default-docker:\n  lookaside: http://127.0.0.1:1/nothing-here\n")
	writeFile(t, filepath.Join(regd, "apps.yaml"), fmt.Sprintf("docker:\n  %q:\n    lookaside: %s\n", up.Host+"/apps", srv.URL))
	pol := writeFile(t, filepath.Join(keys, "policy.json"), fmt.Sprintf(`{
  "default": [{"type": "reject"}],
  "transports": {
    "docker": {
      "%[1]s/apps": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "trusted.gpg"}],
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
  - name: %[1]s/apps/moved:1
  - name: %[1]s/apps/two:1
  - name: %[1]s/tools/free:1
`, up.Host))

	for _, tool := range []struct {
		name string
		args func(ws, dst string) []string
	}{
		{"oc-mirror", func(ws, dst string) []string {
			return []string{bin, "-c", isc, "--workspace", "file://" + ws, "docker://" + dst, "--v2"}
		}},
		{"ferry mirror", func(ws, dst string) []string {
			return []string{testenv.FerryBinary(t), "mirror", "-c", isc, "--workspace", "file://" + ws, "docker://" + dst}
		}},
	} {
		t.Run(tool.name, func(t *testing.T) {
			dst := testenv.StartFerry(t, testenv.FerryOptions{})
			ws := t.TempDir()
			a := tool.args(ws, dst.Host)
			out, code := run(t, nil, a[0], append(a[1:], "--secure-policy", "--policy", pol, "--registries.d", regd,
				"--src-tls-verify=false", "--dest-tls-verify=false")...)
			if code != 8 {
				t.Errorf("exit %d, want 8 (additional images refused)\n%s", code, out)
			}
			for repo, d := range map[string]v1.Hash{"apps/signed": signed, "apps/two": two, "tools/free": free} {
				if f := testenv.GetManifest(t, dst.Host, repo, "1"); f.Status != http.StatusOK || f.Digest != d.String() {
					t.Errorf("%s:1 was not mirrored: status %d", repo, f.Status)
				}
			}
			for _, repo := range []string{"apps/unsigned", "apps/wrongkey", "apps/moved"} {
				if f := testenv.GetManifest(t, dst.Host, repo, "1"); f.Status != http.StatusNotFound {
					t.Errorf("%s:1 was mirrored against the policy (status %d)", repo, f.Status)
				}
			}
			errs, _ := filepath.Glob(filepath.Join(ws, "working-dir", "logs", "mirroring_errors_*.txt"))
			if len(errs) != 1 {
				t.Fatalf("want one mirroring_errors file, got %v\n%s", errs, out)
			}
			report, _ := os.ReadFile(errs[0])
			for _, want := range []string{
				"apps/unsigned:1", "no simple signature (GPG) at the lookaside",
				"apps/wrongkey:1", "not one of the policy's GPG keys",
				"apps/moved:1", "is for digest " + signed.String(),
			} {
				if !strings.Contains(string(report), want) || !strings.Contains(out, want) {
					t.Errorf("report and output do not say %q:\n%s", want, report)
				}
			}
			for _, ok := range []string{"apps/signed:1", "apps/two:1", "tools/free:1"} {
				if strings.Contains(string(report), ok) {
					t.Errorf("%s is reported as failed:\n%s", ok, report)
				}
			}
		})
	}

	// Bad registries.d content or an unusable key stops the run, naming
	// the file, before anything is copied.
	badYAML := t.TempDir()
	badFile := writeFile(t, filepath.Join(badYAML, "bad.yaml"), "docker:\n  quay.io: [\n")
	typo := t.TempDir()
	typoFile := writeFile(t, filepath.Join(typo, "typo.yaml"), "docker:\n  quay.io:\n    lookasid: https://sigs.example\n")
	notKey := writeFile(t, filepath.Join(keys, "notkey.gpg"), "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n-----END PGP PUBLIC KEY BLOCK-----\n")
	for _, bad := range []struct {
		name, regd, policy string
		want               []string
	}{
		{"yaml", badYAML, pol, []string{badFile, "does not parse"}},
		{"unknown key", typo, pol, []string{typoFile, "lookasid"}},
		{"missing dir", filepath.Join(keys, "nope"), pol, []string{filepath.Join(keys, "nope"), "--registries.d"}},
		{"missing key", regd, writeFile(t, filepath.Join(t.TempDir(), "p.json"), `{"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "missing.gpg"}]}`), []string{"missing.gpg"}},
		{"not a key", regd, writeFile(t, filepath.Join(t.TempDir(), "p.json"), `{"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "`+notKey+`"}]}`), []string{notKey, "is not an OpenPGP public key"}},
		{"key type", regd, writeFile(t, filepath.Join(t.TempDir(), "p.json"), `{"default": [{"type": "signedBy", "keyType": "X509Certificates", "keyPath": "`+notKey+`"}]}`), []string{"X509Certificates", "GPGKeys"}},
	} {
		dst2 := t.TempDir()
		out, code := run(t, nil, bin, "-c", isc, "file://"+dst2, "--v2", "--secure-policy", "--policy", bad.policy, "--registries.d", bad.regd, "--src-tls-verify=false")
		if code != 1 {
			t.Errorf("%s: exit %d, want 1\n%s", bad.name, code, out)
		}
		for _, w := range bad.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: the output does not say %q:\n%s", bad.name, w, out)
			}
		}
		if chunks, _ := filepath.Glob(filepath.Join(dst2, "*.tar")); len(chunks) > 0 {
			t.Errorf("%s: an archive was written: %v", bad.name, chunks)
		}
	}
}
