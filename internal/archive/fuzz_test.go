package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

// FuzzArchive feeds arbitrary ferry-archive.json and chunk bytes to the
// reader. Nothing may panic; what reads without error must be what the
// metadata's digests promise, and Extract, when it succeeds, leaves only
// verified files under dest.
func FuzzArchive(f *testing.F) {
	dir := f.TempDir()
	w, err := Create(context.Background(), dir, Options{MaxChunkBytes: MinChunkBytes})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"config", "layer one", strings.Repeat("x", 700)} {
		if err := w.PutBlob(context.Background(), digest.FromString(s), int64(len(s)), strings.NewReader(s)); err != nil {
			f.Fatal(err)
		}
	}
	if err := w.PutFile(context.Background(), "release/signatures.json", []byte(`[]`)); err != nil {
		f.Fatal(err)
	}
	if err := w.Commit(context.Background(), Metadata{Tool: "fuzz"}); err != nil {
		f.Fatal(err)
	}
	meta, err := os.ReadFile(filepath.Join(dir, MetadataFile))
	if err != nil {
		f.Fatal(err)
	}
	chunk, err := os.ReadFile(filepath.Join(dir, chunkName(0)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(meta, chunk)
	edit := func(fn func(m *Metadata)) []byte {
		var m Metadata
		if err := json.Unmarshal(meta, &m); err != nil {
			f.Fatal(err)
		}
		fn(&m)
		data, err := json.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		return data
	}
	const big = math.MaxInt64
	for _, fn := range []func(m *Metadata){
		func(m *Metadata) { m.Blobs[0].Size, m.Blobs[0].Parts[0].Length = big, big },
		func(m *Metadata) {
			p := m.Blobs[0].Parts[0]
			m.Blobs[0].Parts = []Part{{p.Chunk, p.Offset, big}, {p.Chunk, p.Offset, big}, {p.Chunk, p.Offset, m.Blobs[0].Size + 2}}
		},
		func(m *Metadata) { m.Blobs[0].Parts[0].Offset = big - big%blockSize },
		func(m *Metadata) { m.Blobs[0].Digest = "nope" },
		func(m *Metadata) { m.Blobs[0].Digest = "sha256:../../evil" },
		func(m *Metadata) { m.Files[0].Name = "../../evil" },
		func(m *Metadata) { m.Files[0].Digest = "nope" },
		func(m *Metadata) { m.Chunks[0].Name = "../ferry_000001.tar" },
		func(m *Metadata) { m.Chunks[0].Size = -1 },
		func(m *Metadata) { m.Chunks[0].SHA256 = "nope" },
		func(m *Metadata) { m.Blobs[1].Parts = m.Blobs[0].Parts }, // two blobs, one place
	} {
		f.Add(edit(fn), chunk)
	}
	corrupt := bytes.Clone(chunk)
	corrupt[blockSize+1] ^= 0xff
	f.Add(meta, corrupt)
	f.Add(meta, chunk[:len(chunk)/2])
	f.Add([]byte(`{"formatVersion":1}`), []byte{})
	f.Add([]byte(`{"formatVersion":1,"chunks":[{"name":"ferry_000001.tar","size":0,"sha256":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}],"blobs":[{"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0,"parts":[]}]}`), []byte{})

	f.Fuzz(func(t *testing.T, meta, chunk []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, MetadataFile), meta, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, chunkName(0)), chunk, 0o644); err != nil {
			t.Fatal(err)
		}
		a, err := Open(dir)
		if err != nil {
			return
		}
		for _, b := range a.meta.Blobs {
			rc, _, err := a.OpenBlob(b.Digest)
			if err != nil {
				continue
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if err == nil && digest.FromBytes(data) != b.Digest && b.Digest.Algorithm() == digest.SHA256 {
				t.Fatalf("blob %s read without error as bytes with digest %s", b.Digest, digest.FromBytes(data))
			}
		}
		for _, fe := range a.meta.Files {
			if data, err := a.ReadFile(fe.Name); err == nil && fe.Digest.Algorithm().FromBytes(data) != fe.Digest {
				t.Fatalf("file %s read without error with the wrong digest", fe.Name)
			}
		}
		_ = a.Verify(context.Background(), nil)
		dest := filepath.Join(t.TempDir(), "out")
		if err := Extract(context.Background(), dir, dest); err != nil {
			return
		}
		_ = filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(dest, p)
			rel = filepath.ToSlash(rel)
			if strings.HasSuffix(rel, ".partial") {
				t.Fatalf("Extract succeeded and left %s", rel)
			}
			if hexPart, ok := strings.CutPrefix(rel, "blobs/sha256/"); ok {
				data, _ := os.ReadFile(p)
				sum := sha256.Sum256(data)
				if hex.EncodeToString(sum[:]) != hexPart {
					t.Fatalf("Extract succeeded and %s holds other bytes", rel)
				}
			}
			return nil
		})
	})
}
