package mirror_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// mirrorToDisk builds an upstream, archives it and stops the upstream, so
// everything after runs without it.
func mirrorToDisk(t *testing.T) (*upstream, string, string) {
	t.Helper()
	src := testenv.StartDockerRegistry(t)
	u := buildUpstream(t, src.Host)
	dir := t.TempDir()
	isc := writeFile(t, filepath.Join(dir, "isc.yaml"), u.isc(""))
	arch := filepath.Join(dir, "archive")
	out, code := ferry(t, nil, "mirror", "-c", isc, "file://"+arch, "--src-tls-verify=false")
	if code != 0 {
		t.Fatalf("m2d exited %d", code)
	}
	if n := count(t, out, `images: (\d+) copied`); n != 6 {
		t.Errorf("m2d archived %d images, want 6", n)
	}
	if _, code := ferry(t, nil, "archive", "verify", arch); code != 0 {
		t.Fatalf("archive verify exited %d", code)
	}
	src.Stop()
	return u, isc, arch
}

func TestMirrorToDiskToMirror(t *testing.T) {
	for _, d := range destinations() {
		t.Run(d.name, func(t *testing.T) {
			dst := d.start(t)
			u, isc, arch := mirrorToDisk(t)
			args := []string{"mirror", "-c", isc, "--from", "file://" + arch, "docker://" + dst.Host + "/mirror", "--dest-tls-verify=false", "--retry-delay=100ms"}
			out, code := ferry(t, nil, args...)
			if code != 0 {
				t.Fatalf("d2m exited %d", code)
			}
			assertMirrored(t, dst.Host, "mirror", u)
			if n := count(t, out, `images: (\d+) copied`); n != 6 {
				t.Errorf("d2m copied %d images, want 6", n)
			}
			assertClusterResources(t, filepath.Join(arch, "working-dir", "cluster-resources"))
			out, code = ferry(t, nil, args...)
			if code != 0 {
				t.Fatalf("second d2m exited %d", code)
			}
			if n := count(t, out, `blobs: (\d+) copied`); n != 0 {
				t.Errorf("second d2m copied %d blobs, want 0", n)
			}
			if n := count(t, out, `images: (\d+) copied`); n != 0 {
				t.Errorf("second d2m copied %d images, want 0", n)
			}
		})
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// assertClusterResources checks that `oc apply -f dir` can take the folder
// the mirror of the test upstream wrote: only Kubernetes objects, and the
// mirror sets of its by-digest and by-tag images.
func assertClusterResources(t *testing.T, dir string) {
	t.Helper()
	objects := testenv.AssertKubernetesObjects(t, dir)
	want := map[string]bool{"ImageDigestMirrorSet/idms-generic-0": true, "ImageTagMirrorSet/itms-generic-0": true}
	for _, o := range objects {
		delete(want, o)
	}
	if len(want) > 0 {
		t.Errorf("%s holds %v; missing %v", dir, objects, want)
	}
}
