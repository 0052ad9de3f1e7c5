package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/store"
	"github.com/ferry-mirror/ferry/internal/store/sqlstore"
	"github.com/ferry-mirror/ferry/internal/store/storetest"
	"github.com/ferry-mirror/ferry/internal/testenv"
)

// engine makes empty databases and opens stores on them.
type engine struct {
	newDB func(t *testing.T) string
	open  func(ctx context.Context, db string) (*sqlstore.Store, error)
}

func sqlite() engine {
	return engine{
		newDB: func(t *testing.T) string { return filepath.Join(t.TempDir(), "meta.db") },
		open:  sqlstore.OpenSQLite,
	}
}

func postgres(t *testing.T) engine {
	pg := testenv.StartPostgres(t)
	return engine{newDB: func(t *testing.T) string { return pg.NewDatabase(t) }, open: sqlstore.OpenPostgres}
}

// TestSQLite and TestPostgres run the same tests on both engines; the
// PostgreSQL server is started once for all of them.
func TestSQLite(t *testing.T) { testEngine(t, sqlite()) }
func TestPostgres(t *testing.T) {
	e := postgres(t)
	testEngine(t, e)
	// pgxpool's pool_* parameters were accepted in --metadata URLs before
	// the store moved to database/sql; they still are, and they apply.
	t.Run("PoolParameters", func(t *testing.T) {
		ctx := context.Background()
		s, err := sqlstore.OpenPostgres(ctx, e.newDB(t)+"&pool_max_conns=1")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.LinkBlob(ctx, "app", digest.FromString("blob"), 4); err != nil {
			t.Fatal(err)
		}
		if got := sqlstore.MaxOpenConns(s); got != 1 {
			t.Errorf("pool size with pool_max_conns=1: %d", got)
		}
	})
}

