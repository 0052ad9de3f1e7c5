package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/store"
	"github.com/ferry-mirror/ferry/internal/store/s3"
	"github.com/ferry-mirror/ferry/internal/store/storetest"
	"github.com/ferry-mirror/ferry/internal/testenv"
)

func newStore(t *testing.T, m *testenv.MinIO) *s3.Store {
	t.Helper()
	o, err := s3.ParseURL(m.BlobStoreURL(testenv.BucketName()))
	if err != nil {
		t.Fatal(err)
	}
	o.AccessKey, o.SecretKey = m.AccessKey, m.SecretKey
	s, err := s3.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSuite(t *testing.T) {
	m := testenv.StartMinIO(t)
	storetest.BlobStore(t, func(t *testing.T) store.BlobStore { return newStore(t, m) })
}

// TestLargeChunksComposeServerSide writes a blob in chunks big enough to be
// S3 parts (joined server-side) and in small ones (copied through), and
// reads both back whole and by range.
func TestLargeChunksComposeServerSide(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, testenv.StartMinIO(t))
	for name, sizes := range map[string][]int{
		"big":   {6 << 20, 6 << 20, 100},
		"small": {1000, 20 << 20, 7},
	} {
		t.Run(name, func(t *testing.T) {
			var data []byte
			var off int64
			for _, n := range sizes {
				b := make([]byte, n)
				rand.Read(b)
				w, err := s.WriteUpload(ctx, name, off, bytes.NewReader(b))
				if err != nil || w != int64(n) {
					t.Fatalf("WriteUpload at %d: %d, %v", off, w, err)
				}
				off += w
				data = append(data, b...)
			}
			d := digest.FromBytes(data)
			if err := s.CommitUpload(ctx, name, d); err != nil {
				t.Fatal(err)
			}
			b, err := s.Open(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if b.Size != int64(len(data)) {
				t.Fatalf("size %d, want %d", b.Size, len(data))
			}
			if got, err := digest.FromReader(b); err != nil || got != d {
				t.Fatalf("read back %s (%v), want %s", got, err, d)
			}
			at := int64(len(data) - 50)
			if _, err := b.Seek(at, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			tail, _ := io.ReadAll(b)
			if !bytes.Equal(tail, data[at:]) {
				t.Errorf("range read after seek differs")
			}
		})
	}
}

// TestStrayChunkAtTheEnd: a chunk written but never recorded (the replica
// died before AdvanceUpload), then the upload closed with an empty PUT at
// the recorded offset: the blob is the recorded bytes only.
func TestStrayChunkAtTheEnd(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, testenv.StartMinIO(t))
	good := []byte("recorded bytes")
	if _, err := s.WriteUpload(ctx, "u", 0, bytes.NewReader(good)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteUpload(ctx, "u", int64(len(good)), bytes.NewReader([]byte("stray"))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteUpload(ctx, "u", int64(len(good)), bytes.NewReader(nil)); err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(good)
	if err := s.CommitUpload(ctx, "u", d); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Stat(ctx, d); err != nil || n != int64(len(good)) {
		t.Errorf("Stat = %d, %v; want %d", n, err, len(good))
	}
}

// TestCopyThroughChecksBytes: when CommitUpload copies small chunks
// through itself it checks their digest, and stores nothing under a digest
// the bytes do not have. (Server-side joins rely on the registry's check.)
func TestCopyThroughChecksBytes(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, testenv.StartMinIO(t))
	if _, err := s.WriteUpload(ctx, "u", 0, bytes.NewReader([]byte("act"))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteUpload(ctx, "u", 3, bytes.NewReader([]byte("ual"))); err != nil {
		t.Fatal(err)
	}
	d := digest.FromString("claimed")
	if err := s.CommitUpload(ctx, "u", d); err == nil {
		t.Fatal("CommitUpload stored bytes under a digest they do not have")
	}
	if _, err := s.Stat(ctx, d); err == nil {
		t.Error("a blob with the wrong content is visible")
	}
	good := digest.FromString("actual")
	if err := s.CommitUpload(ctx, "u", good); err != nil {
		t.Fatalf("commit with the right digest after a refused one: %v", err)
	}
	if n, err := s.Stat(ctx, good); err != nil || n != 6 {
		t.Errorf("Stat = %d, %v", n, err)
	}
}
