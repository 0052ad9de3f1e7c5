package fs_test

import (
	"testing"

	"github.com/ferry-mirror/ferry/internal/store"
	"github.com/ferry-mirror/ferry/internal/store/fs"
	"github.com/ferry-mirror/ferry/internal/store/storetest"
)

func TestSuite(t *testing.T) {
	storetest.BlobStore(t, func(t *testing.T) store.BlobStore {
		s, err := fs.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
