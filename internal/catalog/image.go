package catalog

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// MissingLabelError is a catalog image without the configs label.
type MissingLabelError struct{ Image string }

func (e *MissingLabelError) Error() string {
	return fmt.Sprintf("image %s has no label %s, so it is not a file-based operator catalog (or its FBC folder is unknown); check the catalog reference, or rebuild it with opm, which sets the label",
		e.Image, ConfigsLabel)
}

// ConfigsDir returns the FBC folder the image's label names, as a path
// inside the image's file system without a leading slash ("configs").
func ConfigsDir(name string, img v1.Image) (string, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return "", fmt.Errorf("read config of %s: %w", name, err)
	}
	label := cf.Config.Labels[ConfigsLabel]
	if label == "" {
		return "", &MissingLabelError{Image: name}
	}
	dir := strings.Trim(path.Clean("/"+label), "/")
	if dir == "" {
		return "", fmt.Errorf("image %s: label %s is %q, which is the root folder; it must name the FBC folder, like /configs", name, ConfigsLabel, label)
	}
	return dir, nil
}

// ReadImage reads the FBC of a catalog image. name is the image's reference,
// for messages.
func ReadImage(ctx context.Context, name string, img v1.Image, opts ...ReadOption) (*Catalog, error) {
	dir, err := ConfigsDir(name, img)
	if err != nil {
		return nil, err
	}
	l := newLoader(limits{}, opts)
	err = walkLayers(ctx, img, dir, func(rel string, size int64, r io.Reader) error {
		return l.file(path.Join(dir, rel), size, r)
	})
	if err != nil {
		l.wait()
		return nil, fmt.Errorf("read catalog %s: %w", name, err)
	}
	c, err := l.catalog()
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", name, err)
	}
	if len(c.Packages) == 0 {
		return nil, fmt.Errorf("catalog %s: no olm.package document under /%s, the folder its label %s names; check that the image is an operator catalog", name, dir, ConfigsLabel)
	}
	return c, nil
}

// ExtractImage writes the FBC folder of a catalog image into dst, which must
// not exist yet or be empty: the files as the image's file system holds them
// once its layers are applied.
func ExtractImage(ctx context.Context, name string, img v1.Image, dst string) error {
	dir, err := ConfigsDir(name, img)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(dst)
	if errors.Is(err, os.ErrNotExist) {
		if err = os.MkdirAll(dst, 0o755); err == nil {
			root, err = os.OpenRoot(dst)
		}
	}
	if err != nil {
		return fmt.Errorf("extract catalog %s: %w", name, err)
	}
	defer root.Close()
	var lim limits
	err = walkLayers(ctx, img, dir, func(rel string, size int64, r io.Reader) error {
		if err := lim.take(path.Join(dir, rel), size); err != nil {
			return err
		}
		if d := path.Dir(rel); d != "." {
			if err := root.MkdirAll(filepath.FromSlash(d), 0o755); err != nil {
				return err
			}
		}
		f, err := root.OpenFile(filepath.FromSlash(rel), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, io.LimitReader(r, size)); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
	if err != nil {
		return fmt.Errorf("extract catalog %s: %w", name, err)
	}
	return nil
}

// walkLayers calls fn for every regular file under dir as the image's
// merged file system has it, with its path relative to dir and the size
// its tar header declares. It reads the
// layers top-down, one tar stream at a time, so memory holds one file and
// the set of paths upper layers already decided, never a whole layer: a
// path an upper layer wrote, deleted (.wh.<name>) or hid (.wh..wh..opq in a
// folder) is skipped in the layers below.
func walkLayers(ctx context.Context, img v1.Image, dir string, fn func(rel string, size int64, r io.Reader) error) error {
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("list layers: %w", err)
	}
	var w whiteouts
	for i := len(layers) - 1; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := w.layer(layers[i], dir, fn); err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
	}
	return nil
}

// whiteouts is what the layers read so far hide from the layers below.
type whiteouts struct {
	gone   map[string]bool // the path and everything under it
	opaque map[string]bool // everything under the folder, not the folder
	dirs   map[string]bool // folders: a lower layer's file there is hidden
}

func (w *whiteouts) hidden(p string) bool {
	if w.opaque["."] {
		return true
	}
	for q := p; q != "."; q = path.Dir(q) {
		if w.gone[q] || (q != p && w.opaque[q]) {
			return true
		}
	}
	return false
}

// relevant says whether p is dir, above it or under it: nothing else in a
// layer matters to the catalog.
func relevant(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/") || strings.HasPrefix(dir, p+"/")
}

func (w *whiteouts) layer(l v1.Layer, dir string, fn func(rel string, size int64, r io.Reader) error) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	// What this layer hides applies to the layers below only.
	gone, opaque, dirs := map[string]bool{}, map[string]bool{}, map[string]bool{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		p := path.Clean("/" + hdr.Name)[1:]
		if p == "" {
			continue
		}
		base, parent := path.Base(p), path.Dir(p)
		if strings.HasPrefix(base, ".wh.") {
			switch {
			case base == ".wh..wh..opq":
				if relevant(parent, dir) || parent == "." {
					opaque[parent] = true
				}
			case strings.HasPrefix(base, ".wh..wh."):
				// aufs bookkeeping, not a deletion
			default:
				target := path.Join(parent, strings.TrimPrefix(base, ".wh."))
				if relevant(target, dir) {
					gone[target] = true
				}
			}
			continue
		}
		if !relevant(p, dir) || w.hidden(p) {
			continue
		}
		if hdr.Typeflag == tar.TypeDir {
			dirs[p] = true
			continue
		}
		if w.dirs[p] {
			continue
		}
		// Anything but a folder replaces what lower layers have there.
		gone[p] = true
		if p == dir || !strings.HasPrefix(p, dir+"/") {
			continue
		}
		rel := strings.TrimPrefix(p, dir+"/")
		switch hdr.Typeflag {
		case tar.TypeReg:
			if err := fn(rel, hdr.Size, tr); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s is a link or special file (tar type %q); ferry reads only regular files in a catalog folder", p, hdr.Typeflag)
		}
	}
	if w.gone == nil {
		w.gone, w.opaque, w.dirs = map[string]bool{}, map[string]bool{}, map[string]bool{}
	}
	for p := range dirs {
		w.dirs[p] = true
	}
	for p := range gone {
		w.gone[p] = true
	}
	for p := range opaque {
		w.opaque[p] = true
	}
	return nil
}
