package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/store"
	"github.com/ferry-mirror/ferry/internal/store/sqlite"
	"github.com/ferry-mirror/ferry/internal/store/storetest"
)

func TestSuite(t *testing.T) {
	storetest.MetadataStore(t, func(t *testing.T) store.MetadataStore {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "meta.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestReopen checks data survives closing and that migrations are not
// applied twice.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromString("blob")
	if err := s.LinkBlob(ctx, "app", d, 4); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if n, err := s.BlobLink(ctx, "app", d); err != nil || n != 4 {
		t.Errorf("after reopen BlobLink = %d, %v", n, err)
	}
}

func TestAuthSuite(t *testing.T) {
	storetest.AuthStore(t, func(t *testing.T) (store.AuthStore, store.AuthStore) {
		path := filepath.Join(t.TempDir(), "meta.db")
		var ss [2]store.AuthStore
		for i := range ss {
			s, err := sqlite.Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			ss[i] = s
		}
		return ss[0], ss[1]
	})
}
