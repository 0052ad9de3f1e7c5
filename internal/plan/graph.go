package plan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ferry-mirror/ferry/internal/release"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// Graph collects the update graph image (mirror.platform.graph): it
// downloads the graph data into Dir and builds the image on BaseImage, read
// from its registry like any source image, with its new blobs in Blobs.
type Graph struct {
	Data      release.GraphDataOptions
	BaseImage string
	Src       Source
	Dir       string
	Blobs     BlobDir
	Log       *slog.Logger
}

// Section implements Collector.
func (*Graph) Section() string { return SectionRelease }

// Tarball is where Collect leaves the graph data.
func (g *Graph) Tarball() string { return filepath.Join(g.Dir, "graph-data.tar.gz") }

// Collect implements Collector.
func (g *Graph) Collect(ctx context.Context) (Collected, error) {
	gen, err := g.build(ctx)
	if err != nil {
		return Collected{}, fmt.Errorf("graph image: %w", err)
	}
	return Collected{Generated: []Generated{gen}}, nil
}

func (g *Graph) build(ctx context.Context) (Generated, error) {
	log := g.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(g.Dir, 0o755); err != nil {
		return Generated{}, err
	}
	gdo := g.Data
	gdo.Log = log
	if err := release.DownloadGraphData(ctx, gdo, g.Tarball()); err != nil {
		return Generated{}, err
	}
	sr, err := splitRef(g.BaseImage)
	if err != nil {
		return Generated{}, fmt.Errorf("--graph-base-image %q is not a valid image reference: %w", g.BaseImage, err)
	}
	host, path, ref := sr.host, sr.path, sr.ref
	reg, err := g.Src.Registry(host)
	if err != nil {
		return Generated{}, err
	}
	m, err := reg.GetManifest(ctx, path, ref)
	if err != nil {
		return Generated{}, fmt.Errorf("base %s: %w (set --graph-base-image to an image the source registries hold)", g.BaseImage, err)
	}
	if m.IsIndex() {
		if m, err = linuxAMD64(ctx, reg, path, m); err != nil {
			return Generated{}, fmt.Errorf("base %s: %w", g.BaseImage, err)
		}
	}
	base, err := RemoteImage(ctx, reg, path, m)
	if err != nil {
		return Generated{}, err
	}
	img, err := release.BuildGraphImage(base, g.Tarball())
	if err != nil {
		return Generated{}, err
	}
	gm, err := StoreImage(img, base, g.Blobs)
	if err != nil {
		return Generated{}, err
	}
	log.Info("graph image built", "base", g.BaseImage, "digest", gm.Digest)
	return Generated{
		Section: SectionRelease, Name: "graph image on " + sr.named.String(), BaseRepo: host + "/" + path,
		Origin:   "generated://" + release.GraphImageRepo + "@" + gm.Digest.String(),
		DestRepo: release.GraphImageRepo, DestTag: "latest", Manifest: gm,
	}, nil
}

// linuxAMD64 picks the linux/amd64 image of a list: the update service
// runs on it.
func linuxAMD64(ctx context.Context, reg Registry, path string, m transfer.Manifest) (transfer.Manifest, error) {
	idx, err := v1.ParseIndexManifest(strings.NewReader(string(m.Data)))
	if err != nil {
		return m, err
	}
	for _, d := range idx.Manifests {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == "amd64" {
			return reg.GetManifest(ctx, path, d.Digest.String())
		}
	}
	return m, errors.New("the manifest list has no linux/amd64 image")
}
