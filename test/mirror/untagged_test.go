package mirror_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestDigestSourcesSurviveUntaggedCleanup mirrors the upstream, then
// deletes every untagged manifest from the destination, as Quay expires
// manifests pushed by digest alone: the images configured by digest keep
// a sha256_<hex> tag, so everything mirrored is still there. With
// --no-digest-tags the by-digest image is untagged and the cleanup takes it.
func TestDigestSourcesSurviveUntaggedCleanup(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []string
	}{{"digest-tags", nil}, {"no-digest-tags", []string{"--no-digest-tags"}}} {
		t.Run(tc.name, func(t *testing.T) {
			src := testenv.StartDockerRegistry(t)
			u := buildUpstream(t, src.Host)
			dst := startFerry(t)
			dir := t.TempDir()
			isc := writeFile(t, filepath.Join(dir, "isc.yaml"), u.isc(""))
			ws := filepath.Join(dir, "ws")
			args := append([]string{"mirror", "-c", isc, "--workspace", "file://" + ws, "docker://" + dst.Host + "/mirror", "--dest-tls-verify=false"}, tc.flags...)
			if _, code := ferry(t, nil, args...); code != 0 {
				t.Fatalf("m2m exited %d", code)
			}
			digestTag := "sha256_" + u.ByDigest.Hex
			deleted := testenv.DeleteUntagged(t, dst.Host, testenv.PlanManifests(t, filepath.Join(ws, "working-dir", "plan.json")))
			t.Logf("deleted %v", deleted)
			if tc.flags == nil {
				if len(deleted) != 0 {
					t.Errorf("the cleanup found untagged manifests: %v", deleted)
				}
				assertMirrored(t, dst.Host, "mirror", u)
				testenv.AssertDigest(t, dst.Host, "mirror/bydigest/img", digestTag, u.ByDigest.String())
				// Not the referrers fallback tag of the image.
				assertAbsent(t, dst.Host, "mirror/bydigest/img", "sha256-"+u.ByDigest.Hex)
				return
			}
			if strings.Join(deleted, " ") != "mirror/bydigest/img@"+u.ByDigest.String() {
				t.Errorf("deleted %v, want only the image mirrored by digest", deleted)
			}
			assertAbsent(t, dst.Host, "mirror/bydigest/img", digestTag)
			assertAbsent(t, dst.Host, "mirror/bydigest/img", u.ByDigest.String())
		})
	}
}
