// Package storetest holds the suites every store backend must pass, as
// distribution's driver testsuites do: a backend's test calls the suite
// with a constructor for fresh, empty stores.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "crypto/sha512" // sha512 digests in the suites
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/store"
)

// BlobStore runs the blob store suite against stores made by newStore.
func BlobStore(t *testing.T, newStore func(t *testing.T) store.BlobStore) {
	ctx := context.Background()

	t.Run("CommitThenRead", func(t *testing.T) {
		s := newStore(t)
		data := randomBytes(t, 1<<20+17)
		d := digest.FromBytes(data)
		writeBlob(t, s, "u1", data, d)
		b, err := s.Open(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if b.Size != int64(len(data)) {
			t.Errorf("size %d, want %d", b.Size, len(data))
		}
		got, err := io.ReadAll(b)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes (err %v), want the %d written", len(got), err, len(data))
		}
		// Seek for ranges.
		if _, err := b.Seek(10, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		part := make([]byte, 5)
		if _, err := io.ReadFull(b, part); err != nil || !bytes.Equal(part, data[10:15]) {
			t.Errorf("range read %x, want %x (err %v)", part, data[10:15], err)
		}
		if n, err := s.Stat(ctx, d); err != nil || n != int64(len(data)) {
			t.Errorf("Stat = %d, %v", n, err)
		}
	})

	t.Run("MissingIsNotFound", func(t *testing.T) {
		s := newStore(t)
		d := digest.FromString("absent")
		if _, err := s.Open(ctx, d); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Open of absent blob: %v, want ErrNotFound", err)
		}
		if _, err := s.Stat(ctx, d); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Stat of absent blob: %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, d); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Delete of absent blob: %v, want ErrNotFound", err)
		}
		if _, err := s.WriteUpload(ctx, "never-started", 5, strings.NewReader("x")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("WriteUpload at offset 5 of an unknown upload: %v, want ErrNotFound", err)
		}
	})

	t.Run("UploadNotVisibleBeforeCommit", func(t *testing.T) {
		s := newStore(t)
		data := []byte("half a blob")
		d := digest.FromBytes(data)
		if _, err := s.WriteUpload(ctx, "u2", 0, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stat(ctx, d); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("an uncommitted upload is visible as a blob: %v", err)
		}
		if err := s.DeleteUpload(ctx, "u2"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteUpload(ctx, "u2"); err != nil {
			t.Errorf("deleting an absent upload: %v", err)
		}
	})

	t.Run("ChunksAndRewrite", func(t *testing.T) {
		s := newStore(t)
		data := randomBytes(t, 3000)
		if _, err := s.WriteUpload(ctx, "u3", 0, bytes.NewReader(data[:1000])); err != nil {
			t.Fatal(err)
		}
		// A chunk that failed after writing (the offset never recorded)
		// leaves stray bytes; writing again at the recorded offset drops them.
		if _, err := s.WriteUpload(ctx, "u3", 1000, bytes.NewReader([]byte("garbage garbage garbage garbage garbage garbage"))); err != nil {
			t.Fatal(err)
		}
		if _, err := s.WriteUpload(ctx, "u3", 1000, bytes.NewReader(data[1000:])); err != nil {
			t.Fatal(err)
		}
		rc, err := s.OpenUpload(ctx, "u3")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, data) {
			t.Fatalf("upload holds %d bytes, not the %d written in order", len(got), len(data))
		}
		d := digest.FromBytes(data)
		if err := s.CommitUpload(ctx, "u3", d); err != nil {
			t.Fatal(err)
		}
		// Committing the same content again (a second upload) is harmless.
		writeBlob(t, s, "u4", data, d)
		if n, err := s.Stat(ctx, d); err != nil || n != 3000 {
			t.Errorf("Stat = %d, %v", n, err)
		}
		if err := s.Delete(ctx, d); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stat(ctx, d); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted blob still there: %v", err)
		}
	})

	t.Run("SHA512", func(t *testing.T) {
		s := newStore(t)
		data := []byte("sha512 content")
		d := digest.SHA512.FromBytes(data)
		writeBlob(t, s, "u5", data, d)
		if n, err := s.Stat(ctx, d); err != nil || n != int64(len(data)) {
			t.Errorf("Stat = %d, %v", n, err)
		}
	})

	t.Run("ListUploads", func(t *testing.T) {
		s := newStore(t)
		before := time.Now().Add(-time.Minute)
		for _, id := range []string{"up-a", "up-b"} {
			if _, err := s.WriteUpload(ctx, id, 0, strings.NewReader("some bytes")); err != nil {
				t.Fatal(err)
			}
		}
		writeBlob(t, s, "committed", []byte("a blob"), digest.FromString("a blob"))
		seen := map[string]bool{}
		err := s.Uploads(ctx, func(id string, written time.Time) error {
			if written.Before(before) || written.After(time.Now().Add(time.Minute)) {
				t.Errorf("upload %s written at %s; want about now", id, written)
			}
			seen[id] = true
			return nil
		})
		if err != nil || len(seen) != 2 || !seen["up-a"] || !seen["up-b"] {
			t.Errorf("Uploads saw %v, %v; want up-a and up-b (a committed upload is no longer one)", seen, err)
		}
		if err := s.DeleteUpload(ctx, "up-a"); err != nil {
			t.Fatal(err)
		}
		seen = map[string]bool{}
		_ = s.Uploads(ctx, func(id string, _ time.Time) error { seen[id] = true; return nil })
		if seen["up-a"] {
			t.Errorf("Uploads lists a deleted upload")
		}
	})

	t.Run("ListBlobs", func(t *testing.T) {
		s := newStore(t)
		a, b := []byte("blob a"), randomBytes(t, 3000)
		writeBlob(t, s, "la", a, digest.FromBytes(a))
		writeBlob(t, s, "lb", b, digest.FromBytes(b))
		if _, err := s.WriteUpload(ctx, "pending", 0, strings.NewReader("not a blob yet")); err != nil {
			t.Fatal(err)
		}
		got := map[digest.Digest]int64{}
		err := s.Blobs(ctx, func(d digest.Digest, size int64, written time.Time) error {
			if time.Since(written) > time.Minute {
				t.Errorf("blob %s written at %s; want about now", d, written)
			}
			got[d] = size
			return nil
		})
		if err != nil || len(got) != 2 || got[digest.FromBytes(a)] != int64(len(a)) || got[digest.FromBytes(b)] != int64(len(b)) {
			t.Errorf("Blobs = %v, %v; want the two committed blobs with their sizes", got, err)
		}
	})

	t.Run("HostileUploadID", func(t *testing.T) {
		s := newStore(t)
		for _, id := range []string{"../escape", "a/b", "", ".hidden"} {
			if _, err := s.WriteUpload(ctx, id, 0, strings.NewReader("x")); err == nil {
				t.Errorf("WriteUpload accepted upload id %q", id)
			}
		}
	})

	t.Run("Ping", func(t *testing.T) {
		if err := newStore(t).Ping(ctx); err != nil {
			t.Error(err)
		}
	})
}

func writeBlob(t *testing.T, s store.BlobStore, id string, data []byte, d digest.Digest) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.WriteUpload(ctx, id, 0, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitUpload(ctx, id, d); err != nil {
		t.Fatal(err)
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}
