package mirror_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

type archiveMeta struct {
	Base *struct {
		ID string `json:"id"`
	} `json:"base"`
	Blobs []struct {
		Size int64 `json:"size"`
	} `json:"blobs"`
}

func readMeta(t *testing.T, dir string) archiveMeta {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "ferry-archive.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m archiveMeta
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDifferentialArchive: the second archive made from the same
// workspace holds only what the first did not; pushing it alone into an
// empty registry is refused naming the first; after the first it lands.
func TestDifferentialArchive(t *testing.T) {
	src := testenv.StartDockerRegistry(t)
	u := buildUpstream(t, src.Host)
	dir := t.TempDir()
	arch := filepath.Join(dir, "archive")
	isc1 := writeFile(t, filepath.Join(dir, "isc1.yaml"), u.isc(""))
	if _, code := ferry(t, nil, "mirror", "-c", isc1, "file://"+arch); code != 0 {
		t.Fatalf("first m2d exited %d", code)
	}
	first := filepath.Join(dir, "first") // what the user carried across
	copyDir(t, arch, first)
	m1 := readMeta(t, first)

	newImg := must(random.Image(5000, 2))
	newDigest := push(t, src.Host+"/extra/new:1", newImg)
	isc2 := writeFile(t, filepath.Join(dir, "isc2.yaml"), u.isc("  - name: "+src.Host+"/extra/new:1\n"))
	if _, code := ferry(t, nil, "mirror", "-c", isc2, "file://"+arch); code != 0 {
		t.Fatalf("second m2d exited %d", code)
	}
	m2 := readMeta(t, arch)
	if m2.Base == nil || m2.Base.ID == "" {
		t.Fatal("second archive names no base")
	}
	// New: the image's config and 2 layers, plus every image's manifests.
	var big1, big2 int
	for _, b := range m1.Blobs {
		if b.Size > 2000 {
			big1++
		}
	}
	for _, b := range m2.Blobs {
		if b.Size > 2000 {
			big2++
		}
	}
	if big2 != 2 {
		t.Errorf("second archive holds %d layers (of %d in the first); want only the 2 new ones", big2, big1)
	}
	src.Stop()

	dst := testenv.StartDistributionV3(t)
	d2m := func(from string) (string, int) {
		return ferry(t, nil, "mirror", "-c", isc2, "--from", "file://"+from, "docker://"+dst.Host+"/mirror", "--dest-tls-verify=false")
	}
	out, code := d2m(arch)
	if code == 0 || !strings.Contains(out, m2.Base.ID) {
		t.Errorf("d2m of the differential archive alone: exit %d; want a refusal naming %s", code, m2.Base.ID)
	}
	if repos := testenv.Catalog(t, dst.Host); len(repos) != 0 {
		t.Errorf("refused d2m pushed %v", repos)
	}
	if _, code := d2m(first); code != 0 {
		t.Fatalf("d2m of the first archive exited %d", code)
	}
	if _, code := d2m(arch); code != 0 {
		t.Fatalf("d2m of the second archive exited %d", code)
	}
	assertMirrored(t, dst.Host, "mirror", u)
	testenv.AssertDigest(t, dst.Host, "mirror/extra/new", "1", newDigest.String())
}
