package archive

import (
	"bytes"
	"context"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// Options tune a Writer.
type Options struct {
	// MaxChunkBytes bounds each chunk file; 0 means unlimited.
	MaxChunkBytes int64
	Logger        *slog.Logger
}

// Writer appends blobs and files to an archive being made. Its methods are
// safe for concurrent use, but writes are serialized: an archive is one
// stream of bytes.
type Writer struct {
	dir string
	max int64
	log *slog.Logger

	mu      sync.Mutex // held for the whole of each write
	chunks  []*chunk   // in order; all closed except possibly the last
	journal *os.File
	order   []digest.Digest
	files   []FileEntry
	buf     []byte // copy buffer, used under mu
	err     error  // a failed rollback leaves the writer unusable
	done    bool

	idx   sync.RWMutex // guards blobs, read by Has during writes
	blobs map[digest.Digest]BlobEntry
}

// record is one journal line.
type record struct {
	// T is "blob", "file", "close" (a chunk is complete) or "reopen" (a
	// closed chunk was reopened to roll back a failed entry).
	T      string        `json:"t"`
	Digest digest.Digest `json:"digest,omitempty"`
	Name   string        `json:"name,omitempty"`
	Size   int64         `json:"size,omitempty"`
	Parts  []Part        `json:"parts,omitempty"`
	// State is the last part's chunk SHA-256 state at the entry's end, so
	// a resume continues the checksum without re-reading the chunk.
	State []byte `json:"state,omitempty"`
}

// Create starts an archive in dir, creating dir if needed. If dir holds an
// interrupted archive it resumes it: every blob the journal records is
// kept, and the chunk being written is cut back to its last whole entry.
// A complete archive in dir is an error.
func Create(ctx context.Context, dir string, opts Options) (*Writer, error) {
	if opts.MaxChunkBytes != 0 && opts.MaxChunkBytes < MinChunkBytes {
		return nil, fmt.Errorf("archive chunk size %d bytes is too small: give at least %d bytes, or 0 for no limit", opts.MaxChunkBytes, MinChunkBytes)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Writer{dir: dir, max: opts.MaxChunkBytes, log: log, blobs: map[digest.Digest]BlobEntry{}}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create archive folder: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, MetadataFile)); err == nil {
		return nil, fmt.Errorf("%s already holds a complete Ferry archive (%s); write the new archive to an empty folder, or remove the old one first", dir, MetadataFile)
	}
	if err := w.resume(); err != nil {
		return nil, err
	}
	return w, nil
}

// Has reports whether the archive being written already holds d.
func (w *Writer) Has(d digest.Digest) bool {
	w.idx.RLock()
	defer w.idx.RUnlock()
	_, ok := w.blobs[d]
	return ok
}

// PutBlob streams size bytes of r into the archive as blob d, checking the
// digest and size on the way. On a mismatch, or an error from r, nothing of
// the blob stays in the archive. A blob already held is skipped.
func (w *Writer) PutBlob(ctx context.Context, d digest.Digest, size int64, r io.Reader) error {
	return w.PutBlobFrom(ctx, d, size, func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(r), nil
	})
}

// PutBlobFrom is PutBlob with the source opened only when the archive is
// ready to take it. Writes are serialized, so a source connection opened
// early would sit idle, and might be cut by the server, while other blobs
// are written; open is not called for a blob the archive already holds.
func (w *Writer) PutBlobFrom(ctx context.Context, d digest.Digest, size int64, open func(context.Context) (io.ReadCloser, error)) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("archive blob %q: %w", d, err)
	}
	if size < 0 {
		return fmt.Errorf("archive blob %s: negative size %d", d, size)
	}
	if w.Has(d) {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	if w.Has(d) { // written by a concurrent call while this one waited
		return nil
	}
	rc, err := open(ctx)
	if err != nil {
		return fmt.Errorf("archive blob %s: %w", d, err)
	}
	defer rc.Close()
	parts, err := w.putEntry(ctx, blobBase(d), d, size, rc)
	if err != nil {
		return fmt.Errorf("archive blob %s: %w", d, err)
	}
	rec := record{T: "blob", Digest: d, Size: size, Parts: parts}
	if err := w.commitRecord(rec); err != nil {
		return fmt.Errorf("archive blob %s: %w", d, err)
	}
	w.idx.Lock()
	w.blobs[d] = BlobEntry{Digest: d, Size: size, Parts: parts}
	w.idx.Unlock()
	w.order = append(w.order, d)
	return nil
}

