package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/store"
)

// Each chunk of an upload is its own object, named by its start offset and
// a time-ordered sequence number, never overwritten. The upload's data is
// the chain that starts at 0 and, at each offset, takes the newest chunk
// written there: a retry after a failed chunk is newer than the stray
// bytes it replaces, which is how "discard anything past offset" works
// without rewriting objects. A zero-length chunk ends the chain.

const (
	// smallChunk is what WriteUpload buffers to send a chunk in one PUT.
	smallChunk = 8 << 20
	// partSize is the multipart part size for larger chunks and copies.
	partSize = 16 << 20
	// minComposePart is S3's smallest part but the last: chunks this big
	// are joined server-side, smaller ones are copied through.
	minComposePart = 5 << 20
	// maxChains bounds the candidate chains tried when stray chunks make
	// the data ambiguous.
	maxChains = 16
)

func validID(id string) bool {
	if id == "" || len(id) > 128 || id[0] == '.' {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func (s *Store) uploadPrefix(id string) (string, error) {
	if !validID(id) {
		return "", fmt.Errorf("upload id %q: %w", id, store.ErrNotFound)
	}
	return s.prefix + "uploads/" + id + "/", nil
}

type chunk struct {
	key   string
	start int64
	seq   string // sorts by write time
	size  int64
}

func chunkName(start int64) string {
	var r [4]byte
	rand.Read(r[:])
	return fmt.Sprintf("c/%016x-%016x-%s", start, time.Now().UnixNano(), hex.EncodeToString(r[:]))
}

// chunks lists an upload's chunks; ErrNotFound if it was never started.
func (s *Store) chunks(ctx context.Context, id string) ([]chunk, error) {
	p, err := s.uploadPrefix(id)
	if err != nil {
		return nil, err
	}
	var out []chunk
	started := false
	for obj := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: p, Recursive: true}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("upload %s: list chunks: %w", id, obj.Err)
		}
		name := strings.TrimPrefix(obj.Key, p)
		if name == "info" {
			started = true
			continue
		}
		parts := strings.SplitN(strings.TrimPrefix(name, "c/"), "-", 3)
		if len(parts) != 3 {
			continue
		}
		start, err := strconv.ParseInt(parts[0], 16, 64)
		if err != nil {
			continue
		}
		out = append(out, chunk{key: obj.Key, start: start, seq: parts[1] + parts[2], size: obj.Size})
	}
	if !started {
		return nil, fmt.Errorf("upload %s: %w", id, store.ErrNotFound)
	}
	return out, nil
}

// chains returns the candidate data of an upload, best first: the chain of
// newest chunks, then the alternatives that stray chunks make possible.
// ambiguous says whether there were any.
func chains(cs []chunk) (all [][]chunk, ambiguous bool) {
	at := map[int64][]chunk{}
	for _, c := range cs {
		at[c.start] = append(at[c.start], c)
	}
	for _, l := range at {
		sort.Slice(l, func(i, j int) bool { return l[i].seq > l[j].seq })
	}
	var walk func(pos int64, chain []chunk)
	walk = func(pos int64, chain []chunk) {
		if len(all) >= maxChains {
			return
		}
		cands := at[pos]
		if len(cands) == 0 {
			all = append(all, append([]chunk(nil), chain...))
			return
		}
		for _, c := range cands {
			if c.size == 0 {
				all = append(all, append([]chunk(nil), chain...))
			} else {
				walk(pos+c.size, append(chain, c))
			}
		}
	}
	walk(0, nil)
	return all, len(all) > 1
}

