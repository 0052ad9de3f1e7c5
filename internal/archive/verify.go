package archive

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	digest "github.com/opencontainers/go-digest"
)

// Verify checks that every chunk exists with its recorded size and SHA-256,
// that every tar header in it is safe (no absolute or parent paths, no
// links or devices) and that every entry lies at its recorded offset.
// progress, if not nil, is told the bytes checked so far and the total.
// All bad chunks are reported, each with the blobs it holds.
func (a *Archive) Verify(ctx context.Context, progress func(done, total int64)) error {
	var total int64
	for _, c := range a.meta.Chunks {
		total += c.Size
	}
	cr := &countingReader{progress: progress, total: total}
	var errs []error
	for _, c := range a.meta.Chunks {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := a.verifyChunk(ctx, c, cr); err != nil {
			errs = append(errs, err)
		}
		cr.base += c.Size
		cr.n = 0
		cr.report(true)
	}
	return errors.Join(errs...)
}

func (a *Archive) verifyChunk(ctx context.Context, c ChunkEntry, cr *countingReader) error {
	f, err := os.Open(filepath.Join(a.dir, c.Name))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("chunk %s is missing from %s; it holds %s; copy it from the medium again", c.Name, a.dir, a.contents(c.Name))
	}
	if err != nil {
		return fmt.Errorf("chunk %s: %w", c.Name, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("chunk %s: %w", c.Name, err)
	}
	if info.Size() != c.Size {
		return fmt.Errorf("chunk %s is %d bytes, but the archive recorded %d: it is truncated or damaged; it holds %s; copy it from the medium again", c.Name, info.Size(), c.Size, a.contents(c.Name))
	}
	h := sha256.New()
	cr.r, cr.n = io.TeeReader(&ctxReader{ctx: ctx, r: f}, h), 0
	headerErr := a.checkEntries(c.Name, cr)
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return fmt.Errorf("chunk %s: %w", c.Name, err)
	}
	if sum := digest.NewDigest(digest.SHA256, h); sum != c.SHA256 {
		return fmt.Errorf("chunk %s is damaged: its SHA-256 is %s, but the archive recorded %s; it holds %s; copy it from the medium again", c.Name, sum, c.SHA256, a.contents(c.Name))
	}
	return headerErr
}

type expectedEntry struct {
	name   string
	length int64
	seen   bool
}

// checkEntries walks the chunk's tar headers through cr.
func (a *Archive) checkEntries(chunk string, cr *countingReader) error {
	want := map[int64]*expectedEntry{}
	add := func(base string, parts []Part) {
		for i, p := range parts {
			if p.Chunk == chunk {
				want[p.Offset] = &expectedEntry{name: entryName(base, i, len(parts)), length: p.Length}
			}
		}
	}
	for _, b := range a.meta.Blobs {
		add(blobBase(b.Digest), b.Parts)
	}
	for _, f := range a.meta.Files {
		add(fileBase(f.Name), f.Parts)
	}
	err := eachEntry(cr, func(hdr *tar.Header, off int64, _ io.Reader) error {
		if e, ok := want[off]; ok {
			if e.name != hdr.Name || e.length != hdr.Size {
				return fmt.Errorf("at offset %d the archive recorded %s (%d bytes) but the chunk holds %s (%d bytes)", off, e.name, e.length, hdr.Name, hdr.Size)
			}
			e.seen = true
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("chunk %s: %w", chunk, err)
	}
	for off, e := range want {
		if !e.seen {
			return fmt.Errorf("chunk %s: no entry %s at offset %d, where the archive recorded it", chunk, e.name, off)
		}
	}
	return nil
}

// eachEntry walks the tar stream of a chunk read through cr, refusing any
// entry checkHeader refuses, and calls fn with each header, the offset in
// the chunk where its data starts, and its data.
func eachEntry(cr *countingReader, fn func(hdr *tar.Header, off int64, r io.Reader) error) error {
	tr := tar.NewReader(cr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("bad tar data after byte %d: %w", cr.n, err)
		}
		if err := checkHeader(hdr); err != nil {
			return err
		}
		if err := fn(hdr, cr.n, tr); err != nil {
			return err
		}
	}
}

// checkHeader refuses any entry that could write outside an extraction
// folder or is not one of the regular files Ferry writes.
func checkHeader(hdr *tar.Header) error {
	name := hdr.Name
	switch {
	case hdr.Typeflag != tar.TypeReg:
		return fmt.Errorf("entry %q is refused: it is a %s, and an archive holds only regular files", name, typeName(hdr.Typeflag))
	case strings.HasPrefix(name, "/") || filepath.IsAbs(name):
		return fmt.Errorf("entry %q is refused: absolute path", name)
	case name == ".." || strings.HasPrefix(name, "../") || strings.Contains(name, "/../") || strings.HasSuffix(name, "/..") || strings.Contains(name, `\`):
		return fmt.Errorf("entry %q is refused: it would land outside the archive folder", name)
	case !fs.ValidPath(name) || !(strings.HasPrefix(name, "blobs/") || strings.HasPrefix(name, "extra/")):
		return fmt.Errorf("entry %q is refused: not a path Ferry writes (blobs/... or extra/...)", name)
	}
	return nil
}

func typeName(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "symbolic link"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar, tar.TypeBlock:
		return "device"
	case tar.TypeDir:
		return "directory"
	case tar.TypeFifo:
		return "named pipe"
	}
	return fmt.Sprintf("tar entry of type %q", t)
}

// contents names what a chunk holds, for messages that help a user judge
// what is lost.
func (a *Archive) contents(chunk string) string {
	var names []string
	for _, b := range a.meta.Blobs {
		for _, p := range b.Parts {
			if p.Chunk == chunk {
				names = append(names, "blob "+b.Digest.String())
				break
			}
		}
	}
	for _, f := range a.meta.Files {
		for _, p := range f.Parts {
			if p.Chunk == chunk {
				names = append(names, "file "+f.Name)
				break
			}
		}
	}
	const show = 5
	switch {
	case len(names) == 0:
		return "no recorded blobs"
	case len(names) > show:
		return fmt.Sprintf("%s and %d more", strings.Join(names[:show], ", "), len(names)-show)
	}
	return strings.Join(names, ", ")
}

// countingReader counts bytes read from the current chunk and reports
// progress over all chunks about every 4 MiB.
type countingReader struct {
	r        io.Reader
	n        int64 // bytes read from the current chunk
	base     int64 // bytes of earlier chunks
	total    int64
	last     int64
	progress func(done, total int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.report(false)
	return n, err
}

func (c *countingReader) report(force bool) {
	done := c.base + c.n
	if c.progress != nil && (force || done-c.last >= 4<<20) {
		c.last = done
		c.progress(done, c.total)
	}
}
