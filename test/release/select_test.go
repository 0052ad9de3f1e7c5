package release_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestSelectionModes mirrors each way of picking versions from a channel
// into its own prefix and checks that exactly the releases the graph
// implies (and all their components) landed.
func TestSelectionModes(t *testing.T) {
	up := startUpstream(t)
	dst := testenv.StartFerry(t, testenv.FerryOptions{})
	g16, g17 := up.graph(t, "stable-4.16"), up.graph(t, "stable-4.17")
	v16 := g16.versions()
	v17 := g17.versions()
	head16 := v16[len(v16)-1]
	// Two channels: each one's selection, plus the path from the lowest
	// selected release to the head of its channel and on, in the next
	// channel, to the highest selected one.
	two := union(g16.inRange("4.16.2", "4.16.3"), []string{v17[len(v17)-1]},
		g16.path(t, "4.16.2", head16), g17.path(t, head16, v17[len(v17)-1]))
	cases := []struct {
		name     string
		channels string
		want     []string
	}{
		{"range", "  - name: stable-4.16\n    minVersion: 4.16.2\n    maxVersion: 4.16.4\n", g16.inRange("4.16.2", "4.16.4")},
		{"heads-only", "  - name: stable-4.16\n", []string{head16}},
		{"full", "  - name: stable-4.16\n    full: true\n", v16},
		{"shortest-path", "  - name: stable-4.17\n    minVersion: 4.16.3\n    maxVersion: 4.17.2\n    shortestPath: true\n", g17.path(t, "4.16.3", "4.17.2")},
		{"two-channels", "  - name: stable-4.16\n    minVersion: 4.16.2\n    maxVersion: 4.16.3\n  - name: stable-4.17\n", two},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Logf("graph implies %s", fmtList(c.want))
			mirrorPlatform(t, up, dst.Host, "sel-"+c.name, "  platform:\n    channels:\n"+indent(c.channels))
			up.assertReleases(t, dst.Host, "sel-"+c.name, c.want, false)
		})
	}

	// The multi payload is a manifest list: it and its components stay
	// whole, every architecture in them.
	t.Run("multi", func(t *testing.T) {
		mirrorPlatform(t, up, dst.Host, "sel-multi", "  platform:\n    architectures: [multi]\n    channels:\n    - name: stable-4.16\n")
		up.assertArchReleases(t, dst.Host, "sel-multi", "multi", []string{head16}, false)
	})
	// platform.release names one release by tag, with no graph.
	t.Run("release-by-reference", func(t *testing.T) {
		r, _ := up.u.ReleaseFor("4.16.1", "x86_64")
		mirrorPlatform(t, up, dst.Host, "sel-ref", "  platform:\n    release: "+r.Image.ByTag()+"\n")
		up.assertReleases(t, dst.Host, "sel-ref", []string{"4.16.1"}, false)
	})
}

// mirrorPlatform mirrors a platform section to host/prefix and fails the
// test unless it succeeds.
func mirrorPlatform(t *testing.T, up *upstream, host, prefix, platform string) {
	t.Helper()
	cfg := testenv.WriteImageSetConfig(t, platform)
	out, code := ferry(t, up.env(), "mirror", "-c", cfg, "--workspace", "file://"+t.TempDir(),
		fmt.Sprintf("docker://%s/%s", host, prefix), "--src-tls-verify=false", "--dest-tls-verify=false")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

// indent shifts YAML lines two spaces right, under channels:.
func indent(s string) string {
	return strings.ReplaceAll("  "+strings.TrimSuffix(s, "\n"), "\n", "\n  ") + "\n"
}
