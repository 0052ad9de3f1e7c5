package mirror_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
			testenv.AssertDigest(t, dst.Host, "mirror/good/app", "1", good.String())
			for _, repo := range testenv.Catalog(t, dst.Host) {
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

// hostilePlans are edits of an archive's plan, each of which must make
// d2m refuse the archive before anything is pushed.
var hostilePlans = []struct {
	name string
	edit func(p map[string]any)
}{
	{"destRepo with ..", func(p map[string]any) { image(p, 0)["destRepo"] = "../../outside/evil" }},
	{"destRepo absolute", func(p map[string]any) { image(p, 0)["destRepo"] = "/outside/evil" }},
	{"destRepo with .", func(p map[string]any) { image(p, 0)["destRepo"] = "app/./alpha" }},
	{"destRepo uppercase", func(p map[string]any) { image(p, 0)["destRepo"] = "App/Alpha" }},
	{"destRepo empty", func(p map[string]any) { image(p, 0)["destRepo"] = "" }},
	{"destTag with ..", func(p map[string]any) { image(p, 0)["destTag"] = "../../evil" }},
	{"destTag with /", func(p map[string]any) { image(p, 0)["destTag"] = "v1/evil" }},
	{"extra tag with ..", func(p map[string]any) {
		for i := range p["images"].([]any) {
			if xs, ok := image(p, i)["extras"].([]any); ok {
				xs[0].(map[string]any)["tag"] = "../../sha256-evil.sig"
				return
			}
		}
		panic("no image with extras")
	}},
	{"sourceRepo with ..", func(p map[string]any) { image(p, 0)["sourceRepo"] = "quay.io/../../evil" }},
	{"source not a reference", func(p map[string]any) { image(p, 0)["source"] = "quay.io/a/../../b:1" }},
	{"unknown section", func(p map[string]any) { image(p, 0)["section"] = "../../etc" }},
	{"image digest not a digest", func(p map[string]any) { image(p, 0)["digest"] = "nope" }},
	{"manifest digest not a digest", func(p map[string]any) {
		p["manifests"].([]any)[0].(map[string]any)["digest"] = "nope"
	}},
	{"synthesized manifest with another's digest", func(p map[string]any) {
		s := p["synthesized"].([]any)[0].(map[string]any)
		s["digest"] = "sha256:" + strings.Repeat("0", 64)
	}},
}

func image(p map[string]any, i int) map[string]any { return p["images"].([]any)[i].(map[string]any) }

// editPlan rewrites the plan inside ferry-archive.json of the archive in dir.
func editPlan(t *testing.T, dir string, edit func(p map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, "ferry-archive.json")
	var meta map[string]any
	if err := json.Unmarshal(must(os.ReadFile(path)), &meta); err != nil {
		t.Fatal(err)
	}
	edit(meta["plan"].(map[string]any)["plan"].(map[string]any))
	if err := os.WriteFile(path, must(json.Marshal(meta)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestArchivePlanIsChecked runs d2m from archives whose plan was edited
// to push outside the destination prefix, under bad tags or bad digests:
// each is refused before anything is pushed, naming the bad entry, and no
// cluster resources point anywhere. The unedited archive then mirrors,
// so the refusals are about the edits.
func TestArchivePlanIsChecked(t *testing.T) {
	_, isc, arch := mirrorToDisk(t)
	dst := testenv.StartDockerRegistry(t)
	for _, c := range hostilePlans {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "archive")
			copyDir(t, arch, dir)
			editPlan(t, dir, c.edit)
			out, code := ferry(t, nil, "mirror", "-c", isc, "--from", "file://"+dir, "docker://"+dst.Host+"/mirror/deep", "--dest-tls-verify=false")
			if strings.Contains(out, "panic") {
				t.Fatalf("ferry panicked:\n%s", out)
			}
			if code == 0 {
				t.Errorf("d2m of an archive with %s exited 0", c.name)
			}
			if !strings.Contains(out, "plan Ferry will not follow") {
				t.Errorf("d2m does not say the plan is refused:\n%s", out)
			}
			if repos := testenv.Catalog(t, dst.Host); len(repos) != 0 {
				t.Fatalf("destination has %v; nothing may be pushed from a refused archive", repos)
			}
			if _, err := os.Stat(filepath.Join(dir, "working-dir", "cluster-resources")); err == nil {
				t.Errorf("cluster resources were written for a refused archive")
			}
		})
	}
	out, code := ferry(t, nil, "mirror", "-c", isc, "--from", "file://"+arch, "docker://"+dst.Host+"/mirror/deep", "--dest-tls-verify=false")
	if code != 0 {
		t.Fatalf("d2m of the unedited archive exited %d:\n%s", code, out)
	}
	for _, repo := range testenv.Catalog(t, dst.Host) {
		if !strings.HasPrefix(repo, "mirror/deep/") {
			t.Errorf("unedited archive pushed %s, outside mirror/deep", repo)
		}
	}
}

// TestExtractCorruptArchive runs ferry archive extract on an archive with
// one byte of a blob changed: it exits non-zero naming the chunk, and
// every file left under blobs/ has the content its name says. The intact
// archive extracts fully, so the check is about the damage.
func TestExtractCorruptArchive(t *testing.T) {
	_, _, arch := mirrorToDisk(t)
	var meta struct {
		Blobs []struct{ Digest string } `json:"blobs"`
	}
	if err := json.Unmarshal(must(os.ReadFile(filepath.Join(arch, "ferry-archive.json"))), &meta); err != nil {
		t.Fatal(err)
	}
	checkExtracted := func(dest string) int {
		n := 0
		filepath.WalkDir(dest, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			rel := must(filepath.Rel(dest, p))
			if strings.HasPrefix(rel, "blobs"+string(filepath.Separator)) {
				n++
				sum := sha256.Sum256(must(os.ReadFile(p)))
				if got := hex.EncodeToString(sum[:]); filepath.Base(p) != got {
					t.Errorf("%s holds bytes with digest sha256:%s", rel, got)
				}
			}
			return nil
		})
		return n
	}
	dest := filepath.Join(t.TempDir(), "intact")
	if out, code := ferry(t, nil, "archive", "extract", arch, dest); code != 0 {
		t.Fatalf("extract of the intact archive exited %d:\n%s", code, out)
	}
	if n := checkExtracted(dest); n != len(meta.Blobs) {
		t.Errorf("intact archive: %d blobs extracted, the archive holds %d", n, len(meta.Blobs))
	}

	chunk := filepath.Join(arch, "ferry_000001.tar")
	data := must(os.ReadFile(chunk))
	data[700] ^= 0xff // inside the first entry's data, after its 512-byte header
	if err := os.WriteFile(chunk, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dest = filepath.Join(t.TempDir(), "corrupt")
	out, code := ferry(t, nil, "archive", "extract", arch, dest)
	if code == 0 {
		t.Error("extract of a corrupted archive exited 0")
	}
	if strings.Contains(out, "panic") || !strings.Contains(out, "ferry_000001.tar") || !strings.Contains(out, "does not match its digest") {
		t.Errorf("extract does not name the damaged chunk and blob:\n%s", out)
	}
	if n := checkExtracted(dest); n >= len(meta.Blobs) {
		t.Errorf("%d of %d blobs extracted from a corrupted archive", n, len(meta.Blobs))
	}
}
