package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// chunk is one tar file of the archive being written.
type chunk struct {
	name   string
	f      *os.File // nil once closed
	size   int64
	h      hash.Hash
	closed bool
	sum    digest.Digest // set when closed
}

// current is the open chunk, or nil when the next entry starts a new one.
func (w *Writer) current() *chunk {
	if n := len(w.chunks); n > 0 && !w.chunks[n-1].closed {
		return w.chunks[n-1]
	}
	return nil
}

func (w *Writer) openChunk() (*chunk, error) {
	c := &chunk{name: chunkName(len(w.chunks)), h: sha256.New()}
	f, err := os.OpenFile(filepath.Join(w.dir, c.name), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create archive chunk: %w", err)
	}
	c.f = f
	w.chunks = append(w.chunks, c)
	w.log.Debug("archive chunk started", "chunk", c.name)
	return c, nil
}

// closeChunk ends the chunk's tar stream, syncs it and journals its checksum.
func (w *Writer) closeChunk(c *chunk) error {
	if err := c.write(make([]byte, trailerSize)); err != nil {
		return err
	}
	if err := c.f.Sync(); err != nil {
		return fmt.Errorf("sync archive chunk %s: %w", c.name, err)
	}
	if err := c.f.Close(); err != nil {
		return fmt.Errorf("close archive chunk %s: %w", c.name, err)
	}
	c.f = nil
	c.closed = true
	c.sum = digest.NewDigest(digest.SHA256, c.h)
	w.log.Debug("archive chunk complete", "chunk", c.name, "size", c.size)
	return w.appendRecord(record{T: "close", Name: c.name, Size: c.size, Digest: c.sum})
}

func (c *chunk) write(p []byte) error {
	if _, err := c.f.WriteAt(p, c.size); err != nil {
		return fmt.Errorf("write archive chunk %s: %w", c.name, err)
	}
	c.h.Write(p)
	c.size += int64(len(p))
	return nil
}

// Write lets a chunk be the destination of io.Copy.
func (c *chunk) Write(p []byte) (int, error) {
	if err := c.write(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// dataRoom is how many data bytes fit in c after a header of hlen bytes,
// keeping room for the end-of-archive marker; -1 means no limit.
func (w *Writer) dataRoom(c *chunk, hlen int64) int64 {
	if w.max == 0 {
		return -1
	}
	room := (w.max-trailerSize-c.size)/blockSize*blockSize - hlen
	return max(room, 0)
}

// mark is where an entry began, to roll back to.
type mark struct {
	chunk int // index into w.chunks; len(w.chunks) if it starts a new chunk
	size  int64
	state []byte
}

func (w *Writer) mark() (mark, error) {
	c := w.current()
	if c == nil {
		return mark{chunk: len(w.chunks)}, nil
	}
	st, err := c.h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return mark{}, err
	}
	return mark{chunk: len(w.chunks) - 1, size: c.size, state: st}, nil
}

// putEntry writes size bytes of r as entry base, split into parts across
// chunks when needed, and checks them against d. On any failure the
// archive is rolled back to where the entry began.
func (w *Writer) putEntry(ctx context.Context, base string, d digest.Digest, size int64, r io.Reader) (parts []Part, err error) {
	if !d.Algorithm().Available() {
		return nil, fmt.Errorf("digest algorithm %q is not supported", d.Algorithm())
	}
	m, err := w.mark()
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if rerr := w.rollback(m); rerr != nil {
				w.err = fmt.Errorf("archive is in an unknown state after a failed write (%v); rerun to resume it", rerr)
				err = errors.Join(err, w.err)
			}
		}
	}()
	v := d.Verifier()
	src := io.TeeReader(&ctxReader{ctx: ctx, r: r}, v)
	if w.buf == nil {
		w.buf = make([]byte, 1<<20)
	}
	whole := true
	for remaining := size; len(parts) == 0 || remaining > 0; {
		c := w.current()
		if c == nil {
			if c, err = w.openChunk(); err != nil {
				return nil, err
			}
		}
		name := base
		if !whole {
			name = fmt.Sprintf("%s.part%04d", base, len(parts)+1)
		}
		hdr, err := header(name, remaining)
		if err != nil {
			return nil, err
		}
		n := remaining
		if room := w.dataRoom(c, int64(len(hdr))); room >= 0 && room < remaining {
			if len(parts) == 0 && whole {
				if room < minPart && c.size > 0 {
					if err := w.closeChunk(c); err != nil {
						return nil, err
					}
					continue // retry whole in a fresh chunk
				}
				whole = false
				continue // redo the header with a part name
			}
			n = room
			if hdr, err = header(name, n); err != nil {
				return nil, err
			}
		}
		if err := c.write(hdr); err != nil {
			return nil, err
		}
		p := Part{Chunk: c.name, Offset: c.size, Length: n}
		got, err := io.CopyBuffer(c, io.LimitReader(src, n), w.buf)
		if err != nil {
			return nil, fmt.Errorf("copy: %w", err)
		}
		if got < n {
			return nil, fmt.Errorf("size mismatch: expected %d bytes, the source ended after %d", size, size-remaining+got)
		}
		if pad := padded(n) - n; pad > 0 {
			if err := c.write(make([]byte, pad)); err != nil {
				return nil, err
			}
		}
		parts = append(parts, p)
		remaining -= n
		if remaining > 0 {
			if err := w.closeChunk(c); err != nil {
				return nil, err
			}
		}
	}
	if extra, _ := io.ReadFull(src, make([]byte, 1)); extra > 0 {
		return nil, fmt.Errorf("size mismatch: the source holds more than the expected %d bytes", size)
	}
	if !v.Verified() {
		return nil, fmt.Errorf("digest mismatch: the %d bytes read do not hash to %s", size, d)
	}
	return parts, nil
}

func header(name string, size int64) ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     size,
		Mode:     0o644,
		ModTime:  time.Unix(0, 0), // fixed, so that equal content makes equal chunks
	})
	if err != nil {
		return nil, fmt.Errorf("tar header for %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// rollback cuts the archive back to m: later chunks are removed and the
// chunk m points into is truncated and its checksum state restored.
func (w *Writer) rollback(m mark) error {
	for len(w.chunks) > m.chunk+1 || (len(w.chunks) == m.chunk+1 && m.size == 0 && m.state == nil) {
		c := w.chunks[len(w.chunks)-1]
		if c.f != nil {
			c.f.Close()
		}
		if err := os.Remove(filepath.Join(w.dir, c.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		w.chunks = w.chunks[:len(w.chunks)-1]
	}
	if m.chunk >= len(w.chunks) {
		return nil
	}
	c := w.chunks[m.chunk]
	if c.closed {
		if err := w.appendRecord(record{T: "reopen", Name: c.name}); err != nil {
			return err
		}
		f, err := os.OpenFile(filepath.Join(w.dir, c.name), os.O_RDWR, 0)
		if err != nil {
			return err
		}
		c.f, c.closed, c.sum = f, false, ""
	}
	if err := c.f.Truncate(m.size); err != nil {
		return err
	}
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(m.state); err != nil {
		return err
	}
	c.h, c.size = h, m.size
	return nil
}
