// Package archive reads and writes Ferry's disk archive: a folder of
// numbered tar chunks (ferry_000001.tar, ...) plus ferry-archive.json,
// written last, which says where every blob lies and each chunk's SHA-256.
//
// Format:
//   - Each chunk is a plain tar file (tar -tf lists it) of at most
//     MaxChunkBytes, ending with the usual two zero blocks.
//   - A blob is the entry blobs/<algo>/<hex>; a small named file is
//     extra/<name>. An entry that does not fit in the room left in a chunk
//     is split into parts, <entry>.part0001, .part0002, ..., continued in
//     the following chunks.
//   - The metadata records, for every blob and file, each part's chunk,
//     the byte offset of its data in the chunk file and its length, so
//     readers take blobs straight from the chunks with no unpacking.
//   - While an archive is written, ferry-archive.journal records each
//     finished entry (after syncing its bytes) and each finished chunk;
//     a rerun after a crash keeps what it vouches for and continues, and
//     the result is byte for byte what an uninterrupted run writes.
//     Commit writes the metadata (temporary file, then rename) and removes
//     the journal.
package archive

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// MetadataFile is written last; its presence means the archive is complete.
const MetadataFile = "ferry-archive.json"

// FormatVersion is the metadata format this package writes and reads.
const FormatVersion = 1

// journalFile records progress while an archive is written, so that a rerun
// after a crash resumes instead of starting over. Commit removes it.
const journalFile = "ferry-archive.journal"

// Tar framing sizes.
const (
	blockSize   = 512
	trailerSize = 2 * blockSize // the end-of-archive marker
	// MinChunkBytes is the smallest MaxChunkBytes accepted: room for a
	// header, some data and the end-of-archive marker.
	MinChunkBytes = 64 << 10
	// minPart avoids splitting a blob into a tiny part at a chunk's end.
	minPart = 32 << 10
)

var chunkPattern = regexp.MustCompile(`^ferry_([0-9]{6,})\.tar$`)

func chunkName(i int) string { return fmt.Sprintf("ferry_%06d.tar", i+1) }

// chunkIndex is the 0-based index of a chunk file name, or -1.
func chunkIndex(name string) int {
	m := chunkPattern.FindStringSubmatch(name)
	if m == nil {
		return -1
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n < 1 {
		return -1
	}
	return n - 1
}

// Metadata describes a complete archive.
type Metadata struct {
	FormatVersion int       `json:"formatVersion"`
	Created       time.Time `json:"created"`
	Tool          string    `json:"tool,omitempty"`
	// Config is the ImageSetConfiguration used, as JSON.
	Config json.RawMessage `json:"config,omitempty"`
	// Plan is the mirroring engine's plan, opaque to this package.
	Plan json.RawMessage `json:"plan,omitempty"`
	// Base is the archive or inventory this differential archive builds on.
	Base   *BaseRef     `json:"base,omitempty"`
	Blobs  []BlobEntry  `json:"blobs"`
	Chunks []ChunkEntry `json:"chunks"`
	Files  []FileEntry  `json:"files,omitempty"`
}

// BaseRef names the archive or inventory a differential archive builds on.
type BaseRef struct {
	Kind    string    `json:"kind"` // "archive" or "inventory"
	ID      string    `json:"id,omitempty"`
	Created time.Time `json:"created,omitempty"`
}

// BlobEntry locates one blob's bytes in the chunks.
type BlobEntry struct {
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
	Parts  []Part        `json:"parts"`
}

// Part is a run of an entry's bytes inside one chunk file.
type Part struct {
	Chunk string `json:"chunk"`
	// Offset is the byte offset of the data (after the tar header) in the chunk.
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
}

// end is the offset just past the part's tar padding.
func (p Part) end() int64 { return p.Offset + padded(p.Length) }

// within reports whether the part, with its tar header before it and its
// padding after, lies inside a chunk of size bytes. It is exact for any
// values read from metadata: nothing is added that could overflow.
func (p Part) within(size int64) bool {
	if p.Offset < blockSize || p.Offset%blockSize != 0 || p.Length < 0 || size < 0 || p.Offset > size {
		return false
	}
	pad := (blockSize - p.Length%blockSize) % blockSize
	return p.Length <= size-p.Offset-pad
}

// ChunkEntry is one chunk file with its size and checksum.
type ChunkEntry struct {
	Name   string        `json:"name"`
	Size   int64         `json:"size"`
	SHA256 digest.Digest `json:"sha256"`
}

// FileEntry is one small named extra file, stored under extra/<name>.
type FileEntry struct {
	Name   string        `json:"name"`
	Size   int64         `json:"size"`
	Digest digest.Digest `json:"digest"`
	Parts  []Part        `json:"parts"`
}

func padded(n int64) int64 { return (n + blockSize - 1) / blockSize * blockSize }

// entryName is the tar entry name of part i (0-based) of n parts.
func entryName(base string, i, n int) string {
	if n == 1 {
		return base
	}
	return fmt.Sprintf("%s.part%04d", base, i+1)
}

func blobBase(d digest.Digest) string { return "blobs/" + d.Algorithm().String() + "/" + d.Encoded() }

func fileBase(name string) string { return "extra/" + name }
