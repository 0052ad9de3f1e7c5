package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
)

// stream is size bytes of seeded random data, the same on every read.
type stream struct {
	seed uint64
	size int64
}

// reader returns the stream's bytes from offset on.
func (s stream) reader(t *testing.T, offset int64) io.Reader {
	t.Helper()
	r := io.LimitReader(rand.NewChaCha8(seedKey(s.seed)), s.size)
	if _, err := io.CopyN(io.Discard, r, offset); err != nil {
		t.Fatal(err)
	}
	return r
}

func (s stream) digest(t *testing.T) string {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, s.reader(t, 0)); err != nil {
		t.Fatal(err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func seedKey(seed uint64) [32]byte {
	return [32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24), 'f', 'e', 'r', 'r', 'y'}
}

// stallingReader passes r through until stallAt bytes were read, then
// blocks, like a client stuck mid-upload, until release is closed; then it
// fails the request.
type stallingReader struct {
	r       io.Reader
	stallAt int64
	read    int64
	once    sync.Once
	stalled chan struct{}
	release chan struct{}
}

func newStallingReader(r io.Reader, stallAt int64) *stallingReader {
	return &stallingReader{r: r, stallAt: stallAt, stalled: make(chan struct{}), release: make(chan struct{})}
}

var errClientGaveUp = errors.New("client gave up")

func (s *stallingReader) Read(p []byte) (int, error) {
	if s.read >= s.stallAt {
		s.once.Do(func() { close(s.stalled) })
		<-s.release
		return 0, errClientGaveUp
	}
	if rest := s.stallAt - s.read; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := s.r.Read(p)
	s.read += int64(n)
	return n, err
}
