package archive

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// imageSetBlobs is shaped like a mirrored image set: a few large layers,
// and a manifest and a config for every image.
func imageSetBlobs(seed uint64) []blob {
	layers := makeBlobs(seed, 24, func(r *rand.Rand) int { return 256<<10 + r.IntN(6<<20) })
	configs := makeBlobs(seed+1, 60, func(r *rand.Rand) int { return 1<<10 + r.IntN(12<<10) })
	manifests := makeBlobs(seed+2, 60, func(r *rand.Rand) int { return 500 + r.IntN(2500) })
	return append(append(layers, configs...), manifests...)
}

// TestOverhead holds the archive to at most 2% more bytes than its blobs.
func TestOverhead(t *testing.T) {
	blobs := imageSetBlobs(41)
	dir := t.TempDir()
	w := create(t, dir, 16<<20)
	putAll(t, w, blobs)
	commit(t, w)
	var blobBytes, archiveBytes int64
	for _, b := range blobs {
		blobBytes += int64(len(b.data))
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		info, _ := e.Info()
		archiveBytes += info.Size()
	}
	ratio := float64(archiveBytes) / float64(blobBytes)
	t.Logf("%d blobs, %d bytes; archive %d bytes in %d files: %.4fx", len(blobs), blobBytes, archiveBytes, len(ents), ratio)
	if ratio > 1.02 {
		t.Errorf("archive is %.4fx its blob bytes, want at most 1.02x", ratio)
	}
}

func BenchmarkWrite(b *testing.B) {
	blobs := makeBlobs(51, 16, func(*rand.Rand) int { return 4 << 20 })
	b.SetBytes(int64(len(blobs)) * 4 << 20)
	for b.Loop() {
		dir := b.TempDir()
		w := create(b, dir, 256<<20)
		putAll(b, w, blobs)
		commit(b, w)
		os.RemoveAll(dir)
	}
}

func benchArchive(b *testing.B) (*Archive, []blob) {
	blobs := makeBlobs(52, 16, func(*rand.Rand) int { return 4 << 20 })
	dir := filepath.Join(b.TempDir(), "a")
	w := create(b, dir, 16<<20) // small chunks, so blobs span
	putAll(b, w, blobs)
	commit(b, w)
	b.SetBytes(int64(len(blobs)) * 4 << 20)
	return open(b, dir), blobs
}

func BenchmarkRead(b *testing.B) {
	a, blobs := benchArchive(b)
	for b.Loop() {
		for _, bl := range blobs {
			rc, _, err := a.OpenBlob(bl.d)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				b.Fatal(err)
			}
			rc.Close()
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	a, _ := benchArchive(b)
	for b.Loop() {
		if err := a.Verify(context.Background(), nil); err != nil {
			b.Fatal(err)
		}
	}
}
