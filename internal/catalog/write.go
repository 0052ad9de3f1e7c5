package catalog

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
)

// File is one file of a written catalog.
type File struct {
	Path string // slash-separated, relative to the catalog folder
	Data []byte
}

// Files lays the catalog out as opm does: <package>/catalog.json per package
// holding its olm.package, channels by name, bundles by name, other schemas
// and deprecations, and catalog.json at the top for documents of no package.
// Files are sorted by path, and the same catalog always gives the same bytes.
func (c *Catalog) Files() ([]File, error) {
	var files []File
	err := c.EachFile(func(f File) error {
		files = append(files, f)
		return nil
	})
	return files, err
}

// EachFile hands fn the catalog's Files one at a time, in order, encoding
// each only when its turn comes: writing a catalog holds one file's bytes
// at a time, not the whole catalog's.
func (c *Catalog) EachFile(fn func(File) error) error {
	layout, err := c.layout()
	if err != nil {
		return err
	}
	for _, lf := range layout {
		data, err := lf.encode()
		if err != nil {
			return err
		}
		if err := fn(File{Path: lf.path, Data: data}); err != nil {
			return err
		}
	}
	return nil
}

// layoutFile is one file of the layout: its path and its documents, in
// the order they are written.
type layoutFile struct {
	path string
	docs []doc
}

func (f layoutFile) encode() ([]byte, error) {
	var buf bytes.Buffer
	for _, d := range f.docs {
		b, err := d.encode()
		if err != nil {
			return nil, fmt.Errorf("%s: encode document from %s: %w", f.path, d.Source, err)
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// layout says which documents go to which file, sorted by path, without
// encoding any.
func (c *Catalog) layout() ([]layoutFile, error) {
	type pkgDocs struct{ pkgs, chans, bundles, others, deps []doc }
	byPkg := map[string]*pkgDocs{}
	get := func(name string) (*pkgDocs, error) {
		if name == "" || name == "." || name == ".." || path.Base(name) != name {
			return nil, fmt.Errorf("package name %q cannot be a folder name; it must be one path element", name)
		}
		d := byPkg[name]
		if d == nil {
			d = &pkgDocs{}
			byPkg[name] = d
		}
		return d, nil
	}
	var global []doc
	for _, p := range c.Packages {
		d, err := get(p.Name)
		if err != nil {
			return nil, err
		}
		d.pkgs = append(d.pkgs, p.doc)
	}
	chans := append([]*Channel(nil), c.Channels...)
	sort.SliceStable(chans, func(i, j int) bool { return chans[i].Name < chans[j].Name })
	for _, ch := range chans {
		d, err := get(ch.Package)
		if err != nil {
			return nil, err
		}
		d.chans = append(d.chans, ch.doc)
	}
	bundles := append([]*Bundle(nil), c.Bundles...)
	sort.SliceStable(bundles, func(i, j int) bool { return bundles[i].Name < bundles[j].Name })
	for _, b := range bundles {
		d, err := get(b.Package)
		if err != nil {
			return nil, err
		}
		d.bundles = append(d.bundles, b.doc)
	}
	others := append([]*Meta(nil), c.Others...)
	sort.SliceStable(others, func(i, j int) bool {
		if others[i].Schema != others[j].Schema {
			return others[i].Schema < others[j].Schema
		}
		return others[i].Name < others[j].Name
	})
	for _, m := range others {
		if m.Package == "" {
			global = append(global, m.doc)
			continue
		}
		d, err := get(m.Package)
		if err != nil {
			return nil, err
		}
		d.others = append(d.others, m.doc)
	}
	for _, dep := range c.Deprecations {
		d, err := get(dep.Package)
		if err != nil {
			return nil, err
		}
		d.deps = append(d.deps, dep.doc)
	}

	var files []layoutFile
	for _, name := range sortedKeys(byPkg) {
		d := byPkg[name]
		docs := slices.Concat(d.pkgs, d.chans, d.bundles, d.others, d.deps)
		files = append(files, layoutFile{path: name + "/catalog.json", docs: docs})
	}
	if len(global) > 0 {
		files = append(files, layoutFile{path: "catalog.json", docs: global})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].path < files[j].path })
	return files, nil
}

// WriteDir writes the catalog's Files under dir, creating it.
func (c *Catalog) WriteDir(dir string) error {
	return c.EachFile(func(f File) error {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("write catalog: %w", err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return fmt.Errorf("write catalog: %w", err)
		}
		return nil
	})
}
