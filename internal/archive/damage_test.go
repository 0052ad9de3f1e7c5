package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

// smallArchive writes 40 blobs in 128 KiB chunks and returns its folder,
// the blobs and the opened archive.
func smallArchive(t *testing.T) (string, []blob, *Archive) {
	dir := t.TempDir()
	blobs := makeBlobs(21, 40, func(r *rand.Rand) int { return 10<<10 + r.IntN(60<<10) })
	w := create(t, dir, 128<<10)
	putAll(t, w, blobs)
	commit(t, w)
	return dir, blobs, open(t, dir)
}

// inChunk returns a blob whose first part lies in chunk.
func inChunk(t *testing.T, a *Archive, chunk string) BlobEntry {
	for _, b := range a.Metadata().Blobs {
		if b.Parts[0].Chunk == chunk {
			return b
		}
	}
	t.Fatalf("no blob in %s", chunk)
	return BlobEntry{}
}

func TestVerifyFlippedByte(t *testing.T) {
	dir, _, a := smallArchive(t)
	b := inChunk(t, a, "ferry_000002.tar")
	path := filepath.Join(dir, "ferry_000002.tar")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[b.Parts[0].Offset+100] ^= 0x01
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	err = a.Verify(context.Background(), nil)
	if err == nil {
		t.Fatal("Verify accepted a flipped byte")
	}
	for _, want := range []string{"chunk ferry_000002.tar is damaged", b.Digest.String(), "copy it from the medium again"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Verify error %q\ndoes not name %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "ferry_000001.tar") || strings.Contains(err.Error(), "ferry_000003.tar") {
		t.Errorf("Verify blames intact chunks: %v", err)
	}
	// Reading the blob directly also fails, at its end.
	rc, _, err := a.OpenBlob(b.Digest)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rc)
	rc.Close()
	if err == nil || !strings.Contains(err.Error(), "does not match its digest") || !strings.Contains(err.Error(), b.Digest.String()) {
		t.Errorf("reading the damaged blob = %v", err)
	}
}

func TestVerifyDamagedHeader(t *testing.T) {
	dir, _, a := smallArchive(t)
	b := inChunk(t, a, "ferry_000003.tar")
	path := filepath.Join(dir, "ferry_000003.tar")
	data, _ := os.ReadFile(path)
	data[b.Parts[0].Offset-blockSize+20] ^= 0x01 // inside the entry name
	os.WriteFile(path, data, 0o644)
	err := a.Verify(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "ferry_000003.tar") {
		t.Errorf("Verify of a damaged header = %v", err)
	}
}

func TestVerifyMissingAndShortChunk(t *testing.T) {
	dir, _, a := smallArchive(t)
	b3 := inChunk(t, a, "ferry_000003.tar")
	b5 := inChunk(t, a, "ferry_000005.tar")
	os.Remove(filepath.Join(dir, "ferry_000003.tar"))
	os.Truncate(filepath.Join(dir, "ferry_000005.tar"), 1000)
	err := a.Verify(context.Background(), nil)
	if err == nil {
		t.Fatal("Verify accepted a missing chunk")
	}
	for _, want := range []string{"chunk ferry_000003.tar is missing from " + dir, b3.Digest.String(), "chunk ferry_000005.tar is 1000 bytes", b5.Digest.String()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Verify error %q\ndoes not name %q", err, want)
		}
	}
}

// craft writes a one-chunk archive whose chunk holds the given tar
// entries, with metadata that matches the chunk's size and checksum.
func craft(t *testing.T, hdrs ...*tar.Header) string {
	dir := t.TempDir()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	tw.Close()
	if err := os.WriteFile(filepath.Join(dir, chunkName(0)), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	meta := `{"formatVersion":1,"blobs":[],"chunks":[{"name":"ferry_000001.tar","size":` + strconv.Itoa(buf.Len()) + `,"sha256":"` + digest.NewDigestFromBytes(digest.SHA256, sum[:]).String() + `"}]}`
	if err := os.WriteFile(filepath.Join(dir, MetadataFile), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestUnsafeEntriesRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		hdr  *tar.Header
		want string
	}{
		{"parent path", &tar.Header{Name: "../evil", Typeflag: tar.TypeReg, Size: 4, Mode: 0o644}, "outside the archive folder"},
		{"nested parent path", &tar.Header{Name: "blobs/../../evil", Typeflag: tar.TypeReg, Size: 4, Mode: 0o644}, "outside the archive folder"},
		{"absolute path", &tar.Header{Name: "/tmp/evil", Typeflag: tar.TypeReg, Size: 4, Mode: 0o644}, "absolute path"},
		{"symlink", &tar.Header{Name: "blobs/evil", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}, "symbolic link"},
		{"hard link", &tar.Header{Name: "blobs/evil", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}, "hard link"},
		{"device", &tar.Header{Name: "blobs/evil", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}, "device"},
		{"unknown top folder", &tar.Header{Name: "etc/evil", Typeflag: tar.TypeReg, Size: 4, Mode: 0o644}, "not a path Ferry writes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := craft(t,
				&tar.Header{Name: "blobs/sha256/ok", Typeflag: tar.TypeReg, Size: 3, Mode: 0o644},
				tc.hdr)
			a := open(t, dir)
			err := a.Verify(context.Background(), nil)
			if err == nil || !strings.Contains(err.Error(), "ferry_000001.tar") || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Verify = %v, want a refusal saying %q", err, tc.want)
			}
			parent := t.TempDir()
			dest := filepath.Join(parent, "out")
			err = Extract(context.Background(), dir, dest)
			if err == nil || !strings.Contains(err.Error(), "refused") {
				t.Errorf("Extract = %v, want a refusal", err)
			}
			for _, p := range []string{filepath.Join(parent, "evil"), "/tmp/evil", filepath.Join(dest, "blobs", "evil")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("Extract wrote %s", p)
				}
			}
		})
	}
}

func TestExtract(t *testing.T) {
	dir := t.TempDir()
	blobs := makeBlobs(31, 30, func(r *rand.Rand) int {
		if r.IntN(5) == 0 {
			return 300 << 10
		}
		return r.IntN(30 << 10)
	})
	w := create(t, dir, 128<<10)
	putAll(t, w, blobs)
	if err := w.PutFile(context.Background(), "signatures/release-1", []byte("sig")); err != nil {
		t.Fatal(err)
	}
	commit(t, w)
	dest := filepath.Join(t.TempDir(), "out")
	if err := Extract(context.Background(), dir, dest); err != nil {
		t.Fatal(err)
	}
	for _, b := range blobs {
		got, err := os.ReadFile(filepath.Join(dest, "blobs", "sha256", b.d.Encoded()))
		if err != nil || !bytes.Equal(got, b.data) {
			t.Fatalf("extracted blob %s: %d bytes, %v", b.d, len(got), err)
		}
	}
	if got, err := os.ReadFile(filepath.Join(dest, "extra", "signatures", "release-1")); err != nil || string(got) != "sig" {
		t.Errorf("extracted file = %q, %v", got, err)
	}
	var n int
	filepath.WalkDir(dest, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
			if strings.HasSuffix(p, ".partial") {
				t.Errorf("left over: %s", p)
			}
		}
		return nil
	})
	if n != len(blobs)+1 {
		t.Errorf("extracted %d files, want %d", n, len(blobs)+1)
	}
	if err := Extract(context.Background(), filepath.Join(t.TempDir(), "nope"), dest); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Extract of a missing folder = %v", err)
	}
}
