package upload_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/store"
	"github.com/ferry-mirror/ferry/internal/store/fs"
	"github.com/ferry-mirror/ferry/internal/store/sqlstore"
	"github.com/ferry-mirror/ferry/internal/upload"
)

// stores opens the real single-node stores: files and SQLite.
func stores(t *testing.T) (store.BlobStore, store.MetadataStore) {
	t.Helper()
	dir := t.TempDir()
	blobs, err := fs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	meta, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	return blobs, meta
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// readBlob returns blob d's stored bytes.
func readBlob(t *testing.T, blobs store.BlobStore, d digest.Digest) []byte {
	t.Helper()
	b, err := blobs.Open(context.Background(), d)
	if err != nil {
		t.Fatalf("open blob %s: %v", d, err)
	}
	defer b.Close()
	data, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// afterCommit is a blob store that runs hook right after CommitUpload: a
// garbage collector acting at exactly that moment of a commit.
type afterCommit struct {
	store.BlobStore
	hook func(d digest.Digest)
}

func (s afterCommit) CommitUpload(ctx context.Context, id string, d digest.Digest) error {
	err := s.BlobStore.CommitUpload(ctx, id, d)
	if s.hook != nil {
		s.hook(d)
	}
	return err
}

// TestCommitRacesCollector: a commit of bytes the store already holds
// drops the upload; a collector deleting that blob at the same moment must
// leave the repository without a link to missing bytes, and the client
// with an error telling it to upload again, which then works. Both orders
// the collector can take are played deterministically.
func TestCommitRacesCollector(t *testing.T) {
	for _, tc := range []struct {
		name      string
		collector func(ctx context.Context, t *testing.T, blobs store.BlobStore, meta store.MetadataStore, d digest.Digest) (finish func())
	}{
		{"claimed before the link", func(ctx context.Context, t *testing.T, blobs store.BlobStore, meta store.MetadataStore, d digest.Digest) func() {
			if ok, err := meta.ClaimDeletion(ctx, d); err != nil || !ok {
				t.Fatalf("claim %s: %v %v", d, ok, err)
			}
			return func() {
				if err := blobs.Delete(ctx, d); err != nil {
					t.Fatal(err)
				}
				if err := meta.ReleaseDeletion(ctx, d); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"deleted before the link", func(ctx context.Context, t *testing.T, blobs store.BlobStore, meta store.MetadataStore, d digest.Digest) func() {
			if ok, err := meta.ClaimDeletion(ctx, d); err != nil || !ok {
				t.Fatalf("claim %s: %v %v", d, ok, err)
			}
			if err := blobs.Delete(ctx, d); err != nil {
				t.Fatal(err)
			}
			if err := meta.ReleaseDeletion(ctx, d); err != nil {
				t.Fatal(err)
			}
			return func() {}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			inner, meta := stores(t)
			data := randomBytes(t, 10<<10)
			d := digest.FromBytes(data)
			// The blob is stored but linked nowhere: a collector's prey.
			seed := upload.New(inner, meta, 0)
			if err := seed.Put(ctx, "old/app", d, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			if err := meta.UnlinkBlob(ctx, "old/app", d); err != nil {
				t.Fatal(err)
			}
			var finish func()
			blobs := afterCommit{BlobStore: inner}
			blobs.hook = func(d digest.Digest) { finish = tc.collector(ctx, t, inner, meta, d) }
			m := upload.New(blobs, meta, 0)
			s, err := m.Start(ctx, "new/app", "tester")
			if err != nil {
				t.Fatal(err)
			}
			err = s.Commit(ctx, d, bytes.NewReader(data), nil)
			s.Close()
			if !errors.Is(err, upload.ErrGone) {
				t.Fatalf("commit while a collector deletes the blob: %v, want ErrGone", err)
			}
			finish()
			if _, err := meta.BlobLink(ctx, "new/app", d); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("blob linked in new/app after the collector deleted it (%v): a link to missing bytes", err)
			}
			if _, err := inner.Stat(ctx, d); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("the collector did not delete the blob: %v", err)
			}
			// The client uploads again, with no collector about.
			blobs.hook = nil
			m = upload.New(blobs, meta, 0)
			s, err = m.Start(ctx, "new/app", "tester")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Commit(ctx, d, bytes.NewReader(data), nil); err != nil {
				t.Fatalf("upload again after the collector: %v", err)
			}
			if _, err := meta.BlobLink(ctx, "new/app", d); err != nil {
				t.Fatalf("blob not linked after the second upload: %v", err)
			}
			if got := readBlob(t, inner, d); !bytes.Equal(got, data) {
				t.Fatal("blob stored with the wrong bytes")
			}
		})
	}
}

// failOnce is a metadata store whose first DeleteUpload fails: a replica
// that dies after committing the blob and before ending the session.
type failOnce struct {
	store.MetadataStore
	failed bool
}

func (m *failOnce) DeleteUpload(ctx context.Context, id string) error {
	if !m.failed {
		m.failed = true
		return errors.New("replica killed")
	}
	return m.MetadataStore.DeleteUpload(ctx, id)
}

// cutReader gives n bytes of data and then fails, as a connection cut
// mid-request.
type cutReader struct {
	r io.Reader
	n int
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	if len(p) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= n
	return n, err
}

// TestCommitIsSafeToRepeat resends the last PUT of an upload after each
// point where a replica can die: the body is added once, never twice, and
// a resend with other bytes is refused.
func TestCommitIsSafeToRepeat(t *testing.T) {
	ctx := context.Background()
	first, last := randomBytes(t, 3000), randomBytes(t, 532)
	whole := append(append([]byte(nil), first...), last...)
	d := digest.FromBytes(whole)

	open := func(t *testing.T, m *upload.Manager) *upload.Session {
		t.Helper()
		s, err := m.Start(ctx, "r/app", "tester")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Append(ctx, bytes.NewReader(first), &upload.Range{Start: 0, Length: int64(len(first))}); err != nil {
			t.Fatal(err)
		}
		return s
	}
	resume := func(t *testing.T, m *upload.Manager, id string) *upload.Session {
		t.Helper()
		s, err := m.Resume(ctx, "r/app", id)
		if err != nil {
			t.Fatalf("resume %s: %v", id, err)
		}
		return s
	}

	t.Run("cut while the body was written", func(t *testing.T) {
		blobs, meta := stores(t)
		m := upload.New(blobs, meta, 0)
		s := open(t, m)
		id := s.ID()
		if err := s.Commit(ctx, d, &cutReader{r: bytes.NewReader(last), n: 300}, nil); err == nil {
			t.Fatal("a commit whose body was cut succeeded")
		}
		s.Close()
		s = resume(t, m, id)
		defer s.Close()
		if s.Offset() != int64(len(first)) {
			t.Fatalf("the cut body moved the session to %d, want %d", s.Offset(), len(first))
		}
		if err := s.Commit(ctx, d, bytes.NewReader(last), nil); err != nil {
			t.Fatalf("the resent PUT: %v", err)
		}
		if got := readBlob(t, blobs, d); !bytes.Equal(got, whole) {
			t.Fatalf("blob has %d bytes, want %d", len(got), len(whole))
		}
	})

	t.Run("killed after the commit, before the session ended", func(t *testing.T) {
		blobs, inner := stores(t)
		meta := &failOnce{MetadataStore: inner}
		m := upload.New(blobs, meta, 0)
		s := open(t, m)
		id := s.ID()
		if err := s.Commit(ctx, d, bytes.NewReader(last), nil); err == nil {
			t.Fatal("the killed commit reported success")
		}
		s.Close()
		// Other bytes resent on the same session are refused.
		s = resume(t, m, id)
		wrong := randomBytes(t, len(last))
		if err := s.Commit(ctx, d, bytes.NewReader(wrong), nil); !errors.Is(err, upload.ErrUnknown) {
			t.Fatalf("a resend with other bytes: %v, want ErrUnknown", err)
		}
		s.Close()
		s = resume(t, m, id)
		err := s.Commit(ctx, d, bytes.NewReader(last), nil)
		s.Close()
		if err != nil {
			t.Fatalf("the resent PUT: %v", err)
		}
		if _, err := m.Resume(ctx, "r/app", id); !errors.Is(err, upload.ErrUnknown) {
			t.Fatalf("the session is still open after the resent PUT: %v", err)
		}
		if got := readBlob(t, blobs, d); !bytes.Equal(got, whole) {
			t.Fatalf("blob has %d bytes, want %d", len(got), len(whole))
		}
	})

	t.Run("killed after the session ended", func(t *testing.T) {
		blobs, meta := stores(t)
		m := upload.New(blobs, meta, 0)
		s := open(t, m)
		id := s.ID()
		if err := s.Commit(ctx, d, bytes.NewReader(last), nil); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if _, err := m.Resume(ctx, "r/app", id); !errors.Is(err, upload.ErrUnknown) {
			t.Fatalf("resume a finished session: %v, want ErrUnknown", err)
		}
		// The resent PUT carries the last chunk: the blob ends with it.
		if ok, err := m.Recommit(ctx, "r/app", d, bytes.NewReader(last), int64(len(last))); err != nil || !ok {
			t.Fatalf("the last chunk resent: %v %v, want true", ok, err)
		}
		for name, body := range map[string][]byte{"empty": nil, "whole": whole} {
			if ok, err := m.Recommit(ctx, "r/app", d, bytes.NewReader(body), int64(len(body))); err != nil || !ok {
				t.Fatalf("%s body resent: %v %v, want true", name, ok, err)
			}
		}
		if ok, err := m.Recommit(ctx, "r/app", d, bytes.NewReader(whole), -1); err != nil || !ok {
			t.Fatalf("the whole blob resent without a length: %v %v, want true", ok, err)
		}
		other := append([]byte(nil), last...)
		other[100] ^= 1
		for name, body := range map[string][]byte{"other bytes": other, "the first chunk": first, "longer than the blob": append(whole, 0)} {
			if ok, _ := m.Recommit(ctx, "r/app", d, bytes.NewReader(body), int64(len(body))); ok {
				t.Errorf("a resent body of %s was taken for the blob's", name)
			}
		}
		if ok, _ := m.Recommit(ctx, "r/app", d, bytes.NewReader(last), -1); ok {
			t.Error("a body of unknown length that is not the whole blob was accepted")
		}
		if ok, _ := m.Recommit(ctx, "other/app", d, bytes.NewReader(nil), 0); ok {
			t.Error("a blob of another repository was taken as committed")
		}
	})
}
