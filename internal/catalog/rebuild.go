package catalog

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// servingCache is where catalog images built by opm keep the serving cache
// that `opm serve --cache-dir` loads at start.
const servingCache = "tmp/cache"

// Rebuild returns img serving c instead of its own FBC: the original layers
// plus one layer that hides the old configs folder (an opaque whiteout),
// removes the serving cache /tmp/cache, and holds c's files. Labels are kept.
//
// The cache: opm serve, given --cache-dir and no --cache-enforce-integrity,
// enforces the cache's integrity and exits when the cache does not match the
// configs ("cache requires rebuild") or is missing; that is the catalog pod
// crash a stale cache causes. opm cannot run here to build a fresh cache, so
// the cache is removed and --cache-dir (with --cache-enforce-integrity) is
// dropped from ENTRYPOINT and CMD: opm serve then builds its cache in a
// temporary folder at start, which every opm version that has `serve` does.
// Passing --cache-enforce-integrity=false instead would crash opm versions
// older than that flag. oc-mirror v2 makes the same choice (it sets CMD to
// "serve /configs").
//
// The layer has fixed timestamps, sorted entries and fixed compression, and
// the config keeps the original's dates, so the same image and catalog give
// the same digest: a rerun pushes nothing new. The manifest keeps the
// original's media types (Docker v2-2 or OCI).
func Rebuild(name string, img v1.Image, c *Catalog) (v1.Image, error) {
	return rebuild(name, img, c, map[string]tarball.Opener{})
}

// rebuild is Rebuild with the layers already built, by configs folder: the
// images of a multi-arch catalog share one.
func rebuild(name string, img v1.Image, c *Catalog, layers map[string]tarball.Opener) (v1.Image, error) {
	dir, err := ConfigsDir(name, img)
	if err != nil {
		return nil, err
	}
	if dir == servingCache || strings.HasPrefix(dir, servingCache+"/") {
		return nil, fmt.Errorf("image %s: label %s names %s, inside the serving cache ferry removes", name, ConfigsLabel, dir)
	}
	opener := layers[dir]
	if opener == nil {
		if opener, err = configsLayer(dir, c); err != nil {
			return nil, fmt.Errorf("rebuild %s: %w", name, err)
		}
		layers[dir] = opener
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, fmt.Errorf("rebuild %s: %w", name, err)
	}
	layerType := types.OCILayer
	if mt == types.DockerManifestSchema2 {
		layerType = types.DockerLayer
	}
	layer, err := tarball.LayerFromOpener(opener, tarball.WithMediaType(layerType))
	if err != nil {
		return nil, fmt.Errorf("rebuild %s: %w", name, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("rebuild %s: %w", name, err)
	}
	out, err := mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: layerType,
		History: v1.History{
			Created:   cf.Created,
			CreatedBy: "ferry: filtered catalog in /" + dir + ", serving cache /" + servingCache + " removed",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("rebuild %s: %w", name, err)
	}
	cfg := *cf.Config.DeepCopy()
	cfg.Entrypoint = dropCacheFlags(cfg.Entrypoint)
	cfg.Cmd = dropCacheFlags(cfg.Cmd)
	out, err = mutate.Config(out, cfg)
	if err != nil {
		return nil, fmt.Errorf("rebuild %s: %w", name, err)
	}
	return out, nil
}

// RebuildIndex rebuilds every image of a multi-arch catalog with Rebuild and
// returns an index of the same media type, platforms and annotations.
// Entries that are not images of a platform (build attestations, marked
// unknown/unknown) describe the original images, so they are left out.
func RebuildIndex(name string, idx v1.ImageIndex, c *Catalog) (v1.ImageIndex, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("rebuild %s: %w", name, err)
	}
	var adds []mutate.IndexAddendum
	layers := map[string]tarball.Opener{}
	for _, desc := range im.Manifests {
		if !desc.MediaType.IsImage() || (desc.Platform != nil && desc.Platform.OS == "unknown") {
			continue
		}
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("rebuild %s: %w", name, err)
		}
		out, err := rebuild(name+"@"+desc.Digest.String(), img, c, layers)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.IndexAddendum{Add: out, Descriptor: v1.Descriptor{
			MediaType:   desc.MediaType,
			Platform:    desc.Platform,
			Annotations: desc.Annotations,
		}})
	}
	if len(adds) == 0 {
		return nil, fmt.Errorf("rebuild %s: the index holds no platform image", name)
	}
	var out v1.ImageIndex = mutate.IndexMediaType(empty.Index, im.MediaType)
	out = mutate.AppendManifests(out, adds...)
	if len(im.Annotations) > 0 {
		out = mutate.Annotations(out, im.Annotations).(v1.ImageIndex)
	}
	return out, nil
}

