package secretbox

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secrets.key")
	box, err := LoadFile(path, true)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	sealed := box.Seal("signing keys", "top secret")
	if strings.Contains(sealed, "top secret") || !Sealed(sealed) {
		t.Fatalf("sealed value %q shows the secret or lacks the marker", sealed)
	}
	if got, err := box.Open("signing keys", sealed); err != nil || got != "top secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := box.Open("shared CA", sealed); err == nil {
		t.Error("a value sealed for one purpose opened for another")
	}
	again, err := LoadFile(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if again.Fingerprint != box.Fingerprint {
		t.Error("reloading the key file gave another key")
	}
	other, err := LoadFile(filepath.Join(dir, "other.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Open("signing keys", sealed); err == nil || !strings.Contains(err.Error(), KeyEnv) {
		t.Errorf("another key opened the value or gave no hint: %v", err)
	}
	if _, err := box.Open("signing keys", "plain"); !errors.Is(err, ErrNotSealed) {
		t.Errorf("plain value: %v, want ErrNotSealed", err)
	}
	if _, err := box.Open("signing keys", "ferry-sealed:v1:!!"); err == nil {
		t.Error("damaged value opened")
	}
}

func TestKeyFileReadableByOthersRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets.key")
	text, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(path, false); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key file: %v, want a refusal naming chmod 600", err)
	}
}

func TestBadKeys(t *testing.T) {
	for _, in := range []string{"", "not base64!", "c2hvcnQ="} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
}
