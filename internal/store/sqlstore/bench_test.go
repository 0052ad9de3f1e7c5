package sqlstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/store"
	"github.com/ferry-mirror/ferry/internal/store/sqlstore"
	"github.com/ferry-mirror/ferry/internal/testenv"
)

// BenchmarkPushAndPull measures what the registry asks of the metadata
// store for one image of three blobs: the pushes' links and manifest, then
// a pull's tag lookup and blob checks.
func BenchmarkPushAndPull(b *testing.B) {
	ctx := context.Background()
	b.Run("sqlite", func(b *testing.B) {
		s, err := sqlstore.OpenSQLite(ctx, filepath.Join(b.TempDir(), "meta.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		benchPushAndPull(b, s)
	})
	b.Run("postgres", func(b *testing.B) {
		s, err := sqlstore.OpenPostgres(ctx, testenv.StartPostgres(b).NewDatabase(b))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		benchPushAndPull(b, s)
	})
}

func benchPushAndPull(b *testing.B, s store.MetadataStore) {
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		m := &store.Manifest{MediaType: "application/vnd.oci.image.manifest.v1+json", Content: fmt.Appendf(nil, `{"n":%d}`, i)}
		m.Digest = digest.FromBytes(m.Content)
		for j := range 3 {
			d := digest.FromString(fmt.Sprint(i, "/", j))
			if err := s.LinkBlob(ctx, "bench/app", d, 100); err != nil {
				b.Fatal(err)
			}
			m.Blobs = append(m.Blobs, d)
		}
		if err := s.PutManifest(ctx, "bench/app", m, fmt.Sprint("v", i)); err != nil {
			b.Fatal(err)
		}
		if _, err := s.TaggedManifest(ctx, "bench/app", fmt.Sprint("v", i)); err != nil {
			b.Fatal(err)
		}
		for _, d := range m.Blobs {
			if _, err := s.BlobLink(ctx, "bench/app", d); err != nil {
				b.Fatal(err)
			}
		}
	}
}
