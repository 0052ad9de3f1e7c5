package archive

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

type blob struct {
	d    digest.Digest
	data []byte
}

// makeBlobs returns n blobs of random (incompressible) bytes with sizes
// drawn from sizes, from a fixed seed so runs are repeatable.
func makeBlobs(seed uint64, n int, size func(r *rand.Rand) int) []blob {
	r := rand.New(rand.NewPCG(seed, 1))
	var seedBytes [32]byte
	seedBytes[0] = byte(seed)
	fill := rand.NewChaCha8(seedBytes)
	out := make([]blob, n)
	for i := range out {
		data := make([]byte, size(r))
		fill.Read(data)
		out[i] = blob{digest.FromBytes(data), data}
	}
	return out
}

func putAll(t testing.TB, w *Writer, blobs []blob) {
	t.Helper()
	for _, b := range blobs {
		if err := w.PutBlob(context.Background(), b.d, int64(len(b.data)), bytes.NewReader(b.data)); err != nil {
			t.Fatal(err)
		}
	}
}

func create(t testing.TB, dir string, max int64) *Writer {
	t.Helper()
	w, err := Create(context.Background(), dir, Options{MaxChunkBytes: max})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func commit(t testing.TB, w *Writer) {
	t.Helper()
	if err := w.Commit(context.Background(), Metadata{Tool: "ferry test"}); err != nil {
		t.Fatal(err)
	}
}

func open(t testing.TB, dir string) *Archive {
	t.Helper()
	a, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// checkBlobs reads every blob back and compares it with what was written.
func checkBlobs(t testing.TB, a *Archive, blobs []blob) {
	t.Helper()
	for _, b := range blobs {
		rc, size, err := a.OpenBlob(b.d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read blob %s: %v", b.d, err)
		}
		if size != int64(len(b.data)) || !bytes.Equal(got, b.data) {
			t.Fatalf("blob %s: read %d bytes (size %d), want the %d written", b.d, len(got), size, len(b.data))
		}
	}
}

// dirBytes maps each chunk file name in dir to its content.
func dirBytes(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if chunkIndex(e.Name()) < 0 && e.Name() != MetadataFile {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = data
	}
	return m
}

func chunkNames(m map[string][]byte) []string {
	var names []string
	for n := range m {
		if chunkIndex(n) >= 0 {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// sameChunks fails unless the chunk files of two archives are byte for
// byte the same.
func sameChunks(t testing.TB, got, want string) {
	t.Helper()
	g, w := dirBytes(t, got), dirBytes(t, want)
	gn, wn := chunkNames(g), chunkNames(w)
	if len(gn) != len(wn) {
		t.Fatalf("%d chunks, want %d as in an uninterrupted run", len(gn), len(wn))
	}
	for _, n := range wn {
		if !bytes.Equal(g[n], w[n]) {
			t.Fatalf("chunk %s differs from the uninterrupted run's (%d vs %d bytes)", n, len(g[n]), len(w[n]))
		}
	}
}
