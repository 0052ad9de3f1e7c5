package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/store"
	"github.com/ferry-mirror/ferry/internal/store/postgres"
	"github.com/ferry-mirror/ferry/internal/store/storetest"
	"github.com/ferry-mirror/ferry/internal/testenv"
)

func TestSuite(t *testing.T) {
	pg := testenv.StartPostgres(t)
	storetest.MetadataStore(t, func(t *testing.T) store.MetadataStore {
		s, err := postgres.Open(context.Background(), pg.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestAuthSuite(t *testing.T) {
	pg := testenv.StartPostgres(t)
	storetest.AuthStore(t, func(t *testing.T) (store.AuthStore, store.AuthStore) {
		dsn := pg.NewDatabase(t)
		var ss [2]store.AuthStore
		for i := range ss {
			s, err := postgres.Open(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			ss[i] = s
		}
		return ss[0], ss[1]
	})
}

// TestReplicasStartTogether opens several stores on one empty database at
// once, as replicas of one deployment do: the migration runs exactly once
// and every store works.
func TestReplicasStartTogether(t *testing.T) {
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	dsn := pg.NewDatabase(t)
	const n = 4
	stores := make([]*postgres.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = postgres.Open(ctx, dsn)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	d := digest.FromString("blob")
	if err := stores[0].LinkBlob(ctx, "app", d, 4); err != nil {
		t.Fatal(err)
	}
	for i, s := range stores {
		if size, err := s.BlobLink(ctx, "app", d); err != nil || size != 4 {
			t.Errorf("replica %d sees BlobLink = %d, %v", i, size, err)
		}
	}
}

// TestUploadRaceAcrossReplicas has two stores (two replicas) advance the
// same upload from the same offset at once: exactly one wins.
func TestUploadRaceAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	dsn := pg.NewDatabase(t)
	a, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.CreateUpload(ctx, &store.Upload{ID: "u", Repo: "app", Algorithm: digest.SHA256}); err != nil {
		t.Fatal(err)
	}
	for round := int64(0); round < 20; round++ {
		var wg sync.WaitGroup
		results := make([]error, 2)
		for i, s := range []*postgres.Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = s.AdvanceUpload(ctx, &store.Upload{ID: "u", Offset: (round + 1) * 10, Algorithm: digest.SHA256, HashState: []byte{byte(i)}}, round*10)
			}()
		}
		wg.Wait()
		wins := 0
		for _, err := range results {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, store.ErrConflict):
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d writers advanced the upload from the same offset, want exactly 1", round, wins)
		}
	}
	u, err := b.Upload(ctx, "u")
	if err != nil || u.Offset != 200 {
		t.Errorf("upload after 20 rounds: %+v, %v; want offset 200", u, err)
	}
}
