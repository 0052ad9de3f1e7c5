package release

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestReadContentsStopsAtTheLayersItNeeds: a release's base layers are
// hundreds of MiB; once the top layer has settled every file, the lower
// layers are never opened.
func TestReadContentsStopsAtTheLayersItNeeds(t *testing.T) {
	top := gzipLayer(t,
		entry{name: "release-manifests/image-references", body: imageReferences("4.16.3", "etcd")},
		entry{name: "release-manifests/release-metadata", body: releaseMetadata("4.16.3")},
		entry{name: "release-manifests/0000_50_installer_coreos-bootimages.yaml", body: bootImages(nil)})
	lower := &countingLayer{Layer: gzipLayer(t, entry{name: "usr/lib/big", body: strings.Repeat("x", 1<<20)})}
	img := releaseImage(t, "4.16.3", lower, top)
	c, err := ReadContents(img, "rel")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Components) != 1 || lower.opens.Load() != 0 {
		t.Fatalf("components %v; lower layer opened %d times, want 0", componentNames(c), lower.opens.Load())
	}

	// Without the boot images in the top layer, the lower one is searched.
	top = gzipLayer(t, entry{name: "release-manifests/image-references", body: imageReferences("4.16.3", "etcd")})
	if _, err := ReadContents(releaseImage(t, "4.16.3", lower, top), "rel"); err != nil {
		t.Fatal(err)
	}
	if lower.opens.Load() != 1 {
		t.Fatalf("lower layer opened %d times, want 1", lower.opens.Load())
	}
}

// countingLayer counts reads of a layer's content.
type countingLayer struct {
	v1.Layer
	opens atomic.Int64
}

func (l *countingLayer) Uncompressed() (io.ReadCloser, error) {
	l.opens.Add(1)
	return l.Layer.Uncompressed()
}

// BenchmarkSelectShortestPath selects along a graph the size of a real
// channel's (about 400 releases with skip edges).
func BenchmarkSelectShortestPath(b *testing.B) {
	const n = 400
	ch := testChannel{}
	for i := range n {
		ch.versions = append(ch.versions, fmt.Sprintf("4.16.%d", i))
		if i > 0 {
			ch.edges = append(ch.edges, [2]string{fmt.Sprintf("4.16.%d", i-1), fmt.Sprintf("4.16.%d", i)})
		}
		if i >= 7 {
			ch.cond = append(ch.cond, [2]string{fmt.Sprintf("4.16.%d", i-7), fmt.Sprintf("4.16.%d", i)})
		}
	}
	src := OfflineGraphs{{Type: TypeOCP, Channel: "stable-4.16", Arch: AMD64}: graphJSON("stable-4.16", ch, AMD64)}
	chs := []Channel{{Name: "stable-4.16", MinVersion: "4.16.0", MaxVersion: fmt.Sprintf("4.16.%d", n-1), ShortestPath: true}}
	for b.Loop() {
		rs, err := Select(context.Background(), src, chs, AMD64, nil)
		if err != nil || len(rs) < 2 {
			b.Fatal(rs, err)
		}
	}
}
