package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

// editMeta rewrites ferry-archive.json in dir through edit.
func editMeta(t *testing.T, dir string, edit func(m *Metadata)) {
	t.Helper()
	path := filepath.Join(dir, MetadataFile)
	var m Metadata
	if err := json.Unmarshal(must(os.ReadFile(path)), &m); err != nil {
		t.Fatal(err)
	}
	edit(&m)
	if err := os.WriteFile(path, must(json.Marshal(m)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// splitArchive writes an archive of a few blobs, one of them split over
// two chunks, and returns its folder and blobs.
func splitArchive(t *testing.T) (string, []blob) {
	t.Helper()
	dir := t.TempDir()
	blobs := makeBlobs(7, 4, func(r *rand.Rand) int { return 20<<10 + r.IntN(60<<10) })
	w := create(t, dir, MinChunkBytes)
	putAll(t, w, blobs)
	commit(t, w)
	return dir, blobs
}

// TestPartLengthsAreExact: metadata whose part lengths overflow int64
// when padded or summed is refused by Open, before any read.
func TestPartLengthsAreExact(t *testing.T) {
	const big = math.MaxInt64
	for _, tc := range []struct {
		name string
		edit func(m *Metadata)
	}{
		{"padded length overflows", func(m *Metadata) {
			b := &m.Blobs[0]
			b.Size, b.Parts = big, []Part{{Chunk: b.Parts[0].Chunk, Offset: blockSize, Length: big}}
		}},
		{"lengths wrap around to the size", func(m *Metadata) {
			b := &m.Blobs[0]
			c := b.Parts[0].Chunk
			// (2^63-1) + (2^63-1) + (size+2) wraps to size.
			b.Parts = []Part{{c, blockSize, big}, {c, blockSize, big}, {c, blockSize, b.Size + 2}}
		}},
		{"offset near the end of int64", func(m *Metadata) {
			b := &m.Blobs[0]
			b.Parts = []Part{{b.Parts[0].Chunk, big - big%blockSize, b.Size}}
		}},
		{"negative length", func(m *Metadata) {
			b := &m.Blobs[0]
			b.Parts = append([]Part{{b.Parts[0].Chunk, blockSize, -blockSize}}, b.Parts...)
			b.Parts = append(b.Parts, Part{b.Parts[1].Chunk, blockSize, blockSize})
		}},
		{"negative chunk size", func(m *Metadata) { m.Chunks[0].Size = -1 }},
		{"negative blob size", func(m *Metadata) { m.Blobs[0].Size = -1 }},
		{"chunk checksum not a digest", func(m *Metadata) { m.Chunks[0].SHA256 = "nope" }},
		{"blob digest not a digest", func(m *Metadata) { m.Blobs[0].Digest = "sha256:../../evil" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := splitArchive(t)
			editMeta(t, dir, tc.edit)
			if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "inconsistent") {
				t.Errorf("Open = %v; want the metadata refused as inconsistent", err)
			}
		})
	}
}

// TestExtractVerifies: a blob whose bytes were changed is never left under
// its real name, and Extract fails naming it, whether or not the chunk's
// recorded checksum was updated to hide the change.
func TestExtractVerifies(t *testing.T) {
	for _, hide := range []bool{false, true} {
		t.Run(map[bool]string{false: "chunk checksum stale", true: "chunk checksum updated"}[hide], func(t *testing.T) {
			dir, blobs := splitArchive(t)
			a := open(t, dir)
			victim := a.meta.Blobs[len(a.meta.Blobs)-1]
			p := victim.Parts[0]
			chunk := filepath.Join(dir, p.Chunk)
			data := must(os.ReadFile(chunk))
			data[p.Offset+p.Length/2] ^= 0xff
			if err := os.WriteFile(chunk, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if hide {
				sum := sha256.Sum256(data)
				editMeta(t, dir, func(m *Metadata) {
					for i := range m.Chunks {
						if m.Chunks[i].Name == p.Chunk {
							m.Chunks[i].SHA256 = digest.NewDigestFromBytes(digest.SHA256, sum[:])
						}
					}
				})
			}
			dest := filepath.Join(t.TempDir(), "out")
			err := Extract(context.Background(), dir, dest)
			if err == nil || !strings.Contains(err.Error(), victim.Digest.String()) {
				t.Fatalf("Extract = %v; want an error naming %s", err, victim.Digest)
			}
			for _, b := range blobs {
				got, err := os.ReadFile(filepath.Join(dest, "blobs", "sha256", b.d.Encoded()))
				if err == nil && !bytes.Equal(got, b.data) {
					t.Errorf("blob %s was extracted with wrong bytes", b.d)
				}
				if b.d == victim.Digest && err == nil {
					t.Errorf("the corrupted blob %s is under its real name", b.d)
				}
			}
			filepath.WalkDir(dest, func(p string, d os.DirEntry, err error) error {
				if err == nil && strings.HasSuffix(p, ".partial") {
					t.Errorf("left over: %s", p)
				}
				return nil
			})
		})
	}
}

// TestHugeMetadata: a ferry-archive.json past the limit is refused
// without being read whole (the file is sparse: no disk is used).
func TestHugeMetadata(t *testing.T) {
	dir, _ := splitArchive(t)
	if err := os.Truncate(filepath.Join(dir, MetadataFile), maxMetadataBytes+1); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Open = %v; want the metadata refused as too large", err)
	}
}
