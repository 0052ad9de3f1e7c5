package archive

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"
)

// Extract unpacks the complete archive in dir into dest as plain files:
// blobs/<algo>/<hex> and extra/<name>, with split blobs joined again. Any
// entry that could land outside dest is refused, and every file is opened
// through an os.Root on dest, so no symbolic link can lead out either.
// Every entry is written under a .partial name and renamed only once its
// bytes match the digest and size the metadata records, so nothing
// corrupt is ever left under a real name; entries the metadata does not
// record are not written. Each chunk's SHA-256 is checked on the way.
func Extract(ctx context.Context, dir, dest string) (err error) {
	a, err := Open(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return fmt.Errorf("extract archive: %w", err)
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return fmt.Errorf("extract archive: %w", err)
	}
	defer root.Close()
	type entry struct {
		what  string // for errors: "blob sha256:..." or "file name"
		base  string
		d     digest.Digest
		size  int64
		n     int // number of parts
		v     digest.Verifier
		wrote int64
		parts int // parts written so far
	}
	type at struct {
		e     *entry
		index int
		part  Part
	}
	places := map[Part]at{}
	var entries []*entry
	add := func(e *entry, ps []Part) {
		e.n = len(ps)
		entries = append(entries, e)
		for i, p := range ps {
			places[Part{Chunk: p.Chunk, Offset: p.Offset}] = at{e, i, p}
		}
	}
	for _, b := range a.meta.Blobs {
		add(&entry{what: "blob " + b.Digest.String(), base: blobBase(b.Digest), d: b.Digest, size: b.Size}, b.Parts)
	}
	for _, f := range a.meta.Files {
		add(&entry{what: "file " + f.Name, base: fileBase(f.Name), d: f.Digest, size: f.Size}, f.Parts)
	}
	// A failed or cancelled run leaves no .partial file behind.
	defer func() {
		if err == nil {
			return
		}
		for _, e := range entries {
			if e.parts > 0 && e.parts < e.n+1 {
				_ = root.Remove(e.base + ".partial")
			}
		}
	}()
	for _, c := range a.meta.Chunks {
		err := extractChunk(ctx, filepath.Join(dir, c.Name), c, a.contents, func(hdr *tar.Header, off int64, r io.Reader) error {
			pl, ok := places[Part{Chunk: c.Name, Offset: off}]
			if !ok {
				return nil // not recorded (a part of a write that was rolled back): nothing vouches for it
			}
			e := pl.e
			if want := entryName(e.base, pl.index, e.n); hdr.Name != want || hdr.Size != pl.part.Length {
				return fmt.Errorf("at offset %d the archive recorded %s (%d bytes) but the chunk holds %s (%d bytes); run ferry archive verify", off, want, pl.part.Length, hdr.Name, hdr.Size)
			}
			if pl.index != e.parts {
				return fmt.Errorf("%s: part %d comes before part %d; run ferry archive verify", e.what, pl.index+1, e.parts+1)
			}
			flag := os.O_WRONLY | os.O_APPEND
			if pl.index == 0 {
				flag = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
				e.v = e.d.Verifier()
			}
			e.parts++
			n, err := writeRooted(root, e.base+".partial", flag, io.TeeReader(io.LimitReader(r, pl.part.Length), e.v))
			if err != nil {
				return err
			}
			e.wrote += n
			if pl.index < e.n-1 {
				return nil
			}
			if e.wrote != e.size || !e.v.Verified() {
				return fmt.Errorf("%s does not match its digest in chunk %s: the archive is damaged; run ferry archive verify, copy the chunk from the medium again", e.what, c.Name)
			}
			e.parts++ // done: not a .partial any more
			return root.Rename(e.base+".partial", e.base)
		})
		if err != nil {
			return fmt.Errorf("extract chunk %s: %w", c.Name, err)
		}
	}
	for _, e := range entries {
		if e.parts != e.n+1 {
			return fmt.Errorf("extract archive: %s was not found where the archive recorded it; run ferry archive verify", e.what)
		}
	}
	return nil
}

// extractChunk walks the tar entries of chunk c, then checks the whole
// chunk's size and SHA-256 against the metadata.
func extractChunk(ctx context.Context, file string, c ChunkEntry, holds func(chunk string) string, fn func(hdr *tar.Header, off int64, r io.Reader) error) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	cr := &countingReader{r: io.TeeReader(&ctxReader{ctx: ctx, r: f}, h)}
	if err := eachEntry(cr, fn); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return err
	}
	if sum := digest.NewDigest(digest.SHA256, h); cr.n != c.Size || sum != c.SHA256 {
		return fmt.Errorf("chunk is damaged: %d bytes with SHA-256 %s, the archive recorded %d bytes with %s; it holds %s; copy it from the medium again", cr.n, sum, c.Size, c.SHA256, holds(c.Name))
	}
	return nil
}

func writeRooted(root *os.Root, name string, flag int, r io.Reader) (int64, error) {
	if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
		return 0, err
	}
	f, err := root.OpenFile(name, flag, 0o644)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}