// WriteUpload implements store.BlobStore.
func (s *Store) WriteUpload(ctx context.Context, id string, offset int64, r io.Reader) (int64, error) {
	p, err := s.uploadPrefix(id)
	if err != nil {
		return 0, err
	}
	if offset == 0 {
		if _, err := s.c.PutObject(ctx, s.bucket, p+"info", bytes.NewReader(nil), 0, minio.PutObjectOptions{}); err != nil {
			return 0, fmt.Errorf("upload %s: %w", id, err)
		}
	} else if _, err := s.c.StatObject(ctx, s.bucket, p+"info", minio.StatObjectOptions{}); err != nil {
		return 0, notFound(err, "upload "+id)
	}
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	buf := *bp
	n, err := io.ReadFull(r, buf)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return 0, fmt.Errorf("upload %s: %w", id, err)
	}
	if n == 0 {
		return 0, s.truncate(ctx, id, p, offset)
	}
	name := p + chunkName(offset)
	if n < len(buf) {
		// All of it: one plain PUT.
		if _, err := s.c.PutObject(ctx, s.bucket, name, bytes.NewReader(buf[:n]), int64(n), minio.PutObjectOptions{}); err != nil {
			return 0, fmt.Errorf("upload %s: write at %d: %w", id, offset, err)
		}
		return int64(n), nil
	}
	cr := &countingReader{r: io.MultiReader(bytes.NewReader(buf), r)}
	if _, err := s.c.PutObject(ctx, s.bucket, name, cr, -1, minio.PutObjectOptions{PartSize: partSize}); err != nil {
		return cr.n, fmt.Errorf("upload %s: write at %d: %w", id, offset, err)
	}
	return cr.n, nil
}

