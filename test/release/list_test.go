package release_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ferry-mirror/ferry/internal/fixtures"
)

// TestListReleases asks `ferry list releases` what the graph offers.
func TestListReleases(t *testing.T) {
	up := startGraphServer(t)
	env := []string{"UPDATE_URL_OVERRIDE=" + up.srv.GraphURL}

	out, code := ferry(t, env, "list", "releases", "--channel", "stable-4.17")
	want := up.graph(t, "stable-4.17").versions()
	if code != 0 || !strings.Contains(out, "Channel: stable-4.17\nArchitecture: amd64\n"+strings.Join(want, "\n")+"\n") {
		t.Errorf("--channel stable-4.17 (exit %d) does not list exactly %v:\n%s", code, want, out)
	}

	out, code = ferry(t, env, "list", "releases", "--version", "4.16")
	want = up.graph(t, "stable-4.16").versions()
	if code != 0 || !strings.Contains(out, "Channel: stable-4.16\n") || !strings.Contains(out, strings.Join(want, "\n")) {
		t.Errorf("--version 4.16 (exit %d) does not list stable-4.16's %v:\n%s", code, want, out)
	}

	out, code = ferry(t, env, "list", "releases", "--channels", "--version", "4.16")
	for _, ch := range []string{"fast-4.16", "stable-4.16", "stable-4.17"} {
		if code != 0 || !strings.Contains(out, "\n"+ch+"\n") {
			t.Errorf("--channels --version 4.16 (exit %d) does not name %s:\n%s", code, ch, out)
		}
	}

	out, code = ferry(t, env, "list", "releases", "--channels")
	if code == 0 || !strings.Contains(out, "--channels needs --version") {
		t.Errorf("--channels alone: exit %d, want an error asking for --version:\n%s", code, out)
	}
	out, code = ferry(t, env, "list", "releases", "--channel", "stable-4.16", "--filter-by-archs", "sparc64")
	if code == 0 || !strings.Contains(out, `unknown architecture "sparc64"`) {
		t.Errorf("unknown architecture: exit %d:\n%s", code, out)
	}
}

// startGraphServer serves the upstream's graph alone: listing needs no
// registry.
func startGraphServer(t *testing.T) *upstream {
	t.Helper()
	u, err := fixtures.Generate(context.Background(), fixtures.Options{Host: "upstream.invalid:5000", Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := u.Serve("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return &upstream{u: u, srv: srv}
}
