package archive

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// resume loads the journal of an interrupted archive, if any, and cuts the
// folder back to what the journal vouches for.
func (w *Writer) resume() error {
	jpath := filepath.Join(w.dir, journalFile)
	sizes, err := chunkFiles(w.dir)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(jpath)
	if errors.Is(err, os.ErrNotExist) {
		if len(sizes) > 0 {
			return fmt.Errorf("%s holds archive chunks but neither %s nor a journal to resume from; write the archive to an empty folder", w.dir, MetadataFile)
		}
		return w.openJournal(nil)
	}
	if err != nil {
		return fmt.Errorf("read archive journal: %w", err)
	}
	records := parseJournal(data)

	closes := map[string]record{}
	for _, r := range records {
		switch r.T {
		case "close":
			closes[r.Name] = r
		case "reopen":
			delete(closes, r.Name)
		}
	}
	// Chunks up to the first one not closed at its journaled size are
	// intact; the entries the journal vouches for are a prefix of it.
	valid := 0
	for {
		cl, ok := closes[chunkName(valid)]
		if size, exists := sizes[valid]; !ok || !exists || size != cl.Size {
			break
		}
		valid++
	}
	var kept []record
	for _, r := range records {
		if r.T != "blob" && r.T != "file" {
			continue
		}
		if !partsPresent(r.Parts, valid, sizes) {
			break // this entry and all later ones are incomplete
		}
		kept = append(kept, r)
	}
	// Everything after the last kept entry goes: the archive continues
	// from there exactly as an uninterrupted run would have.
	tail, end := -1, int64(0)
	if len(kept) > 0 {
		last := kept[len(kept)-1]
		p := last.Parts[len(last.Parts)-1]
		tail, end = chunkIndex(p.Chunk), p.end()
		for i := 0; i < tail; i++ {
			cl := closes[chunkName(i)]
			w.chunks = append(w.chunks, &chunk{name: cl.Name, size: cl.Size, closed: true, sum: cl.Digest})
		}
		if cl, ok := closes[chunkName(tail)]; ok && tail < valid && cl.Size == end+trailerSize {
			w.chunks = append(w.chunks, &chunk{name: cl.Name, size: cl.Size, closed: true, sum: cl.Digest})
		} else if err := w.reopenTail(tail, end, last.State); err != nil {
			return err
		}
	}
	for i := range sizes {
		if i > tail {
			if err := os.Remove(filepath.Join(w.dir, chunkName(i))); err != nil {
				return fmt.Errorf("remove incomplete archive chunk: %w", err)
			}
		}
	}
	var bytesKept int64
	for _, r := range kept {
		switch r.T {
		case "blob":
			w.blobs[r.Digest] = BlobEntry{Digest: r.Digest, Size: r.Size, Parts: r.Parts}
			w.order = append(w.order, r.Digest)
			bytesKept += r.Size
		case "file":
			w.addFile(FileEntry{Name: r.Name, Size: r.Size, Digest: r.Digest, Parts: r.Parts})
		}
	}
	w.log.Info("resuming interrupted archive", "dir", w.dir, "blobs", len(w.order), "bytes", bytesKept, "chunks", len(w.chunks))
	compact := make([]record, 0, len(w.chunks)+len(kept))
	for _, c := range w.chunks {
		if c.closed {
			compact = append(compact, record{T: "close", Name: c.name, Size: c.size, Digest: c.sum})
		}
	}
	return w.openJournal(append(compact, kept...))
}

// partsPresent reports whether every part lies in a kept closed chunk
// (index < cur) or within the current chunk's bytes on disk.
func partsPresent(parts []Part, cur int, sizes map[int]int64) bool {
	if len(parts) == 0 {
		return false
	}
	for _, p := range parts {
		i := chunkIndex(p.Chunk)
		switch {
		case i < 0 || i > cur:
			return false
		case i == cur:
			size, ok := sizes[i]
			if !ok || !p.within(size) {
				return false
			}
		}
	}
	return true
}

// reopenTail opens chunk i for appending after cutting it to end, and
// restores its running checksum.
func (w *Writer) reopenTail(i int, end int64, state []byte) error {
	c := &chunk{name: chunkName(i), size: end, h: sha256.New()}
	f, err := os.OpenFile(filepath.Join(w.dir, c.name), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("reopen archive chunk: %w", err)
	}
	if err := f.Truncate(end); err != nil {
		f.Close()
		return fmt.Errorf("cut archive chunk %s to its last whole entry: %w", c.name, err)
	}
	if err := c.h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		// No usable saved state: hash the kept bytes again.
		c.h.Reset()
		if _, err := io.Copy(c.h, io.NewSectionReader(f, 0, end)); err != nil {
			f.Close()
			return fmt.Errorf("read archive chunk %s: %w", c.name, err)
		}
	}
	c.f = f
	w.chunks = append(w.chunks, c)
	return nil
}

// parseJournal reads records up to the first unreadable line. Each record
// is written as one line ending in a newline, so a final piece without one
// is a write cut short by a crash and is ignored.
func parseJournal(data []byte) []record {
	lines := bytes.Split(data, []byte{'\n'})
	lines = lines[:len(lines)-1]
	out := make([]record, 0, len(lines))
	for _, l := range lines {
		var r record
		if json.Unmarshal(l, &r) != nil {
			break
		}
		out = append(out, r)
	}
	return out
}

// openJournal rewrites the journal with recs and keeps it open to append.
func (w *Writer) openJournal(recs []record) error {
	var b bytes.Buffer
	for _, r := range recs {
		line, err := json.Marshal(r)
		if err != nil {
			return err
		}
		b.Write(append(line, '\n'))
	}
	path := filepath.Join(w.dir, journalFile)
	if err := writeFileAtomic(path, b.Bytes()); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("open archive journal: %w", err)
	}
	w.journal = f
	return nil
}

// chunkFiles maps the index of every chunk file in dir to its size.
func chunkFiles(dir string) (map[int]int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read archive folder: %w", err)
	}
	sizes := map[int]int64{}
	for _, e := range ents {
		i := chunkIndex(e.Name())
		if i < 0 || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("read archive folder: %w", err)
		}
		sizes[i] = info.Size()
	}
	return sizes, nil
}
