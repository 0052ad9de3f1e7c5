package e2e

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestCrane walks the crane commands a registry admin uses: copy a
// multi-platform image in, list tags and the catalog, export a platform's
// filesystem, and delete.
func TestCrane(t *testing.T) {
	upstream := testenv.StartDockerRegistry(t)
	reg := startRegistry(t)
	home := t.TempDir()

	idx := seedIndex(t, true, 500)
	pushIndex(t, upstream.Host+"/tools/crane:1", idx)
	want := digestOf(t, idx)

	run(t, home, "crane", "copy", "--insecure", upstream.Host+"/tools/crane:1", reg.Host+"/mirror/tools/crane:1")
	if got := remoteDigest(t, reg.Host+"/mirror/tools/crane:1"); got != want {
		t.Fatalf("after crane copy: digest %s, upstream %s", got, want)
	}
	verifyIndex(t, reg.Host+"/mirror/tools/crane:1")
	run(t, home, "crane", "tag", "--insecure", reg.Host+"/mirror/tools/crane:1", "stable")
	run(t, home, "crane", "copy", "--insecure", reg.Host+"/mirror/tools/crane:1", reg.Host+"/other/crane:copy")

	t.Run("ls", func(t *testing.T) {
		got := lines(run(t, home, "crane", "ls", "--insecure", reg.Host+"/mirror/tools/crane"))
		slices.Sort(got)
		if !slices.Equal(got, []string{"1", "stable"}) {
			t.Errorf("crane ls: %q, want [1 stable]", got)
		}
	})

	t.Run("catalog", func(t *testing.T) {
		got := lines(run(t, home, "crane", "catalog", "--insecure", reg.Host))
		for _, repo := range []string{"mirror/tools/crane", "other/crane"} {
			if !slices.Contains(got, repo) {
				t.Errorf("crane catalog %q lacks %s", got, repo)
			}
		}
	})

	t.Run("export", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "fs.tar")
		run(t, home, "crane", "export", "--insecure", "--platform", "linux/arm64", reg.Host+"/mirror/tools/crane:stable", out)
		files := readTar(t, out)
		// The arm64 image holds the shared base layer (seed 500) and its own (502).
		for seed, size := range map[uint64]int{500: 1 << 20, 502: 256 << 10} {
			for path, content := range layerFiles(seed, size) {
				if got, ok := files[path]; !ok {
					t.Errorf("exported filesystem lacks %s", path)
				} else if !bytes.Equal(got, content) {
					t.Errorf("exported %s differs from what was pushed", path)
				}
			}
		}
		if _, ok := files["e2e/layer-501/data.bin"]; ok {
			t.Error("the arm64 export holds the amd64 layer")
		}
	})

	t.Run("delete", func(t *testing.T) {
		run(t, home, "crane", "delete", "--insecure", reg.Host+"/other/crane@"+want)
		if e := do(t, "HEAD", reg.URL+"/v2/other/crane/manifests/"+want, nil, nil); e.Status != 404 {
			t.Errorf("after crane delete: %v, want 404", e)
		}
		if e := do(t, "HEAD", reg.URL+"/v2/other/crane/manifests/copy", nil, nil); e.Status != 404 {
			t.Errorf("tag of the deleted manifest still resolves: %v", e)
		}
		// The same content under another repository is untouched.
		verifyIndex(t, reg.Host+"/mirror/tools/crane@"+want)
	})
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// readTar returns the regular files of a tar file by path.
func readTar(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(fmt.Errorf("read %s in %s: %w", hdr.Name, path, err))
		}
		files[strings.TrimPrefix(hdr.Name, "/")] = b
	}
}
