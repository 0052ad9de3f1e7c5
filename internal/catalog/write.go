package catalog

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
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

	var files []File
	for _, name := range sortedKeys(byPkg) {
		d := byPkg[name]
		data, err := encodeAll(d.pkgs, d.chans, d.bundles, d.others, d.deps)
		if err != nil {
			return nil, fmt.Errorf("package %s: %w", name, err)
		}
		files = append(files, File{Path: name + "/catalog.json", Data: data})
	}
	if len(global) > 0 {
		data, err := encodeAll(global)
		if err != nil {
			return nil, err
		}
		files = append(files, File{Path: "catalog.json", Data: data})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

func encodeAll(groups ...[]doc) ([]byte, error) {
	var buf bytes.Buffer
	for _, g := range groups {
		for _, d := range g {
			b, err := d.encode()
			if err != nil {
				return nil, fmt.Errorf("encode document from %s: %w", d.Source, err)
			}
			buf.Write(b)
		}
	}
	return buf.Bytes(), nil
}

// WriteDir writes the catalog's Files under dir, creating it.
func (c *Catalog) WriteDir(dir string) error {
	files, err := c.Files()
	if err != nil {
		return err
	}
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("write catalog: %w", err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return fmt.Errorf("write catalog: %w", err)
		}
	}
	return nil
}
