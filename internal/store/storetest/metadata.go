package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/store"
)

// MetadataStore runs the metadata store suite against stores made by
// newStore.
func MetadataStore(t *testing.T, newStore func(t *testing.T) store.MetadataStore) {
	ctx := context.Background()
	layer := digest.FromString("layer")
	config := digest.FromString("config")

	t.Run("BlobLinksArePerRepository", func(t *testing.T) {
		s := newStore(t)
		if err := s.LinkBlob(ctx, "a/one", layer, 5); err != nil {
			t.Fatal(err)
		}
		if n, err := s.BlobLink(ctx, "a/one", layer); err != nil || n != 5 {
			t.Errorf("BlobLink = %d, %v", n, err)
		}
		if _, err := s.BlobLink(ctx, "a/two", layer); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("blob readable in a repository it was never linked to: %v", err)
		}
		if n, err := s.AnyBlobLink(ctx, layer); err != nil || n != 5 {
			t.Errorf("AnyBlobLink = %d, %v", n, err)
		}
		// Linking twice is idempotent.
		if err := s.LinkBlob(ctx, "a/one", layer, 5); err != nil {
			t.Fatal(err)
		}
		missing, err := s.MissingBlobs(ctx, "a/one", []digest.Digest{layer, config})
		if err != nil || !reflect.DeepEqual(missing, []digest.Digest{config}) {
			t.Errorf("MissingBlobs = %v, %v; want [%s]", missing, err, config)
		}
		if err := s.UnlinkBlob(ctx, "a/one", layer); err != nil {
			t.Fatal(err)
		}
		if err := s.UnlinkBlob(ctx, "a/one", layer); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second unlink: %v, want ErrNotFound", err)
		}
		if _, err := s.AnyBlobLink(ctx, layer); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("AnyBlobLink after unlink: %v", err)
		}
	})

	t.Run("ManifestsAndTags", func(t *testing.T) {
		s := newStore(t)
		m := manifest(`{"m":1}`, "application/vnd.oci.image.manifest.v1+json")
		m.Blobs = []digest.Digest{config, layer}
		for _, d := range m.Blobs {
			if err := s.LinkBlob(ctx, "app", d, 5); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PutManifest(ctx, "app", m, "v1"); err != nil {
			t.Fatal(err)
		}
		if err := s.PutManifest(ctx, "app", m, "latest"); err != nil {
			t.Fatal(err)
		}
		got, err := s.TaggedManifest(ctx, "app", "v1")
		if err != nil || got.Digest != m.Digest || string(got.Content) != `{"m":1}` || got.MediaType != m.MediaType {
			t.Fatalf("TaggedManifest = %+v, %v", got, err)
		}
		got, err = s.Manifest(ctx, "app", m.Digest)
		if err != nil || string(got.Content) != `{"m":1}` {
			t.Fatalf("Manifest = %+v, %v", got, err)
		}
		if _, err := s.Manifest(ctx, "other", m.Digest); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("manifest visible in another repository: %v", err)
		}
		// Retag to a new manifest.
		m2 := manifest(`{"m":2}`, m.MediaType)
		if err := s.PutManifest(ctx, "app", m2, "latest"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.TaggedManifest(ctx, "app", "latest"); got == nil || got.Digest != m2.Digest {
			t.Errorf("latest not moved to %s: %+v", m2.Digest, got)
		}
		tags, err := s.Tags(ctx, "app", "", 100)
		if err != nil || !reflect.DeepEqual(tags, []string{"latest", "v1"}) {
			t.Errorf("Tags = %v, %v", tags, err)
		}
		if err := s.DeleteTag(ctx, "app", "v1"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteTag(ctx, "app", "v1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleting an absent tag: %v", err)
		}
		if _, err := s.Manifest(ctx, "app", m.Digest); err != nil {
			t.Errorf("deleting a tag deleted its manifest: %v", err)
		}
		if err := s.DeleteManifest(ctx, "app", m2.Digest); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TaggedManifest(ctx, "app", "latest"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("tag of a deleted manifest still resolves: %v", err)
		}
		if err := s.DeleteManifest(ctx, "app", m2.Digest); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleting an absent manifest: %v", err)
		}
		if _, err := s.Tags(ctx, "nope", "", 10); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Tags of an unknown repository: %v", err)
		}
	})

	t.Run("IndexChildrenSurviveDeletes", func(t *testing.T) {
		s := newStore(t)
		child := manifest(`{"child":1}`, "application/vnd.oci.image.manifest.v1+json")
		if err := s.PutManifest(ctx, "idx", child, ""); err != nil {
			t.Fatal(err)
		}
		index := manifest(`{"index":1}`, "application/vnd.oci.image.index.v1+json")
		index.Children = []digest.Digest{child.Digest}
		if err := s.PutManifest(ctx, "idx", index, "multi"); err != nil {
			t.Fatal(err)
		}
		missing, err := s.MissingManifests(ctx, "idx", []digest.Digest{child.Digest, digest.FromString("x")})
		if err != nil || len(missing) != 1 || missing[0] != digest.FromString("x") {
			t.Errorf("MissingManifests = %v, %v", missing, err)
		}
		if err := s.DeleteTag(ctx, "idx", "multi"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteManifest(ctx, "idx", index.Digest); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Manifest(ctx, "idx", child.Digest); err != nil {
			t.Errorf("deleting an index deleted its child: %v", err)
		}
	})

	t.Run("Pagination", func(t *testing.T) {
		s := newStore(t)
		m := manifest(`{}`, "application/vnd.oci.image.manifest.v1+json")
		for i := 0; i < 5; i++ {
			if err := s.PutManifest(ctx, fmt.Sprintf("r%d", i), m, fmt.Sprintf("t%d", i)); err != nil {
				t.Fatal(err)
			}
			if err := s.PutManifest(ctx, "r0", m, fmt.Sprintf("t%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		page, err := s.Tags(ctx, "r0", "t1", 2)
		if err != nil || !reflect.DeepEqual(page, []string{"t2", "t3"}) {
			t.Errorf("Tags after t1, n=2 = %v, %v", page, err)
		}
		repos, err := s.Repositories(ctx, "r2", 10)
		if err != nil || !reflect.DeepEqual(repos, []string{"r3", "r4"}) {
			t.Errorf("Repositories after r2 = %v, %v", repos, err)
		}
		repos, err = s.Repositories(ctx, "", 0)
		if err != nil || len(repos) != 0 {
			t.Errorf("Repositories n=0 = %v, %v", repos, err)
		}
	})

	t.Run("Referrers", func(t *testing.T) {
		s := newStore(t)
		subject := manifest(`{"image":1}`, "application/vnd.oci.image.manifest.v1+json")
		sig := manifest(`{"sig":1}`, "application/vnd.oci.image.manifest.v1+json")
		sig.Subject, sig.ArtifactType = subject.Digest, "application/vnd.example.sig"
		sig.Annotations = map[string]string{"k": "v"}
		sbom := manifest(`{"sbom":1}`, "application/vnd.oci.image.manifest.v1+json")
		sbom.Subject, sbom.ArtifactType = subject.Digest, "application/vnd.example.sbom"
		// Referrers may arrive before their subject.
		for _, m := range []*store.Manifest{sig, sbom} {
			if err := s.PutManifest(ctx, "ref", m, ""); err != nil {
				t.Fatal(err)
			}
		}
		all, err := s.Referrers(ctx, "ref", subject.Digest, "")
		if err != nil || len(all) != 2 {
			t.Fatalf("Referrers = %v, %v", all, err)
		}
		only, err := s.Referrers(ctx, "ref", subject.Digest, "application/vnd.example.sig")
		if err != nil || len(only) != 1 || only[0].Digest != sig.Digest || only[0].Annotations["k"] != "v" ||
			only[0].Size != int64(len(sig.Content)) || only[0].MediaType != sig.MediaType {
			t.Errorf("filtered Referrers = %+v, %v", only, err)
		}
		none, err := s.Referrers(ctx, "ref", digest.FromString("nothing"), "")
		if err != nil || none == nil || len(none) != 0 {
			t.Errorf("Referrers of an unknown subject = %#v, %v; want an empty list", none, err)
		}
	})

	t.Run("Uploads", func(t *testing.T) {
		s := newStore(t)
		u := &store.Upload{ID: "up1", Repo: "app", Algorithm: digest.SHA256, HashState: []byte("s0")}
		if err := s.CreateUpload(ctx, u); err != nil {
			t.Fatal(err)
		}
		u.Offset, u.HashState = 100, []byte("s100")
		if err := s.AdvanceUpload(ctx, u, 0); err != nil {
			t.Fatal(err)
		}
		stale := *u
		stale.Offset = 50
		if err := s.AdvanceUpload(ctx, &stale, 0); !errors.Is(err, store.ErrConflict) {
			t.Errorf("advance from a stale offset: %v, want ErrConflict", err)
		}
		got, err := s.Upload(ctx, "up1")
		if err != nil || got.Offset != 100 || string(got.HashState) != "s100" || got.Repo != "app" || got.Algorithm != digest.SHA256 {
			t.Fatalf("Upload = %+v, %v", got, err)
		}
		if err := s.DeleteUpload(ctx, "up1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Upload(ctx, "up1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted upload: %v", err)
		}
		if err := s.AdvanceUpload(ctx, u, 100); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("advance of a deleted upload: %v, want ErrNotFound", err)
		}
	})

	t.Run("OpenUploadsPerOwner", func(t *testing.T) {
		s := newStore(t)
		for i, owner := range []string{"alice", "alice", "bob", "alice"} {
			u := &store.Upload{ID: fmt.Sprintf("up%d", i), Repo: "app", Algorithm: digest.SHA256, Owner: owner}
			if err := s.CreateUpload(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := s.Upload(ctx, "up2"); err != nil || got.Owner != "bob" {
			t.Fatalf("Upload(up2) = %+v, %v; want owner bob", got, err)
		}
		count := func(owner string, want int) {
			t.Helper()
			if n, err := s.OpenUploads(ctx, owner); err != nil || n != want {
				t.Errorf("OpenUploads(%s) = %d, %v; want %d", owner, n, err, want)
			}
		}
		count("alice", 3)
		count("bob", 1)
		count("carol", 0)
		if err := s.DeleteUpload(ctx, "up0"); err != nil {
			t.Fatal(err)
		}
		count("alice", 2)
	})

	t.Run("StaleUploads", func(t *testing.T) {
		s := newStore(t)
		for _, id := range []string{"old1", "old2"} {
			if err := s.CreateUpload(ctx, &store.Upload{ID: id, Repo: "app", Algorithm: digest.SHA256}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(20 * time.Millisecond)
		cut := time.Now()
		time.Sleep(20 * time.Millisecond)
		fresh := &store.Upload{ID: "fresh", Repo: "app", Algorithm: digest.SHA256}
		if err := s.CreateUpload(ctx, fresh); err != nil {
			t.Fatal(err)
		}
		// Writing to an old session makes it fresh again.
		if err := s.AdvanceUpload(ctx, &store.Upload{ID: "old2", Offset: 10, Algorithm: digest.SHA256}, 0); err != nil {
			t.Fatal(err)
		}
		got, err := s.StaleUploads(ctx, cut, 100)
		if err != nil || len(got) != 1 || got[0] != "old1" {
			t.Errorf("StaleUploads = %v, %v; want [old1]", got, err)
		}
		if got, err := s.StaleUploads(ctx, time.Now().Add(time.Second), 2); err != nil || len(got) != 2 {
			t.Errorf("StaleUploads with n=2 = %v, %v; want 2 ids", got, err)
		}
	})

	t.Run("GarbageCollection", func(t *testing.T) {
		s := newStore(t)
		used, loose, renewed := digest.FromString("used"), digest.FromString("loose"), digest.FromString("renewed")
		for _, d := range []digest.Digest{used, loose, renewed} {
			if err := s.LinkBlob(ctx, "gc/app", d, 4); err != nil {
				t.Fatal(err)
			}
		}
		m := manifest(`{"gc":1}`, "application/vnd.oci.image.manifest.v1+json")
		m.Blobs = []digest.Digest{used, used}
		if err := s.PutManifest(ctx, "gc/app", m, "v1"); err != nil {
			t.Fatal(err)
		}
		bad := manifest(`{"gc":2}`, "application/vnd.oci.image.manifest.v1+json")
		bad.Blobs = []digest.Digest{used, digest.FromString("never linked")}
		if err := s.PutManifest(ctx, "gc/app", bad, "bad"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("manifest with an unlinked blob: %v, want ErrNotFound", err)
		}
		time.Sleep(20 * time.Millisecond)
		cut := time.Now()
		time.Sleep(20 * time.Millisecond)
		// A manifest push renews its blobs' links: deleted again right
		// away, its blob is still too young for a sweep before cut.
		rm := manifest(`{"gc":3}`, "application/vnd.oci.image.manifest.v1+json")
		rm.Blobs = []digest.Digest{renewed}
		if err := s.PutManifest(ctx, "gc/app", rm, ""); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteManifest(ctx, "gc/app", rm.Digest); err != nil {
			t.Fatal(err)
		}
		if n, err := s.SweepLinks(ctx, cut); err != nil || n != 1 {
			t.Errorf("SweepLinks = %d, %v; want 1 (the loose link)", n, err)
		}
		if _, err := s.BlobLink(ctx, "gc/app", loose); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("loose link after the sweep: %v", err)
		}
		for _, d := range []digest.Digest{used, renewed} {
			if _, err := s.BlobLink(ctx, "gc/app", d); err != nil {
				t.Errorf("link %s after the sweep: %v", d, err)
			}
		}
		if ok, err := s.ClaimDeletion(ctx, used); err != nil || ok {
			t.Errorf("ClaimDeletion of a linked blob = %v, %v; want false", ok, err)
		}
		if ok, err := s.ClaimDeletion(ctx, loose); err != nil || !ok {
			t.Fatalf("ClaimDeletion of an unlinked blob = %v, %v; want true", ok, err)
		}
		if ok, err := s.ClaimDeletion(ctx, loose); err != nil || ok {
			t.Errorf("second ClaimDeletion of a claimed blob = %v, %v; want false (one collector deletes it)", ok, err)
		}
		if err := s.LinkBlob(ctx, "gc/other", loose, 4); !errors.Is(err, store.ErrDeleting) {
			t.Errorf("LinkBlob of a blob being deleted: %v, want ErrDeleting", err)
		}
		if err := s.ReleaseDeletion(ctx, loose); err != nil {
			t.Fatal(err)
		}
		if err := s.LinkBlob(ctx, "gc/other", loose, 4); err != nil {
			t.Errorf("LinkBlob after the deletion: %v", err)
		}
	})

	t.Run("ConcurrentWriters", func(t *testing.T) {
		s := newStore(t)
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < 8; j++ {
					m := manifest(fmt.Sprintf(`{"w":%d,"j":%d}`, i, j), "application/vnd.oci.image.manifest.v1+json")
					if err := s.PutManifest(ctx, "busy", m, fmt.Sprintf("w%d-%d", i, j)); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		tags, err := s.Tags(ctx, "busy", "", 1000)
		if err != nil || len(tags) != 64 {
			t.Errorf("%d tags after 64 concurrent pushes (%v)", len(tags), err)
		}
	})

	t.Run("Ping", func(t *testing.T) {
		if err := newStore(t).Ping(ctx); err != nil {
			t.Error(err)
		}
	})

	t.Run("Listing", func(t *testing.T) { listing(t, newStore) })
}

func manifest(content, mediaType string) *store.Manifest {
	return &store.Manifest{Digest: digest.FromString(content), MediaType: mediaType, Content: []byte(content)}
}
