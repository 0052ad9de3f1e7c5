package install

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// systemd reads an EnvironmentFile's double-quoted values as a shell
// does; a POSIX shell sourcing the file must see exactly the secrets
// given, whatever characters they hold.
func TestEnvFileQuoting(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to read the file with")
	}
	secrets := map[string]string{
		"FERRY_SECRETS_KEY":     "abc+/=",
		"AWS_SECRET_ACCESS_KEY": `a"b\c$HOME` + "`id`" + ` 'q' #x`,
		"AWS_ACCESS_KEY_ID":     "plain",
	}
	o := Options{Listen: ":8443", User: "ferry", Metadata: "postgres://ferry:p%40ss$w0rd@db:5432/ferry", Env: secrets}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ferry.env")
	if err := os.WriteFile(path, []byte(EnvFile(o)), 0o600); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"FERRY_METADATA": o.Metadata}
	for k, v := range secrets {
		want[k] = v
	}
	for k, v := range want {
		got, err := exec.Command(sh, "-ac", `. "$1"; printenv "$2"`, "sh", path, k).Output()
		if err != nil {
			t.Fatalf("sh: printenv %s: %v", k, err)
		}
		if strings.TrimSuffix(string(got), "\n") != v {
			t.Errorf("%s reads back as %q, want %q", k, got, v)
		}
	}
	parsed, err := ParseEnvFile(EnvFile(o))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if parsed[k] != v {
			t.Errorf("ParseEnvFile: %s = %q, want %q", k, parsed[k], v)
		}
	}
}

func TestConfigHoldsNoPassword(t *testing.T) {
	l, err := NewLayout("/", "/var/lib/ferry")
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Listen: ":8443", User: "ferry", Metadata: "postgres://ferry:hunter2@db/ferry"}
	if c := Config(l, o); strings.Contains(c, "hunter2") || strings.Contains(c, "\nmetadata:") {
		t.Errorf("ferry.yaml holds the metadata URL with its password:\n%s", c)
	}
	o.Metadata = "postgres://ferry@db/ferry"
	if c := Config(l, o); !strings.Contains(c, "\nmetadata: postgres://ferry@db/ferry\n") {
		t.Errorf("ferry.yaml lacks a password-less metadata URL:\n%s", c)
	}
}
