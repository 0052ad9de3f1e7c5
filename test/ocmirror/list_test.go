package ocmirror_test

import (
	"regexp"
	"strings"
	"testing"
)

// TestList runs oc-mirror's list command lines against the synthetic
// upstream and its update graph, and checks what they print against the
// upstream's description.
func TestList(t *testing.T) {
	bin := ocMirror(t)
	up := startUpstream(t)
	host := up.reg.Host
	catalog := host + "/redhat/redhat-operator-index:v4.16"
	lines := func(out string) []string { return strings.Fields(out) }
	has := func(t *testing.T, out string, want ...string) {
		t.Helper()
		got := lines(out)
		for _, w := range want {
			found := false
			for _, g := range got {
				if g == w {
					found = true
				}
			}
			if !found {
				t.Errorf("output lacks %q:\n%s", w, out)
			}
		}
	}
	t.Run("releases, no flags: the X.Y versions", func(t *testing.T) {
		out, code := run(t, up.env, bin, "list", "releases", "--v2", "--release-repo", host+"/openshift-release-dev/ocp-release", "--src-tls-verify=false")
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		minors := map[string]bool{}
		for _, r := range up.u.Releases {
			minors[r.Version[:strings.LastIndex(r.Version, ".")]] = true
		}
		got := regexp.MustCompile(`(?m)^\s+(\d+\.\d+)$`).FindAllStringSubmatch(out, -1)
		if len(got) != len(minors) {
			t.Errorf("listed %d versions, want %d (%v)", len(got), len(minors), minors)
		}
		for _, m := range got {
			if !minors[m[1]] {
				t.Errorf("listed %s, which no release has", m[1])
			}
		}
	})
	t.Run("releases of a channel", func(t *testing.T) {
		out, code := run(t, up.env, bin, "list", "releases", "--channel", "stable-4.16", "--v2")
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		var want []string
		for _, r := range up.u.Releases {
			if r.Arch == "x86_64" && strings.Contains(strings.Join(r.Channels, ","), "stable-4.16") {
				want = append(want, r.Version)
			}
		}
		has(t, out, want...)
	})
	t.Run("channels of a version", func(t *testing.T) {
		out, code := run(t, up.env, bin, "list", "releases", "--channels", "--version", "4.16", "--v2")
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		has(t, out, "stable-4.16", "fast-4.16", "eus-4.16")
	})
	t.Run("default catalogs of a version", func(t *testing.T) {
		out, code := run(t, nil, bin, "list", "operators", "--catalogs", "--version", "4.16", "--v2")
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		has(t, out, "registry.redhat.io/redhat/redhat-operator-index:v4.16", "registry.redhat.io/redhat/certified-operator-index:v4.16",
			"registry.redhat.io/redhat/community-operator-index:v4.16", "registry.redhat.io/redhat/redhat-marketplace-index:v4.16")
	})
	var pkg = "aws-load-balancer-operator"
	t.Run("packages of a catalog", func(t *testing.T) {
		out, code := run(t, nil, bin, "list", "operators", "--catalog", catalog, "--v2", "--src-tls-verify=false")
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		for _, c := range up.u.Catalogs {
			if c.Image.Tag == "v4.16" {
				for _, p := range c.Packages {
					has(t, out, p.Name, p.DefaultChannel)
				}
			}
		}
	})
	t.Run("channels of a package", func(t *testing.T) {
		out, code := run(t, nil, bin, "list", "operators", "--catalog", catalog, "--package", pkg, "--v2", "--src-tls-verify=false")
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		has(t, out, "stable-v1", "stable-v1.0")
	})
	t.Run("versions of a channel", func(t *testing.T) {
		out, code := run(t, nil, bin, "list", "operators", "--catalog", catalog, "--package", pkg, "--channel", "stable-v1", "--v2", "--src-tls-verify=false")
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		has(t, out, "VERSIONS", "1.0.0", "1.0.1", "1.1.0")
		if strings.Contains(out, "1.1.1") {
			t.Errorf("1.1.1 is not in the v4.16 catalog:\n%s", out)
		}
	})
	t.Run("bad combinations", func(t *testing.T) {
		for _, a := range [][]string{
			{"list", "operators", "--channel", "stable-v1", "--catalog", catalog},
			{"list", "operators", "--catalogs"},
			{"list", "operators"},
			{"list", "releases", "--channels"},
			{"list", "operators", "--catalog", catalog, "--package", pkg, "--channel", "nope", "--src-tls-verify=false"},
		} {
			out, code := run(t, nil, bin, a...)
			if code != 1 || !strings.Contains(out, "Error:") {
				t.Errorf("oc-mirror %s: exit %d, want 1 with an error", strings.Join(a, " "), code)
			}
		}
	})
}
