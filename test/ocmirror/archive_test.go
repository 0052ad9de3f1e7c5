package ocmirror_test

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ocMirrorArchive writes an archive as oc-mirror v2's mirror to disk does:
// its cache registry's storage (CNCF distribution's filesystem layout,
// here made by a real docker-registry) under docker/registry/v2/, and its
// working-dir, in numbered chunks mirror_00000N.tar. It returns the chunk
// and offset of the data of blob, to damage it.
func ocMirrorArchive(t *testing.T, storage, out string, blob v1.Hash) (string, int64) {
	t.Helper()
	var files []string
	err := filepath.WalkDir(storage, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	wd := filepath.Join(t.TempDir(), "working-dir")
	writeFile(t, filepath.Join(wd, ".history", ".history-2024-06-01T00:00:00Z"), "sha256:0000\n")
	writeFile(t, filepath.Join(wd, "release-images", "README"), "release payload data\n")
	type file struct{ src, name string }
	var all []file
	for _, f := range files {
		rel, _ := filepath.Rel(storage, f)
		all = append(all, file{f, rel})
	}
	all = append(all, file{filepath.Join(wd, ".history", ".history-2024-06-01T00:00:00Z"), "working-dir/.history/.history-2024-06-01T00:00:00Z"},
		file{filepath.Join(wd, "release-images", "README"), "working-dir/release-images/README"})
	var hitChunk string
	var hitOffset int64
	// Two chunks, as an archiveSize smaller than the content gives.
	half := len(all) / 2
	for c, part := range [][]file{all[:half], all[half:]} {
		path := filepath.Join(out, fmt.Sprintf("mirror_%06d.tar", c+1))
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		cw := &countingWriter{w: f}
		tw := tar.NewWriter(cw)
		for _, fl := range part {
			fi, err := os.Stat(fl.src)
			if err != nil {
				t.Fatal(err)
			}
			h, _ := tar.FileInfoHeader(fi, "")
			h.Name = fl.name
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(fl.name, blob.Hex+"/data") {
				hitChunk, hitOffset = path, cw.n
			}
			src, _ := os.Open(fl.src)
			if _, err := io.Copy(tw, src); err != nil {
				t.Fatal(err)
			}
			src.Close()
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	writeFile(t, filepath.Join(out, "isc_imagesetconfig.yaml"), "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror: {}\n")
	if hitChunk == "" {
		t.Fatalf("blob %s is not in the cache", blob)
	}
	return hitChunk, hitOffset
}

// TestOcMirrorArchive: an archive in oc-mirror v2's format is pushed by
// d2m through the oc-mirror symlink; its images verify by digest. A
// damaged or incomplete archive pushes nothing and names the problem.
func TestOcMirrorArchive(t *testing.T) {
	bin := ocMirror(t)
	cache := testenv.StartDockerRegistry(t)
	tagged := pushRandom(t, cache.Host+"/ubi9/ubi-minimal:9.4")
	layer := must(must(random.Image(4096, 1)).Layers())[0]
	platformImage := func(arch string) v1.Image {
		img := must(mutate.AppendLayers(must(random.Image(1000, 1)), layer))
		cf := must(img.ConfigFile())
		cf.OS, cf.Architecture = "linux", arch
		return must(mutate.ConfigFile(img, cf))
	}
	img1, img2 := platformImage("amd64"), platformImage("arm64")
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: mutate.MediaType(img1, types.OCIManifestSchema1), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: mutate.MediaType(img2, types.OCIManifestSchema1), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	if err := remote.WriteIndex(must(name.ParseReference(cache.Host+"/openshift4/ose-cli:v4.16", name.Insecure)), idx); err != nil {
		t.Fatal(err)
	}
	list := must(idx.Digest())
	byDigest := must(random.Image(1500, 2))
	bd := must(byDigest.Digest())
	if err := remote.Write(must(name.ParseReference(cache.Host+"/openshift/release@"+bd.String(), name.Insecure)), byDigest); err != nil {
		t.Fatal(err)
	}
	shared := must(layer.Digest())
	cache.Stop()
	archive := t.TempDir()
	chunk, offset := ocMirrorArchive(t, filepath.Join(cache.DataDir, "data"), archive, shared)
	isc := testenv.WriteImageSetConfig(t, "  additionalImages:\n  - name: registry.redhat.io/ubi9/ubi-minimal:9.4\n")

	// Damaged copies first: each pushes nothing.
	damaged := func(t *testing.T, change func(dir string)) (string, int, *testenv.Server) {
		dir := t.TempDir()
		for _, f := range must(filepath.Glob(filepath.Join(archive, "*"))) {
			data := must(os.ReadFile(f))
			writeFile(t, filepath.Join(dir, filepath.Base(f)), string(data))
		}
		change(dir)
		dst := testenv.StartFerry(t, testenv.FerryOptions{})
		out, code := run(t, nil, bin, "-c", isc, "--from", "file://"+dir, "docker://"+dst.Host, "--v2", "--dest-tls-verify=false")
		if reposOf(t, dst.Host) != 0 {
			t.Errorf("something was pushed from a damaged archive: %v", catalog(t, dst.Host))
		}
		return out, code, dst
	}
	t.Run("flipped byte", func(t *testing.T) {
		out, code, _ := damaged(t, func(dir string) {
			f := must(os.OpenFile(filepath.Join(dir, filepath.Base(chunk)), os.O_RDWR, 0))
			defer f.Close()
			b := make([]byte, 1)
			must(f.ReadAt(b, offset+100))
			b[0] ^= 0xff
			must(f.WriteAt(b, offset+100))
		})
		if code != 1 || !strings.Contains(out, shared.String()) || !strings.Contains(out, filepath.Base(chunk)) || !strings.Contains(out, "nothing was pushed") {
			t.Errorf("exit %d, want 1 naming blob %s and chunk %s", code, shared, filepath.Base(chunk))
		}
	})
	t.Run("missing chunk", func(t *testing.T) {
		out, code, _ := damaged(t, func(dir string) { os.Remove(filepath.Join(dir, "mirror_000001.tar")) })
		if code != 1 || !strings.Contains(out, "mirror_000001.tar is missing") {
			t.Errorf("exit %d, want 1 naming mirror_000001.tar", code)
		}
	})
	t.Run("truncated chunk", func(t *testing.T) {
		out, code, _ := damaged(t, func(dir string) {
			p := filepath.Join(dir, "mirror_000002.tar")
			fi := must(os.Stat(p))
			os.Truncate(p, fi.Size()/2)
		})
		if code != 1 || !strings.Contains(out, "mirror_000002.tar") || !strings.Contains(out, "damaged") {
			t.Errorf("exit %d, want 1 naming the damaged chunk", code)
		}
	})

	dst := testenv.StartFerry(t, testenv.FerryOptions{})
	if _, code := run(t, nil, bin, "-c", isc, "--from", "file://"+archive, "docker://"+dst.Host+"/ocp", "--v2", "--dest-tls-verify=false"); code != 0 {
		t.Fatalf("d2m of the oc-mirror archive: exit %d, want 0", code)
	}
	for _, c := range []struct {
		repo, ref string
		want      v1.Hash
	}{
		{"ocp/ubi9/ubi-minimal", "9.4", tagged},
		{"ocp/openshift4/ose-cli", "v4.16", list},
		{"ocp/openshift/release", bd.String(), bd},
	} {
		if f := testenv.GetManifest(t, dst.Host, c.repo, c.ref); f.Status != http.StatusOK || f.Digest != c.want.String() {
			t.Errorf("%s:%s: status %d digest %s, want %s", c.repo, c.ref, f.Status, f.Digest, c.want)
		}
	}
	crane := testenv.Tool(t, "crane")
	for _, ref := range []string{"ocp/ubi9/ubi-minimal:9.4", "ocp/openshift4/ose-cli:v4.16", "ocp/openshift/release@" + bd.String()} {
		if out, code := run(t, nil, crane, "validate", "--insecure", "--remote", dst.Host+"/"+ref); code != 0 {
			t.Errorf("crane validate %s: exit %d\n%s", ref, code, out)
		}
	}
	// A second push finds everything there.
	out, code := run(t, nil, bin, "-c", isc, "--from", "file://"+archive, "docker://"+dst.Host+"/ocp", "--v2", "--dest-tls-verify=false")
	if code != 0 || !strings.Contains(out, "0 copied") {
		t.Errorf("second d2m: exit %d, want 0 with nothing copied", code)
	}
}

func reposOf(t *testing.T, host string) int {
	t.Helper()
	n := 0
	for _, tags := range catalog(t, host) {
		n += len(tags)
	}
	return n
}

// must keeps fixture building readable; a failure is a broken test
// setup, reported by the panic with its error.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
