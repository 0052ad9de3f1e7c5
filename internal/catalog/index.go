package catalog

import (
	"fmt"
	"sort"
	"strings"
)

// index finds documents by package and name, and checks the references
// between them that filtering relies on.
type index struct {
	pkgs     map[string]*Package
	channels map[string]map[string]*Channel // package -> channel name
	bundles  map[string]map[string]*Bundle  // package -> bundle name
}

func (c *Catalog) index() (*index, error) {
	ix := &index{
		pkgs:     make(map[string]*Package, len(c.Packages)),
		channels: make(map[string]map[string]*Channel, len(c.Packages)),
		bundles:  make(map[string]map[string]*Bundle, len(c.Packages)),
	}
	for _, p := range c.Packages {
		if q, dup := ix.pkgs[p.Name]; dup {
			return nil, fmt.Errorf("package %s is defined twice, at %s and %s", p.Name, q.Source, p.Source)
		}
		ix.pkgs[p.Name] = p
		ix.channels[p.Name] = map[string]*Channel{}
		ix.bundles[p.Name] = map[string]*Bundle{}
	}
	for _, ch := range c.Channels {
		chans, ok := ix.channels[ch.Package]
		if !ok {
			return nil, fmt.Errorf("channel %s (%s) belongs to package %s, which has no olm.package document", ch.Name, ch.Source, ch.Package)
		}
		if q, dup := chans[ch.Name]; dup {
			return nil, fmt.Errorf("channel %s of package %s is defined twice, at %s and %s", ch.Name, ch.Package, q.Source, ch.Source)
		}
		chans[ch.Name] = ch
	}
	for _, b := range c.Bundles {
		bs, ok := ix.bundles[b.Package]
		if !ok {
			return nil, fmt.Errorf("bundle %s (%s) belongs to package %s, which has no olm.package document", b.Name, b.Source, b.Package)
		}
		if q, dup := bs[b.Name]; dup {
			return nil, fmt.Errorf("bundle %s of package %s is defined twice, at %s and %s", b.Name, b.Package, q.Source, b.Source)
		}
		bs[b.Name] = b
	}
	return ix, nil
}

func (ix *index) packageNames() []string {
	names := make([]string, 0, len(ix.pkgs))
	for n := range ix.pkgs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (ix *index) channelNames(pkg string) []string {
	names := make([]string, 0, len(ix.channels[pkg]))
	for n := range ix.channels[pkg] {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// NotFoundError is a package, channel or bundle a filter names that the
// catalog does not have, with the ones it has.
type NotFoundError struct {
	Kind      string // "package", "channel" or "bundle"
	Name      string
	In        string // "catalog" or "package <name>"
	Available []string
}

func (e *NotFoundError) Error() string {
	avail := strings.Join(e.Available, ", ")
	if avail == "" {
		avail = "none"
	}
	return fmt.Sprintf("%s %q is not in %s; available %ss: %s", e.Kind, e.Name, e.In, e.Kind, avail)
}
