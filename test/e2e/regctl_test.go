package e2e

import (
	"slices"
	"testing"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestRegctl copies an image with regctl, lists tags and deletes one tag
// without losing the image other tags still name.
func TestRegctl(t *testing.T) {
	upstream := testenv.StartDockerRegistry(t)
	reg := startRegistry(t)
	home := t.TempDir()
	regctl := func(args ...string) string {
		t.Helper()
		hosts := []string{"--host", "reg=" + upstream.Host + ",tls=disabled", "--host", "reg=" + reg.Host + ",tls=disabled"}
		return run(t, home, "regctl", append(hosts, args...)...)
	}

	idx := seedIndex(t, false, 600)
	pushIndex(t, upstream.Host+"/apps/reg:2.0", idx)
	want := digestOf(t, idx)

	regctl("image", "copy", upstream.Host+"/apps/reg:2.0", reg.Host+"/apps/reg:2.0")
	regctl("image", "copy", reg.Host+"/apps/reg:2.0", reg.Host+"/apps/reg:2")
	regctl("image", "copy", reg.Host+"/apps/reg:2.0", reg.Host+"/apps/reg:latest")
	if got := remoteDigest(t, reg.Host+"/apps/reg:2.0"); got != want {
		t.Fatalf("after regctl image copy: digest %s, upstream %s", got, want)
	}
	verifyIndex(t, reg.Host+"/apps/reg:2.0")

	got := lines(regctl("tag", "ls", reg.Host+"/apps/reg"))
	slices.Sort(got)
	if !slices.Equal(got, []string{"2", "2.0", "latest"}) {
		t.Fatalf("regctl tag ls: %q, want [2 2.0 latest]", got)
	}

	regctl("tag", "delete", reg.Host+"/apps/reg:latest")
	got = lines(regctl("tag", "ls", reg.Host+"/apps/reg"))
	slices.Sort(got)
	if !slices.Equal(got, []string{"2", "2.0"}) {
		t.Errorf("after regctl tag delete latest: tags %q, want [2 2.0]", got)
	}
	if d := remoteDigest(t, reg.Host+"/apps/reg:2"); d != want {
		t.Errorf("deleting tag latest changed tag 2 to %s, want %s", d, want)
	}
	verifyIndex(t, reg.Host+"/apps/reg@"+want)
}
