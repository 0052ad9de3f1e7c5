package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/store"
)

// listing checks store.Listing, for stores that implement it.
func listing(t *testing.T, newStore func(t *testing.T) store.MetadataStore) {
	ctx := context.Background()
	s := newStore(t)
	l, ok := s.(store.Listing)
	if !ok {
		t.Skip("the store does not implement store.Listing")
	}
	before := time.Now().Add(-time.Second)
	layer, config := digest.FromString("listing layer"), digest.FromString("listing config")
	for _, d := range []digest.Digest{layer, config} {
		if err := s.LinkBlob(ctx, "app", d, 100); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.LinkBlob(ctx, "empty", layer, 7); err != nil {
		t.Fatal(err)
	}
	tagged := manifest(`{"config":{"digest":"`+config.String()+`"},"layers":[{"digest":"`+layer.String()+`"}],"t":1}`, "application/vnd.oci.image.manifest.v1+json")
	tagged.Blobs = []digest.Digest{config, layer}
	byDigest := manifest(`{"config":{"digest":"`+config.String()+`"},"layers":[{"digest":"`+layer.String()+`"}],"t":2}`, "application/vnd.oci.image.manifest.v1+json")
	byDigest.Blobs = []digest.Digest{config, layer}
	if err := s.PutManifest(ctx, "app", tagged, "v1"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutManifest(ctx, "app", tagged, "v2"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutManifest(ctx, "app", byDigest, ""); err != nil {
		t.Fatal(err)
	}

	infos, err := l.RepositoryInfos(ctx, []string{"app", "nope", "empty"})
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || infos[0].Name != "app" || infos[1].Name != "empty" {
		t.Fatalf("RepositoryInfos = %+v, want app and empty in that order", infos)
	}
	if infos[0].Size != 200 || infos[1].Size != 7 {
		t.Errorf("sizes = %d, %d, want 200 (two blobs of 100) and 7", infos[0].Size, infos[1].Size)
	}
	if infos[0].LastPush.Before(before) || time.Since(infos[0].LastPush) > time.Minute || !infos[1].LastPush.IsZero() {
		t.Errorf("last pushes = %v, %v; want now and never", infos[0].LastPush, infos[1].LastPush)
	}

	tags, err := l.TagInfos(ctx, "app", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 2 || tags[0].Name != "v1" || tags[1].Name != "v2" || tags[0].Digest != tagged.Digest || tags[0].Updated.Before(before) {
		t.Errorf("TagInfos = %+v", tags)
	}
	if tags, err := l.TagInfos(ctx, "app", "v1", 10); err != nil || len(tags) != 1 || tags[0].Name != "v2" {
		t.Errorf("TagInfos after v1 = %+v, %v", tags, err)
	}
	if _, err := l.TagInfos(ctx, "nope", "", 10); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TagInfos of an unknown repository: %v", err)
	}

	untagged, seen, err := l.UntaggedManifests(ctx, "app", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(untagged) != 1 || untagged[0].Digest != byDigest.Digest || untagged[0].Size != int64(len(byDigest.Content)) || untagged[0].Pushed.Before(before) {
		t.Errorf("UntaggedManifests = %+v, want only %s", untagged, byDigest.Digest)
	}
	if seen != "" {
		t.Errorf("UntaggedManifests of every manifest says to continue after %s", seen)
	}
	// A scan of one looks at the first manifest only, and says to
	// continue after it.
	first := min(tagged.Digest, byDigest.Digest)
	if _, seen, err := l.UntaggedManifests(ctx, "app", "", 1); err != nil || seen != first {
		t.Errorf("UntaggedManifests scanning one: looked at %s, %v; want %s", seen, err, first)
	}
	if more, seen, err := l.UntaggedManifests(ctx, "app", max(tagged.Digest, byDigest.Digest), 10); err != nil || len(more) != 0 || seen != "" {
		t.Errorf("UntaggedManifests after the last = %+v, %q, %v", more, seen, err)
	}
}
