package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

func blobFile(s *testenv.Server, h v1.Hash) string {
	return filepath.Join(s.DataDir, "blobs", h.Algorithm, h.Hex[:2], h.Hex)
}

// imageWith is a random one-layer image plus the given layers.
func imageWith(t *testing.T, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := random.Image(32<<10, 1)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.AppendLayers(img, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// blobsOf lists an image's config and layer digests.
func blobsOf(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	hs := []v1.Hash{m.Config.Digest}
	for _, l := range m.Layers {
		hs = append(hs, l.Digest)
	}
	return hs
}

// TestGarbageCollection: after an image is deleted with crane, `ferry gc`
// (run while serve runs) frees exactly its own blobs: a layer another
// image shares stays, that image still validates, and the deleted image
// can be pushed again.
func TestGarbageCollection(t *testing.T) {
	s := testenv.StartFerry(t, testenv.FerryOptions{})
	home := t.TempDir()
	shared, err := random.Layer(64<<10, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	a, b := imageWith(t, shared), imageWith(t, shared)
	pushImage(t, s.Host+"/gc/a:1", a)
	pushImage(t, s.Host+"/gc/b:1", b)
	da, _ := a.Digest()
	run(t, home, "crane", "delete", "--insecure", s.Host+"/gc/a@"+da.String())

	out, code := testenv.RunFerry(t, nil, "gc", "--data-dir", s.DataDir, "--grace", "0s")
	if code != 0 || !strings.Contains(out, "deleted 2 blobs") {
		t.Fatalf("ferry gc: exit %d\n%s\nwant 2 blobs deleted: image a's config and own layer", code, out)
	}
	aBlobs, bBlobs := blobsOf(t, a), blobsOf(t, b)
	sharedDigest, _ := shared.Digest()
	for _, h := range aBlobs {
		_, err := os.Stat(blobFile(s, h))
		if h == sharedDigest && err != nil {
			t.Errorf("shared layer %s deleted: %v", h, err)
		}
		if h != sharedDigest && !os.IsNotExist(err) {
			t.Errorf("blob %s of the deleted image is still on disk (%v)", h, err)
		}
	}
	for _, h := range bBlobs {
		if _, err := os.Stat(blobFile(s, h)); err != nil {
			t.Errorf("blob %s of the kept image: %v", h, err)
		}
	}
	run(t, home, "crane", "validate", "--insecure", "--remote", s.Host+"/gc/b:1")

	if out, code := testenv.RunFerry(t, nil, "gc", "--data-dir", s.DataDir, "--grace", "0s"); code != 0 || !strings.Contains(out, "deleted 0 blobs") {
		t.Errorf("second gc: exit %d\n%s\nwant nothing left to delete", code, out)
	}
	pushImage(t, s.Host+"/gc/a:1", a)
	run(t, home, "crane", "validate", "--insecure", "--remote", s.Host+"/gc/a:1")
}

// TestGarbageCollectionDuringPushes: gc runs while clients push images
// whose layers it is deleting at that moment (garbage of deleted images,
// pushed again). Every push must end with a complete image: a blob is
// either kept because the push linked it first, or the push is told to
// upload it again.
func TestGarbageCollectionDuringPushes(t *testing.T) {
	s := testenv.StartFerry(t, testenv.FerryOptions{})
	home := t.TempDir()
	const n = 8
	imgs := make([]v1.Image, n)
	for i := range imgs {
		imgs[i] = imageWith(t)
		ref := fmt.Sprintf("%s/race/img%d:1", s.Host, i)
		pushImage(t, ref, imgs[i])
		d, _ := imgs[i].Digest()
		run(t, home, "crane", "delete", "--insecure", fmt.Sprintf("%s/race/img%d@%s", s.Host, i, d))
	}
	time.Sleep(3500 * time.Millisecond) // the garbage is now older than --grace

	var wg sync.WaitGroup
	for i := range imgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pushImage(t, fmt.Sprintf("%s/race2/img%d:1", s.Host, i), imgs[i])
		}()
	}
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, code := testenv.RunFerry(t, nil, "gc", "--data-dir", s.DataDir, "--grace", "3s"); code != 0 {
				t.Errorf("ferry gc during pushes: exit %d\n%s", code, out)
			}
		}()
	}
	wg.Wait()
	for i := range imgs {
		run(t, home, "crane", "validate", "--insecure", "--remote", fmt.Sprintf("%s/race2/img%d:1", s.Host, i))
	}
	// Once the pushes are done, gc finds everything in use.
	if out, code := testenv.RunFerry(t, nil, "gc", "--data-dir", s.DataDir, "--grace", "0s"); code != 0 {
		t.Fatalf("final gc: exit %d\n%s", code, out)
	}
	for i := range imgs {
		run(t, home, "crane", "validate", "--insecure", "--remote", fmt.Sprintf("%s/race2/img%d:1", s.Host, i))
	}
}
