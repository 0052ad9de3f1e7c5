package ha

import (
	"net/http"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

type imageAndUnique struct {
	img    v1.Image
	unique string // digest of the layer only this image has
}

// TestGCOnSharedStores: on PostgreSQL and MinIO, an image deleted through
// one replica is collected by `ferry gc` while the replicas serve; a layer
// it shared with another image stays, and that image still verifies
// through every replica.
func TestGCOnSharedStores(t *testing.T) {
	c := startCluster(t, 2)
	a0, a1 := c.replicas[0], c.replicas[1]
	shared, err := random.Layer(256<<10, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	mk := func() *imageAndUnique {
		base, err := random.Image(64<<10, 1)
		if err != nil {
			t.Fatal(err)
		}
		img, err := mutate.AppendLayers(base, shared)
		if err != nil {
			t.Fatal(err)
		}
		ls, _ := base.Layers()
		u, _ := ls[0].Digest()
		return &imageAndUnique{img: img, unique: u.String()}
	}
	a, b := mk(), mk()
	for repo, im := range map[string]*imageAndUnique{"gc/a:1": a, "gc/b:1": b} {
		if err := remote.Write(ref(t, a0, repo), im.img); err != nil {
			t.Fatalf("push %s: %v", repo, err)
		}
	}
	da, _ := a.img.Digest()
	if resp := do(t, http.MethodDelete, a1.URL+"/v2/gc/a/manifests/"+da.String(), nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("delete gc/a through replica 1: %d", resp.StatusCode)
	}
	out, code := testenv.RunFerry(t, c.env, append([]string{"gc", "--grace", "0s"}, c.storeArgs...)...)
	if code != 0 || !strings.Contains(out, "deleted 2 blobs") {
		t.Fatalf("ferry gc on the shared stores: exit %d\n%s\nwant 2 blobs deleted (gc/a's config and own layer)", code, out)
	}
	if resp := do(t, http.MethodHead, a0.URL+"/v2/gc/a/blobs/"+a.unique, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("gc/a's own layer after gc: %d, want 404", resp.StatusCode)
	}
	db, _ := b.img.Digest()
	for _, r := range c.replicas {
		verifyImage(t, r, "gc/b:1", db)
	}
}