// PutFile stores a small named file under extra/<name>; name is a relative
// slash-separated path. Storing a name again replaces the earlier file.
func (w *Writer) PutFile(ctx context.Context, name string, data []byte) error {
	if err := checkFileName(name); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	d := digest.FromBytes(data)
	parts, err := w.putEntry(ctx, fileBase(name), d, int64(len(data)), bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("archive file %s: %w", name, err)
	}
	rec := record{T: "file", Name: name, Digest: d, Size: int64(len(data)), Parts: parts}
	if err := w.commitRecord(rec); err != nil {
		return fmt.Errorf("archive file %s: %w", name, err)
	}
	w.addFile(FileEntry{Name: name, Size: rec.Size, Digest: d, Parts: parts})
	return nil
}

func (w *Writer) addFile(fe FileEntry) {
	for i := range w.files {
		if w.files[i].Name == fe.Name {
			w.files = append(w.files[:i], w.files[i+1:]...)
			break
		}
	}
	w.files = append(w.files, fe)
}

func (w *Writer) usable() error {
	if w.done {
		return errors.New("archive is already committed")
	}
	return w.err
}

// Commit closes the last chunk and writes the metadata file, last, so its
// presence means the archive is complete. Blobs, Chunks and Files of meta
// are filled in here.
func (w *Writer) Commit(ctx context.Context, meta Metadata) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if c := w.current(); c != nil {
		if err := w.closeChunk(c); err != nil {
			return err
		}
	}
	if meta.FormatVersion == 0 {
		meta.FormatVersion = FormatVersion
	}
	if meta.Created.IsZero() {
		meta.Created = time.Now().UTC()
	}
	meta.Blobs = make([]BlobEntry, 0, len(w.order))
	for _, d := range w.order {
		meta.Blobs = append(meta.Blobs, w.blobs[d])
	}
	meta.Chunks = make([]ChunkEntry, 0, len(w.chunks))
	for _, c := range w.chunks {
		meta.Chunks = append(meta.Chunks, ChunkEntry{Name: c.name, Size: c.size, SHA256: c.sum})
	}
	meta.Files = append([]FileEntry(nil), w.files...)
	data, err := json.MarshalIndent(meta, "", " ")
	if err != nil {
		return fmt.Errorf("encode archive metadata: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(w.dir, MetadataFile), data); err != nil {
		return err
	}
	w.done = true
	w.journal.Close()
	if err := os.Remove(filepath.Join(w.dir, journalFile)); err != nil {
		w.log.Warn("remove archive journal", "err", err)
	}
	return nil
}

// Close releases the writer's files without committing; a later Create on
// the same folder resumes where this one stopped.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c := w.current(); c != nil && c.f != nil {
		c.f.Close()
		c.f = nil
	}
	if w.journal != nil && !w.done {
		w.journal.Close()
	}
	if w.err == nil && !w.done {
		w.err = errors.New("archive writer is closed")
	}
	return nil
}

// commitRecord makes an entry durable: the chunk data first, then the
// journal line that vouches for it.
func (w *Writer) commitRecord(rec record) error {
	c := w.current()
	if c != nil {
		st, err := c.h.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return err
		}
		rec.State = st
		if err := c.f.Sync(); err != nil {
			return fmt.Errorf("sync archive chunk %s: %w", c.name, err)
		}
	}
	return w.appendRecord(rec)
}

func (w *Writer) appendRecord(rec record) error {
	line, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := w.journal.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("write archive journal: %w", err)
	}
	if err := w.journal.Sync(); err != nil {
		return fmt.Errorf("sync archive journal: %w", err)
	}
	return nil
}

// ctxReader stops a long copy when the context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
