package ocmirror_test

import (
	"strings"
	"testing"
)

// flag is one flag of oc-mirror v2's command line and a value to give it
// ("" for a boolean). The lists are written from oc-mirror v2's source:
// internal/pkg/cli/executor.go (root, persistent), internal/pkg/mirror/
// options.go (shared, --src-*, --dest-*, retry and deprecated TLS flags),
// internal/pkg/cli/delete.go and internal/pkg/cli/list/*.go.
type flag struct{ name, value string }

var persistentFlags = []flag{
	{"config", "isc.yaml"}, {"cache-dir", "/tmp/cache"}, {"log-level", "info"}, {"workspace", "file:///tmp/w"},
	{"port", "55001"}, {"v2", ""}, {"parallel-layers", "5"}, {"parallel-images", "4"}, {"cpu-prof", ""}, {"mem-prof", ""},
	{"registries.d", "/etc/containers/registries.d"}, {"policy", "/etc/containers/policy.json"},
	{"authfile", "/tmp/auth.json"}, {"retry-times", "5"}, {"retry-delay", "1s"}, {"tls-verify", "true"},
	{"src-authfile", "/tmp/auth.json"}, {"src-creds", "u:p"}, {"src-username", "u"}, {"src-password", "p"}, {"screds", "u:p"},
	{"src-registry-token", "tok"}, {"src-cert-dir", "/tmp/certs"}, {"src-tls-verify", "true"}, {"src-no-creds", ""},
	{"src-shared-blob-dir", "/tmp/blobs"}, {"src-daemon-host", "unix:///run/docker.sock"},
	{"dest-authfile", "/tmp/auth.json"}, {"dest-creds", "u:p"}, {"dest-username", "u"}, {"dest-password", "p"}, {"dcreds", "u:p"},
	{"dest-registry-token", "tok"}, {"dest-cert-dir", "/tmp/certs"}, {"dest-tls-verify", "true"}, {"dest-no-creds", ""},
	{"dest-compress", ""}, {"dest-decompress", ""}, {"dest-oci-accept-uncompressed-layers", ""}, {"dest-compress-format", "zstd"},
	{"dest-compress-level", "3"}, {"dest-precompute-digests", ""}, {"dest-shared-blob-dir", "/tmp/blobs"}, {"dest-daemon-host", "unix:///run/docker.sock"},
}

var rootFlags = []flag{
	{"from", "file:///tmp/a"}, {"dry-run", ""}, {"dry-run-manifest-lists", ""}, {"quiet", ""}, {"force", ""},
	{"since", "2024-01-01"}, {"image-timeout", "10m"}, {"secure-policy", ""}, {"max-nested-paths", "2"},
	{"strict-archive", ""}, {"rootless-storage-path", "/tmp/storage"}, {"remove-signatures", ""}, {"ignore-release-signature", ""},
}

var deleteFlags = []flag{
	{"delete-id", "one"}, {"delete-yaml-file", "/tmp/delete-images.yaml"}, {"force-cache-delete", ""}, {"generate", ""},
	{"delete-signatures", ""}, {"delete-v1-images", ""},
}

var listOperatorsFlags = []flag{{"catalogs", ""}, {"version", "4.16"}, {"catalog", "registry.redhat.io/redhat/redhat-operator-index:v4.16"}, {"package", "p"}, {"channel", "c"}}

var listReleasesFlags = []flag{{"version", "4.16"}, {"channels", ""}, {"channel", "stable-4.16"}, {"filter-by-archs", "amd64,arm64"}}

func args(fs ...[]flag) []string {
	var out []string
	for _, l := range fs {
		for _, f := range l {
			if f.value == "" {
				out = append(out, "--"+f.name)
			} else {
				out = append(out, "--"+f.name+"="+f.value)
			}
		}
	}
	return out
}

// TestEveryFlagAccepted gives every flag of each oc-mirror v2 command at
// once, with --help so nothing runs: an unknown flag fails the parse.
// Each flag is also given alone, so a failure names it.
func TestEveryFlagAccepted(t *testing.T) {
	bin := ocMirror(t)
	cmds := []struct {
		sub   []string
		flags [][]flag
	}{
		{nil, [][]flag{persistentFlags, rootFlags}},
		{[]string{"delete"}, [][]flag{persistentFlags, deleteFlags}},
		{[]string{"list", "operators"}, [][]flag{persistentFlags, listOperatorsFlags}},
		{[]string{"list", "releases"}, [][]flag{persistentFlags, listReleasesFlags}},
	}
	for _, c := range cmds {
		all := append(append([]string{}, c.sub...), args(c.flags...)...)
		out, code := run(t, nil, bin, append(all, "--help")...)
		if code != 0 || strings.Contains(out, "unknown") {
			t.Errorf("oc-mirror %s with all its flags: exit %d:\n%s", strings.Join(c.sub, " "), code, out)
		}
		if !strings.Contains(out, "Usage:") {
			t.Errorf("oc-mirror %s --help printed no usage:\n%s", strings.Join(c.sub, " "), out)
		}
	}
	// The short forms and the one-dash -v2 oc-mirror users type.
	for _, a := range [][]string{{"-c", "x.yaml", "-p", "5000", "-q", "-f", "--help"}, {"-v2", "--help"}, {"delete", "-v2", "--help"}} {
		if out, code := run(t, nil, bin, a...); code != 0 {
			t.Errorf("oc-mirror %s: exit %d:\n%s", strings.Join(a, " "), code, out)
		}
	}
	// A flag oc-mirror does not have is still refused, with its name.
	out, code := run(t, nil, bin, "--no-such-flag", "--help")
	if code == 0 || !strings.Contains(out, "no-such-flag") {
		t.Errorf("an unknown flag was accepted (exit %d):\n%s", code, out)
	}
}

// TestIgnoredFlagsReported: flags with no effect are named once, with why,
// and the run goes on to its real work (here: a missing config file).
func TestIgnoredFlagsReported(t *testing.T) {
	bin := ocMirror(t)
	out, code := run(t, nil, bin, "-c", "/nonexistent/isc.yaml", "--v2", "--cache-dir", "/tmp/c", "-p", "5001", "--src-cert-dir", "/tmp/certs", "file://"+t.TempDir())
	if code != 1 {
		t.Errorf("exit %d, want 1 (generic error: the config file is missing)", code)
	}
	if n := strings.Count(out, "no effect in Ferry"); n != 1 {
		t.Errorf("the ignored flags were reported %d times, want once:\n%s", n, out)
	}
	for _, want := range []string{"--cache-dir", "--port", "--src-cert-dir", "/nonexistent/isc.yaml"} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not name %s:\n%s", want, out)
		}
	}
}
