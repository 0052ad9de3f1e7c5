package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

// TestScopes: the most specific scope of containers-policy.json(5) wins.
func TestScopes(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "policy.json")
	body := `{
  "default": [{"type": "reject"}],
  "transports": {
    "docker": {
      "quay.io/team/app:v1": [{"type": "insecureAcceptAnything"}],
      "quay.io/team": [{"type": "reject"}],
      "*.example.com": [{"type": "insecureAcceptAnything"}],
      "registry.lan:5000": [{"type": "insecureAcceptAnything"}]
    },
    "oci": {"": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/nonexistent"}]}
  }
}`
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	pol, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromString("x")
	for _, c := range []struct {
		im     Image
		accept bool
	}{
		{Image{Repo: "quay.io/team/app", Tag: "v1", Digest: d}, true},
		{Image{Repo: "quay.io/team/app", Tag: "v2", Digest: d}, false},
		{Image{Repo: "quay.io/other/app", Digest: d}, false},
		{Image{Repo: "mirror.example.com/a/b", Tag: "1", Digest: d}, true},
		{Image{Repo: "registry.lan:5000/x", Tag: "1", Digest: d}, true},
		{Image{Repo: "docker.io/library/busybox", Tag: "1", Digest: d}, false},
	} {
		err := pol.Check(c.im, Signatures{})
		if (err == nil) != c.accept {
			t.Errorf("%s: accepted %v, want %v (%v)", c.im, err == nil, c.accept, err)
		}
		if err != nil && !strings.Contains(err.Error(), p) {
			t.Errorf("%s: the refusal does not name the policy file: %v", c.im, err)
		}
	}
}
