package archive

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	digest "github.com/opencontainers/go-digest"
)

// Archive is a complete archive opened for reading.
type Archive struct {
	dir   string
	meta  Metadata
	blobs map[digest.Digest]*BlobEntry
	files map[string]*FileEntry
}

// Open reads a complete archive's metadata.
func Open(dir string) (*Archive, error) {
	info, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("archive folder %s does not exist; give the folder the m2d run wrote: %w", dir, err)
		}
		return nil, fmt.Errorf("open archive: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("archive %s is not a folder; give the folder that holds %s and the ferry_*.tar chunks", dir, MetadataFile)
	}
	data, err := readMetadata(filepath.Join(dir, MetadataFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s holds no complete Ferry archive: %s is missing; rerun the m2d that made it", dir, MetadataFile)
	}
	if err != nil {
		return nil, fmt.Errorf("open archive: %w", err)
	}
	a := &Archive{dir: dir, blobs: map[digest.Digest]*BlobEntry{}, files: map[string]*FileEntry{}}
	if err := json.Unmarshal(data, &a.meta); err != nil {
		return nil, fmt.Errorf("%s in %s is damaged (%v); copy the archive again", MetadataFile, dir, err)
	}
	if a.meta.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("archive %s has format version %d; this Ferry reads version %d, use the Ferry release that wrote it", dir, a.meta.FormatVersion, FormatVersion)
	}
	if err := a.index(); err != nil {
		return nil, fmt.Errorf("%s in %s is inconsistent: %w", MetadataFile, dir, err)
	}
	return a, nil
}

// maxMetadataBytes bounds ferry-archive.json, which is read whole: a
// release-sized archive's is a few MiB.
const maxMetadataBytes = 256 << 20

func readMetadata(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxMetadataBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxMetadataBytes {
		return nil, fmt.Errorf("%s is larger than %d MiB; it is damaged or not Ferry's, copy the archive again", file, maxMetadataBytes>>20)
	}
	return data, nil
}

// index checks the metadata's own consistency, so that later reads cannot
// be sent outside the chunk files, and builds the lookup maps.
func (a *Archive) index() error {
	chunks := map[string]int64{}
	for i, c := range a.meta.Chunks {
		if c.Name != chunkName(i) {
			return fmt.Errorf("chunk %d is named %q, want %s", i+1, c.Name, chunkName(i))
		}
		if c.Size < 0 {
			return fmt.Errorf("chunk %s has size %d", c.Name, c.Size)
		}
		if err := c.SHA256.Validate(); err != nil || c.SHA256.Algorithm() != digest.SHA256 {
			return fmt.Errorf("chunk %s: checksum %q is not a sha256 digest", c.Name, c.SHA256)
		}
		chunks[c.Name] = c.Size
	}
	checkParts := func(what string, size int64, parts []Part) error {
		if size < 0 {
			return fmt.Errorf("%s has size %d", what, size)
		}
		var total int64
		for _, p := range parts {
			cs, ok := chunks[p.Chunk]
			if !ok {
				return fmt.Errorf("%s refers to unknown chunk %q", what, p.Chunk)
			}
			if !p.within(cs) {
				return fmt.Errorf("%s has a part outside chunk %s", what, p.Chunk)
			}
			// total <= size throughout, so neither side can overflow.
			if p.Length > size-total {
				return fmt.Errorf("%s: parts hold more than %d bytes", what, size)
			}
			total += p.Length
		}
		if len(parts) == 0 || total != size {
			return fmt.Errorf("%s: parts hold %d bytes, want %d", what, total, size)
		}
		return nil
	}
	for i := range a.meta.Blobs {
		b := &a.meta.Blobs[i]
		if err := b.Digest.Validate(); err != nil {
			return fmt.Errorf("blob %q: %w", b.Digest, err)
		}
		if err := checkParts("blob "+b.Digest.String(), b.Size, b.Parts); err != nil {
			return err
		}
		a.blobs[b.Digest] = b
	}
	for i := range a.meta.Files {
		f := &a.meta.Files[i]
		if err := checkFileName(f.Name); err != nil {
			return err
		}
		if err := f.Digest.Validate(); err != nil {
			return fmt.Errorf("file %s: digest %q: %w", f.Name, f.Digest, err)
		}
		if err := checkParts("file "+f.Name, f.Size, f.Parts); err != nil {
			return err
		}
		a.files[f.Name] = f
	}
	return nil
}