// dropCacheFlags removes --cache-dir and --cache-enforce-integrity, in both
// the "--flag=value" and "--flag value" forms, from an opm command line.
func dropCacheFlags(args []string) []string {
	if args == nil {
		return nil
	}
	out := []string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--cache-dir":
			i++ // and its value
		case strings.HasPrefix(a, "--cache-dir="),
			a == "--cache-enforce-integrity",
			strings.HasPrefix(a, "--cache-enforce-integrity="):
		default:
			out = append(out, a)
		}
	}
	return out
}

// configsLayer writes the gzipped tar of the new layer, byte for byte the
// same for the same catalog, and returns what opens it. Each file is
// encoded when the tar reaches it, into an unlinked temporary file: a large
// filtered catalog takes disk until it is pushed, and one package file of
// memory. If no temporary file can be made, the layer is kept in memory.
func configsLayer(dir string, c *Catalog) (tarball.Opener, error) {
	files, err := c.layout()
	if err != nil {
		return nil, err
	}
	type entry struct {
		hdr  tar.Header
		file *layoutFile // nil: no content
	}
	entries := map[string]entry{}
	epoch := time.Unix(0, 0).UTC()
	addDir := func(p string) {
		entries[p+"/"] = entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: 0o755, ModTime: epoch}}
	}
	addFile := func(p string, f *layoutFile) {
		entries[p] = entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: 0o644, ModTime: epoch}, file: f}
	}
	addDir(dir)
	addFile(dir+"/.wh..wh..opq", nil)
	// No entry for /tmp itself: one would reset its sticky, world-writable mode.
	addFile(path.Join(path.Dir(servingCache), ".wh."+path.Base(servingCache)), nil)
	for i := range files {
		p := path.Join(dir, files[i].path)
		for d := path.Dir(p); d != dir; d = path.Dir(d) {
			addDir(d)
		}
		addFile(p, &files[i])
	}
	names := sortedKeys(entries)

	out := newLayerFile()
	bw := bufio.NewWriterSize(out.writer(), 1<<20)
	zw, err := gzip.NewWriterLevel(bw, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, n := range names {
		e := entries[n]
		var data []byte
		if e.file != nil {
			if data, err = e.file.encode(); err != nil {
				return nil, err
			}
		}
		e.hdr.Size = int64(len(data))
		e.hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, fmt.Errorf("write the catalog layer: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("write the catalog layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("write the catalog layer: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("write the catalog layer: %w", err)
	}
	return out.open, nil
}

// layerFile is a layer's bytes in an unlinked temporary file (no leftover
// on a crash), closed when the last layer reading it is collected; or in
// memory when no temporary file can be made.
type layerFile struct {
	f   *os.File
	n   int64
	mem bytes.Buffer
}

func newLayerFile() *layerFile {
	l := &layerFile{}
	f, err := os.CreateTemp("", "ferry-catalog-layer-*")
	if err != nil {
		return l
	}
	os.Remove(f.Name())
	l.f = f
	runtime.AddCleanup(l, func(f *os.File) { f.Close() }, f)
	return l
}

func (l *layerFile) writer() io.Writer {
	if l.f == nil {
		return &l.mem
	}
	return l
}

func (l *layerFile) Write(p []byte) (int, error) {
	n, err := l.f.WriteAt(p, l.n)
	l.n += int64(n)
	return n, err
}

func (l *layerFile) open() (io.ReadCloser, error) {
	if l.f == nil {
		return io.NopCloser(bytes.NewReader(l.mem.Bytes())), nil
	}
	return io.NopCloser(io.NewSectionReader(l.f, 0, l.n)), nil
}
