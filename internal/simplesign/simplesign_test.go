package simplesign

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
)

// TestReadKeysAndOpen: a key reads armored or binary (RPM-GPG-KEY files
// come both ways), and Open tells a signature by it from one by a stranger.
func TestReadKeysAndOpen(t *testing.T) {
	e, err := openpgp.NewEntity("k", "", "k@ferry.invalid", nil)
	if err != nil {
		t.Fatal(err)
	}
	var bin, arm bytes.Buffer
	if err := e.Serialize(&bin); err != nil {
		t.Fatal(err)
	}
	w, _ := armor.Encode(&arm, openpgp.PublicKeyType, nil)
	e.Serialize(w)
	w.Close()
	for name, data := range map[string][]byte{"binary": bin.Bytes(), "armored": arm.Bytes()} {
		keys, err := ReadKeys(data)
		if err != nil || len(keys) != 1 || Fingerprints(keys)[0] != Fingerprints(openpgp.EntityList{e})[0] {
			t.Errorf("%s: %v, %d keys", name, err, len(keys))
		}
	}
	if _, err := ReadKeys([]byte("hello")); err == nil || !strings.Contains(err.Error(), "not an OpenPGP public key") {
		t.Errorf("not a key: %v", err)
	}

	sign := func(by *openpgp.Entity, body string) []byte {
		var buf bytes.Buffer
		w, err := openpgp.Sign(&buf, by, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
		w.Close()
		return buf.Bytes()
	}
	doc := `{"critical":{"identity":{"docker-reference":"q.example/a:1"},"image":{"docker-manifest-digest":"sha256:00"},"type":"atomic container signature"}}`
	c, err := Open(sign(e, doc), openpgp.EntityList{e})
	if err != nil || c.DockerReference != "q.example/a:1" || c.Digest != "sha256:00" {
		t.Errorf("Open = %+v, %v", c, err)
	}
	stranger, _ := openpgp.NewEntity("s", "", "s@ferry.invalid", nil)
	var unknown *UnknownKeyError
	if _, err := Open(sign(stranger, doc), openpgp.EntityList{e}); !errors.As(err, &unknown) || unknown.KeyID != strings.ToUpper(stranger.PrimaryKey.KeyIdString()) {
		t.Errorf("a stranger's signature: %v", err)
	}
	if _, err := Open(sign(e, strings.Replace(doc, "atomic", "cosign", 1)), openpgp.EntityList{e}); err == nil || !strings.Contains(err.Error(), "critical.type") {
		t.Errorf("another document type: %v", err)
	}
}