// Dir is the archive's folder.
func (a *Archive) Dir() string { return a.dir }

// Metadata returns the archive's metadata.
func (a *Archive) Metadata() *Metadata { return &a.meta }

// Has reports whether the archive holds blob d.
func (a *Archive) Has(d digest.Digest) bool {
	_, ok := a.blobs[d]
	return ok
}

// OpenBlob reads a blob straight from the chunk files at its recorded
// offsets. The digest is checked as the blob is read: a mismatch is an
// error from the Read that reaches the end.
func (a *Archive) OpenBlob(d digest.Digest) (io.ReadCloser, int64, error) {
	b, ok := a.blobs[d]
	if !ok {
		return nil, 0, fmt.Errorf("blob %s is not in archive %s: %w", d, a.dir, fs.ErrNotExist)
	}
	rc, err := a.openParts("blob "+d.String(), d, b.Size, b.Parts)
	if err != nil {
		return nil, 0, err
	}
	return rc, b.Size, nil
}

// ReadFile returns a named extra file stored with Writer.PutFile.
func (a *Archive) ReadFile(name string) ([]byte, error) {
	f, ok := a.files[name]
	if !ok {
		return nil, fmt.Errorf("file %s is not in archive %s: %w", name, a.dir, fs.ErrNotExist)
	}
	rc, err := a.openParts("file "+name, f.Digest, f.Size, f.Parts)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func (a *Archive) openParts(what string, d digest.Digest, size int64, parts []Part) (io.ReadCloser, error) {
	if !d.Algorithm().Available() {
		return nil, fmt.Errorf("%s: digest algorithm %q is not supported", what, d.Algorithm())
	}
	v := &verifyingReader{what: what, d: d, v: d.Verifier(), left: size}
	readers := make([]io.Reader, 0, len(parts))
	for _, p := range parts {
		f, err := os.Open(filepath.Join(a.dir, p.Chunk))
		if err != nil {
			v.Close()
			return nil, fmt.Errorf("%s: open chunk: %w", what, err)
		}
		v.files = append(v.files, f)
		readers = append(readers, io.NewSectionReader(f, p.Offset, p.Length))
	}
	v.r = io.MultiReader(readers...)
	v.chunk = parts[len(parts)-1].Chunk
	return v, nil
}

// verifyingReader hashes what it reads and fails at the end on a mismatch.
type verifyingReader struct {
	what  string
	chunk string
	d     digest.Digest
	r     io.Reader
	v     digest.Verifier
	left  int64
	files []*os.File
}

func (r *verifyingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.v.Write(p[:n])
	r.left -= int64(n)
	if errors.Is(err, io.EOF) {
		if r.left != 0 {
			return n, fmt.Errorf("%s: chunk %s ends %d bytes early; run ferry archive verify: %w", r.what, r.chunk, r.left, io.ErrUnexpectedEOF)
		}
		if !r.v.Verified() {
			return n, fmt.Errorf("%s read from the archive does not match its digest %s (chunk %s); run ferry archive verify", r.what, r.d, r.chunk)
		}
	}
	return n, err
}

func (r *verifyingReader) Close() error {
	var errs []error
	for _, f := range r.files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

// checkFileName accepts relative, clean, slash-separated names that stay
// inside extra/.
func checkFileName(name string) error {
	if name == "" || !fs.ValidPath(name) || strings.Contains(name, `\`) || path.Clean(name) != name {
		return fmt.Errorf("archive file name %q is not valid: use a relative slash-separated path without . or .. elements", name)
	}
	return nil
}
