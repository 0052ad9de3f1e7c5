package transfer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	digest "github.com/opencontainers/go-digest"
)

func TestVerifierRejectsWrongBytes(t *testing.T) {
	good := []byte("hello blob")
	d := digest.FromBytes(good)
	if _, err := io.ReadAll(newVerifier(bytes.NewReader(good), d, int64(len(good)), "img", nil)); err != nil {
		t.Fatalf("good blob: %v", err)
	}
	bad := []byte("hellO blob")
	_, err := io.ReadAll(newVerifier(bytes.NewReader(bad), d, int64(len(bad)), "img", nil))
	var de *DigestError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "img") || !strings.Contains(err.Error(), d.String()) {
		t.Errorf("corrupted blob: %v; want a DigestError naming image and blob", err)
	}
	if !Temporary(err) {
		t.Error("a corrupted transfer must be retried")
	}
	_, err = io.ReadAll(newVerifier(bytes.NewReader(good[:4]), d, int64(len(good)), "img", nil))
	if !errors.As(err, &de) {
		t.Errorf("short blob: %v; want a DigestError", err)
	}
}

func TestTemporary(t *testing.T) {
	if Temporary(&HTTPError{Status: 404}) || !Temporary(&HTTPError{Status: 503}) || !Temporary(&HTTPError{Status: 429}) {
		t.Error("HTTP statuses classified wrongly")
	}
	if Temporary(&PermanentError{errors.New("bad manifest")}) {
		t.Error("a permanent error was retried")
	}
	if !Temporary(io.ErrUnexpectedEOF) {
		t.Error("a cut connection was not retried")
	}
	for _, code := range []string{"DIGEST_INVALID", "BLOB_UPLOAD_UNKNOWN"} {
		he := &HTTPError{Status: 400, Code: code}
		if !lostUpload(he) || !Temporary(&freshUpload{he}) {
			t.Errorf("an upload refused with %s after right bytes is not retried in a fresh session", code)
		}
	}
	if lostUpload(&HTTPError{Status: 400, Code: "MANIFEST_INVALID"}) {
		t.Error("MANIFEST_INVALID taken for a lost upload")
	}
}

func TestKeychain(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "auth.json")
	if err := os.WriteFile(f, []byte(`{"auths":{"mirror.lan:8443":{"auth":"dXNlcjpwYXNz"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	kc, err := LoadKeychain([]string{f}, true)
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := name.NewRegistry("mirror.lan:8443")
	a, err := kc.Resolve(reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := a.Authorization()
	if err != nil || cfg.Username != "user" || cfg.Password != "pass" {
		t.Errorf("credentials %+v, %v; want user/pass", cfg, err)
	}
	other, _ := name.NewRegistry("quay.io")
	if a, _ := kc.Resolve(other); a != authn.Anonymous {
		t.Error("a registry without an entry is not anonymous")
	}
	if _, err := LoadKeychain([]string{filepath.Join(dir, "missing.json")}, true); err == nil {
		t.Error("a missing --authfile was accepted")
	}
	if _, err := LoadKeychain([]string{filepath.Join(dir, "missing.json")}, false); err != nil {
		t.Errorf("a missing default auth file is an error: %v", err)
	}
}

// TestTagsNextPageStaysOnHost: a registry whose tag list links its next
// page to another host gets an error, and the other host no request.
// httptest stands in for the hostile registry: no real one sends this.
func TestTagsNextPageStaysOnHost(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/":
			w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
		case "/v2/app/tags/list":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Link", `<`+other.URL+`/v2/app/tags/list?n=1000&last=a>; rel="next"`)
			io.WriteString(w, `{"name":"app","tags":["a"]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer reg.Close()
	r, err := NewClient(strings.TrimPrefix(reg.URL, "http://"), RegistryOptions{Insecure: true, Keychain: authn.DefaultKeychain})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = r.Tags(context.Background(), "app", 5)
	if err == nil || !strings.Contains(err.Error(), "another host") {
		t.Errorf("Tags = %v; want the cross-host next page refused", err)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the other host got %d requests", n)
	}
}
