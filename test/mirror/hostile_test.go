package mirror_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// putRaw stores body as repo:ref, bypassing every client-side check.
func putRaw(t *testing.T, host, repo, ref, mediaType, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, "http://"+host+"/v2/"+repo+"/manifests/"+ref, bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", mediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("put %s:%s: status %d", repo, ref, resp.StatusCode)
	}
}

// badChildDigests are index entries' "digest" values that are not
// digests, each with the tag of the index that carries it.
var badChildDigests = []struct{ tag, digest string }{
	{"no-separator", "nope"},
	{"empty", ""},
	{"no-hex", "sha256:"},
	{"short-hex", "sha256:abc"},
	{"upper-hex", "sha256:" + strings.Repeat("AB", 32)},
	{"unknown-algorithm", "md5:" + strings.Repeat("a", 32)},
	{"path", "sha256:../../../v2/_catalog"},
}

// TestBadChildDigest mirrors from a registry serving indexes whose child
// "digest" is not a digest, next to a good image. The repository also has
// a tag "nope", so a client that uses the bad digest as a reference gets
// an image back. Each bad index must fail alone, naming the bad digest;
// the good image is mirrored; nothing of the bad indexes reaches the
// destination; the process never panics. m2m with and without
// --remove-signatures, and m2d.
func TestBadChildDigest(t *testing.T) {
	src := testenv.StartLenientRegistry(t)
	good := push(t, src.Host+"/good/app:1", must(random.Image(512, 1)))
	decoy := push(t, src.Host+"/bad/index:nope", must(random.Image(256, 1)))
	childImg := must(random.Image(256, 1))
	child := push(t, src.Host+"/bad/index:child", childImg)
	childSize := must(childImg.Size())
	childType := must(childImg.MediaType())
	var isc strings.Builder
	isc.WriteString("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n  additionalImages:\n")
	fmt.Fprintf(&isc, "  - name: %s/good/app:1\n", src.Host)
	for _, mt := range []string{"application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"} {
		for _, b := range badChildDigests {
			tag := b.tag + "-" + map[bool]string{true: "oci", false: "docker"}[strings.Contains(mt, "oci")]
			idx := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[`+
				`{"mediaType":%q,"digest":%q,"size":%d,"platform":{"os":"linux","architecture":"amd64"}},`+
				`{"mediaType":%q,"digest":%q,"size":%d,"platform":{"os":"linux","architecture":"arm64"}}]}`,
				mt, childType, child, childSize, childType, b.digest, childSize)
			putRaw(t, src.Host, "bad/index", tag, mt, idx)
			fmt.Fprintf(&isc, "  - name: %s/bad/index:%s\n", src.Host, tag)
		}
	}
	dir := t.TempDir()
	iscPath := writeFile(t, filepath.Join(dir, "isc.yaml"), isc.String())
	bad := 2 * len(badChildDigests)

	check := func(t *testing.T, ws, out string, code int) {
		t.Helper()
		if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
			t.Fatalf("ferry panicked:\n%s", out)
		}
		if code != 8 {
			t.Errorf("exit code %d; want 8 (additional images failed)", code)
		}
		if n := count(t, out, `images: (\d+) copied`); n != 1 {
			t.Errorf("%d images copied; want 1, the good one", n)
		}
		if n := count(t, out, `images: \d+ copied, \d+ already present, \d+ failed, (\d+) missing`); n != bad {
			t.Errorf("%d images missing; want the %d bad indexes", n, bad)
		}
		reports, _ := filepath.Glob(filepath.Join(ws, "working-dir", "logs", "mirroring_errors_*.txt"))
		if len(reports) != 1 {
			t.Fatalf("failure reports: %v; want one", reports)
		}
		report := string(must(os.ReadFile(reports[0])))
		for _, b := range badChildDigests {
			for _, kind := range []string{"oci", "docker"} {
				if !strings.Contains(report, "bad/index:"+b.tag+"-"+kind) {
					t.Errorf("report does not name bad/index:%s-%s:\n%s", b.tag, kind, report)
				}
			}
		}
		if !strings.Contains(report, `bad manifest digest "nope"`) {
			t.Errorf("report does not name the bad child digest:\n%s", report)
		}
	}
	for _, extra := range [][]string{nil, {"--remove-signatures"}} {
		t.Run("m2m"+strings.Join(extra, ""), func(t *testing.T) {
			dst := testenv.StartDockerRegistry(t)
			ws := t.TempDir()
			args := append([]string{"mirror", "-c", iscPath, "--workspace", "file://" + ws, "docker://" + dst.Host + "/mirror",
				"--src-tls-verify=false", "--dest-tls-verify=false"}, extra...)
			out, code := ferry(t, nil, args...)
			check(t, ws, out, code)
			assertDigest(t, dst.Host, "mirror/good/app", "1", good.String())
			for _, repo := range catalog(t, dst.Host) {
				if repo != "mirror/good/app" {
					t.Errorf("destination has %s; only mirror/good/app may be pushed", repo)
				}
			}
			assertAbsent(t, dst.Host, "mirror/bad/index", decoy.String())
		})
	}
	t.Run("m2d", func(t *testing.T) {
		ws := filepath.Join(t.TempDir(), "archive")
		out, code := ferry(t, nil, "mirror", "-c", iscPath, "file://"+ws, "--src-tls-verify=false")
		check(t, ws, out, code)
	})
}