// truncate records an empty write at offset: only needed when chunks
// already start at or past it (strays of a failed request).
func (s *Store) truncate(ctx context.Context, id, p string, offset int64) error {
	cs, err := s.chunks(ctx, id)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if c.start >= offset {
			_, err := s.c.PutObject(ctx, s.bucket, p+chunkName(offset), bytes.NewReader(nil), 0, minio.PutObjectOptions{})
			if err != nil {
				return fmt.Errorf("upload %s: %w", id, err)
			}
			return nil
		}
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// chainReader reads a chain's chunks one after another, opening each only
// when it is reached.
func (s *Store) chainReader(ctx context.Context, chain []chunk) io.ReadCloser {
	return &lazyChain{ctx: ctx, s: s, chain: chain}
}

type lazyChain struct {
	ctx   context.Context
	s     *Store
	chain []chunk
	cur   *minio.Object
}

func (l *lazyChain) Read(p []byte) (int, error) {
	for {
		if l.cur == nil {
			if len(l.chain) == 0 {
				return 0, io.EOF
			}
			obj, err := l.s.c.GetObject(l.ctx, l.s.bucket, l.chain[0].key, minio.GetObjectOptions{})
			if err != nil {
				return 0, err
			}
			l.cur, l.chain = obj, l.chain[1:]
		}
		n, err := l.cur.Read(p)
		if errors.Is(err, io.EOF) {
			l.cur.Close()
			l.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (l *lazyChain) Close() error {
	if l.cur != nil {
		return l.cur.Close()
	}
	return nil
}

// OpenUpload implements store.BlobStore.
func (s *Store) OpenUpload(ctx context.Context, id string) (io.ReadCloser, error) {
	cs, err := s.chunks(ctx, id)
	if err != nil {
		return nil, err
	}
	all, _ := chains(cs)
	return s.chainReader(ctx, all[0]), nil
}

// verifyingReader passes data through and, at its end, fails instead of
// reporting EOF when the bytes do not have digest want. The failure comes
// on a read that returns no data, so a reader filling a buffer cannot drop
// it.
type verifyingReader struct {
	r    io.Reader
	h    hash.Hash
	want digest.Digest
	eof  bool
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.eof {
		if got := digest.NewDigest(v.want.Algorithm(), v.h); got != v.want {
			return 0, fmt.Errorf("upload data has digest %s, not %s", got, v.want)
		}
		return 0, io.EOF
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		v.eof, err = true, nil
		if n == 0 {
			return v.Read(p)
		}
	}
	return n, err
}

// CommitUpload implements store.BlobStore.
func (s *Store) CommitUpload(ctx context.Context, id string, d digest.Digest) error {
	key, err := s.blobKey(d)
	if err != nil {
		return err
	}
	if _, err := s.c.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{}); err == nil {
		return s.DeleteUpload(ctx, id)
	} else if !isNotFound(err) {
		return fmt.Errorf("commit %s: %w", d, err)
	}
	cs, err := s.chunks(ctx, id)
	if err != nil {
		return err
	}
	all, ambiguous := chains(cs)
	chain := all[0]
	if ambiguous {
		// Stray chunks of failed or concurrent requests: the data is the
		// chain whose bytes have the digest the registry verified.
		if chain, err = s.pickChain(ctx, all, d); err != nil {
			return fmt.Errorf("commit %s: upload %s: %w", d, id, err)
		}
	}
	if err := s.join(ctx, chain, key, d); err != nil {
		return fmt.Errorf("commit %s: %w", d, err)
	}
	return s.DeleteUpload(ctx, id)
}

func (s *Store) pickChain(ctx context.Context, all [][]chunk, d digest.Digest) ([]chunk, error) {
	for _, chain := range all {
		rc := s.chainReader(ctx, chain)
		got, err := d.Algorithm().FromReader(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		if got == d {
			return chain, nil
		}
	}
	return nil, fmt.Errorf("no arrangement of the written chunks has digest %s", d)
}

// join writes chain as the object key: server-side when every chunk but
// the last is big enough to be a part, else by copying the bytes through
// this process, checking them on the way.
func (s *Store) join(ctx context.Context, chain []chunk, key string, d digest.Digest) error {
	composable := len(chain) > 0 && len(chain) <= 10000
	for i, c := range chain {
		if i < len(chain)-1 && c.size < minComposePart {
			composable = false
		}
	}
	if composable {
		srcs := make([]minio.CopySrcOptions, len(chain))
		for i, c := range chain {
			srcs[i] = minio.CopySrcOptions{Bucket: s.bucket, Object: c.key}
		}
		_, err := s.c.ComposeObject(ctx, minio.CopyDestOptions{Bucket: s.bucket, Object: key}, srcs...)
		return err
	}
	rc := s.chainReader(ctx, chain)
	defer rc.Close()
	var total int64
	for _, c := range chain {
		total += c.size
	}
	v := &verifyingReader{r: rc, h: d.Algorithm().Hash(), want: d}
	if total < partSize {
		// Small: read it all (checked) and PUT once.
		b, err := io.ReadAll(v)
		if err != nil {
			return err
		}
		_, err = s.c.PutObject(ctx, s.bucket, key, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{})
		return err
	}
	// Unknown length makes minio-go read part by part, so a digest failure
	// at the end aborts the multipart upload before it completes.
	_, err := s.c.PutObject(ctx, s.bucket, key, v, -1, minio.PutObjectOptions{PartSize: partSize})
	return err
}

// DeleteUpload implements store.BlobStore.
func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	p, err := s.uploadPrefix(id)
	if err != nil {
		return nil
	}
	objs := s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: p, Recursive: true})
	for e := range s.c.RemoveObjects(ctx, s.bucket, objs, minio.RemoveObjectsOptions{}) {
		if e.Err != nil && !isNotFound(e.Err) {
			return fmt.Errorf("delete upload %s: %s: %w", id, e.ObjectName, e.Err)
		}
	}
	return nil
}

// Uploads implements store.BlobStore: an upload's time is that of its
// newest object.
func (s *Store) Uploads(ctx context.Context, fn func(id string, written time.Time) error) error {
	root := s.prefix + "uploads/"
	latest := map[string]time.Time{}
	for obj := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: root, Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("list uploads: %w", obj.Err)
		}
		id, _, ok := strings.Cut(strings.TrimPrefix(obj.Key, root), "/")
		if !ok {
			continue
		}
		if obj.LastModified.After(latest[id]) {
			latest[id] = obj.LastModified
		}
	}
	for id, t := range latest {
		if err := fn(id, t); err != nil {
			return err
		}
	}
	return nil
}