func testEngine(t *testing.T, e engine) {
	// open opens a store on db that closes with the test.
	open := func(t *testing.T, db string) *sqlstore.Store {
		s, err := e.open(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	t.Run("MetadataSuite", func(t *testing.T) {
		storetest.MetadataStore(t, func(t *testing.T) store.MetadataStore { return open(t, e.newDB(t)) })
	})
	t.Run("AuthSuite", func(t *testing.T) {
		storetest.AuthStore(t, func(t *testing.T) (store.AuthStore, store.AuthStore) {
			db := e.newDB(t)
			return open(t, db), open(t, db)
		})
	})
	t.Run("Reopen", func(t *testing.T) { testReopen(t, e) })
	t.Run("OpenTogether", func(t *testing.T) { testOpenTogether(t, e) })
	t.Run("UploadRace", func(t *testing.T) {
		db := e.newDB(t)
		testUploadRace(t, open(t, db), open(t, db))
	})
	t.Run("LongLists", func(t *testing.T) { testLongLists(t, open(t, e.newDB(t))) })
	t.Run("BlobNeeded", func(t *testing.T) { testBlobNeeded(t, open(t, e.newDB(t))) })
	t.Run("LinkRacesClaim", func(t *testing.T) {
		db := e.newDB(t)
		testLinkRacesClaim(t, open(t, db), open(t, db))
	})
}

// testLongLists: an image of more blobs than one statement binds (a
// release's worth of layers in one artifact) is pushed, looked up and
// deleted whole.
func testLongLists(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	var blobs, odd []digest.Digest
	for i := range 1234 {
		d := digest.FromString(fmt.Sprint("layer ", i))
		blobs = append(blobs, d)
		if i%2 == 1 {
			odd = append(odd, d)
			continue
		}
		if err := s.LinkBlob(ctx, "big", d, 1); err != nil {
			t.Fatal(err)
		}
	}
	missing, err := s.MissingBlobs(ctx, "big", blobs)
	if err != nil || !reflect.DeepEqual(missing, odd) {
		t.Fatalf("MissingBlobs of 1234 digests, every other linked: %d missing, %v; want %d", len(missing), err, len(odd))
	}
	m := &store.Manifest{MediaType: "application/vnd.oci.image.manifest.v1+json", Content: []byte(`{"big":true}`), Blobs: blobs}
	m.Digest = digest.FromBytes(m.Content)
	if err := s.PutManifest(ctx, "big", m, "v1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PutManifest with 617 of 1234 blobs unlinked: %v, want ErrNotFound", err)
	}
	for _, d := range odd {
		if err := s.LinkBlob(ctx, "big", d, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutManifest(ctx, "big", m, "v1"); err != nil {
		t.Fatal(err)
	}
	// Every blob is now used by the manifest: gc keeps all the links.
	if n, err := s.SweepLinks(ctx, time.Now().Add(time.Hour)); err != nil || n != 0 {
		t.Errorf("SweepLinks = %d, %v; want 0", n, err)
	}
	if err := s.DeleteManifest(ctx, "big", m.Digest); err != nil {
		t.Fatal(err)
	}
	if n, err := s.SweepLinks(ctx, time.Now().Add(time.Hour)); err != nil || n != len(blobs) {
		t.Errorf("SweepLinks after the manifest's deletion = %d, %v; want %d", n, err, len(blobs))
	}
}

// testBlobNeeded: gc --dry-run's question answers what SweepLinks then
// does: a blob a manifest uses is needed, a young link keeps its blob,
// and an old link no manifest uses does not.
func testBlobNeeded(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	used, unused, other := digest.FromString("used"), digest.FromString("unused"), digest.FromString("other repo")
	for _, l := range []struct {
		repo string
		d    digest.Digest
	}{{"app", used}, {"app", unused}, {"other", other}} {
		if err := s.LinkBlob(ctx, l.repo, l.d, 1); err != nil {
			t.Fatal(err)
		}
	}
	m := &store.Manifest{MediaType: "application/vnd.oci.image.manifest.v1+json", Content: []byte(`{"uses":"used"}`), Blobs: []digest.Digest{used}}
	m.Digest = digest.FromBytes(m.Content)
	if err := s.PutManifest(ctx, "app", m, "v1"); err != nil {
		t.Fatal(err)
	}
	later, earlier := time.Now().Add(time.Hour), time.Now().Add(-time.Hour)
	for _, c := range []struct {
		d      digest.Digest
		before time.Time
		want   bool
	}{{used, later, true}, {unused, later, false}, {unused, earlier, true}, {other, later, false}, {digest.FromString("never linked"), later, false}} {
		if got, err := s.BlobNeeded(ctx, c.d, c.before); err != nil || got != c.want {
			t.Errorf("BlobNeeded(%s, cutoff %v from now) = %v, %v; want %v", c.d, time.Until(c.before).Round(time.Hour), got, err, c.want)
		}
	}
	if n, err := s.SweepLinks(ctx, later); err != nil || n != 2 {
		t.Errorf("SweepLinks = %d, %v; want the 2 links BlobNeeded called unneeded", n, err)
	}
}

// testLinkRacesClaim races, on two stores (a replica pushing, a collector
// in another process), LinkBlob against ClaimDeletion of the same unlinked
// blob, many times: never may both succeed, or gc would delete the bytes
// of a blob the push then believes linked.
func testLinkRacesClaim(t *testing.T, push, gc *sqlstore.Store) {
	ctx := context.Background()
	for i := range 100 {
		d := digest.FromString(fmt.Sprint("blob ", i))
		var linkErr error
		var claimed bool
		var claimErr error
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); linkErr = push.LinkBlob(ctx, "app", d, 1) }()
		go func() { defer wg.Done(); claimed, claimErr = gc.ClaimDeletion(ctx, d) }()
		wg.Wait()
		if claimErr != nil || (linkErr != nil && !errors.Is(linkErr, store.ErrDeleting)) {
			t.Fatalf("blob %d: ClaimDeletion: %v; LinkBlob: %v", i, claimErr, linkErr)
		}
		if claimed && linkErr == nil {
			t.Fatalf("blob %d: both the collector's claim and the push's link succeeded", i)
		}
	}
}

// testReopen checks data survives closing and that migrations are not
// applied twice.
func testReopen(t *testing.T, e engine) {
	ctx := context.Background()
	db := e.newDB(t)
	s, err := e.open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromString("blob")
	if err := s.LinkBlob(ctx, "app", d, 4); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = e.open(ctx, db)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if n, err := s.BlobLink(ctx, "app", d); err != nil || n != 4 {
		t.Errorf("after reopen BlobLink = %d, %v", n, err)
	}
}

// testOpenTogether opens several stores on one empty database at once, as
// replicas of one deployment (or serve and a `ferry user` command) do: the
// migration runs exactly once and every store works.
func testOpenTogether(t *testing.T, e engine) {
	ctx := context.Background()
	db := e.newDB(t)
	const n = 4
	stores := make([]*sqlstore.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = e.open(ctx, db)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	d := digest.FromString("blob")
	if err := stores[0].LinkBlob(ctx, "app", d, 4); err != nil {
		t.Fatal(err)
	}
	for i, s := range stores {
		if size, err := s.BlobLink(ctx, "app", d); err != nil || size != 4 {
			t.Errorf("store %d sees BlobLink = %d, %v", i, size, err)
		}
	}
}

// testUploadRace has two stores (two replicas) advance the same upload
// from the same offset at once: exactly one wins.
func testUploadRace(t *testing.T, a, b *sqlstore.Store) {
	ctx := context.Background()
	if err := a.CreateUpload(ctx, &store.Upload{ID: "u", Repo: "app", Algorithm: digest.SHA256}); err != nil {
		t.Fatal(err)
	}
	for round := int64(0); round < 20; round++ {
		var wg sync.WaitGroup
		results := make([]error, 2)
		for i, s := range []*sqlstore.Store{a, b} {
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

// TestBadPostgresURL: a URL pgx cannot parse is an error naming the URL,
// with the password hidden.
func TestBadPostgresURL(t *testing.T) {
	_, err := sqlstore.OpenPostgres(context.Background(), "postgres://ferry:secret@127.0.0.1:5432/ferry?sslmode=sometimes")
	if err == nil {
		t.Fatal("opened a URL with a bad sslmode")
	}
	if msg := err.Error(); !strings.Contains(msg, "127.0.0.1") || strings.Contains(msg, "secret") {
		t.Errorf("error %q: want the URL named, without its password", msg)
	}
}
