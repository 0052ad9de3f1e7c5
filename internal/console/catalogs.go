package console

import (
	"context"
	"net/http"
	"path"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/catalog"
	"github.com/ferry-mirror/ferry/internal/store"
)

// catalogFacts is what a catalog image holds, cached by digest.
type catalogFacts struct {
	Packages []catalog.PackageInfo
	Bundles  map[string]bundleFacts // by name
	Entries  map[string][]string    // bundle names by package + "/" + channel
	Err      string
}

// bundleFacts is what the view needs of a bundle; the FBC documents
// themselves (with their olm.bundle.object properties, megabytes in a
// full catalog) are not kept.
type bundleFacts struct {
	Name, Version, Image string
	Related              []string
}

// catalogRef is a catalog image of the mirror.
type catalogRef struct {
	Repo, Tag, Digest string
}

// maybeCatalogRepo picks the repositories worth opening to look for
// catalog images: OLM's and oc-mirror's names (redhat-operator-index,
// certified-operators-index, community-catalog, ...). Reading every
// image's config of a large mirror for one page would be too slow.
func maybeCatalogRepo(name string) bool {
	base := path.Base(name)
	return strings.Contains(base, "index") || strings.Contains(base, "catalog")
}

// findCatalogs lists the catalog images r may pull: tags of candidate
// repositories whose config carries the FBC label.
func (c *Console) findCatalogs(ctx context.Context, r *request) ([]catalogRef, error) {
	names, err := c.allRepos(ctx, func(name string) bool { return maybeCatalogRepo(name) && r.canPull(name) })
	if err != nil {
		return nil, err
	}
	var out []catalogRef
	for _, name := range names {
		tags, err := c.meta.Tags(ctx, name, "", 200)
		if err != nil {
			continue
		}
		for _, t := range tags {
			m, err := c.meta.TaggedManifest(ctx, name, t)
			if err != nil {
				continue
			}
			if c.isCatalog(ctx, name, m) {
				out = append(out, catalogRef{Repo: name, Tag: t, Digest: m.Digest.String()})
			}
		}
	}
	return out, nil
}

// isCatalog reports whether m (or its first platform) is labelled as a
// file-based catalog.
func (c *Console) isCatalog(ctx context.Context, repo string, m *store.Manifest) bool {
	d, err := parseManifest(m)
	if err != nil {
		return false
	}
	if d.isIndex() && len(d.Manifests) > 0 {
		cd, err := digest.Parse(d.Manifests[0].Digest)
		if err != nil {
			return false
		}
		if m, err = c.meta.Manifest(ctx, repo, cd); err != nil {
			return false
		}
		if d, err = parseManifest(m); err != nil {
			return false
		}
	}
	cfg := c.config(ctx, repo, d)
	return cfg != nil && cfg.Config.Labels[catalog.ConfigsLabel] != ""
}

func (c *Console) catalogFacts(ctx context.Context, repo string, m *store.Manifest) *catalogFacts {
	if f := c.catalogs.get(m.Digest); f != nil {
		return f
	}
	f := &catalogFacts{Bundles: map[string]bundleFacts{}, Entries: map[string][]string{}}
	img := m
	d, err := parseManifest(m)
	if err == nil && d.isIndex() && len(d.Manifests) > 0 {
		var cd digest.Digest
		if cd, err = digest.Parse(d.Manifests[0].Digest); err == nil {
			img, err = c.meta.Manifest(ctx, repo, cd)
		}
	}
	var cat *catalog.Catalog
	if err == nil {
		vi, verr := c.v1Image(ctx, repo, img)
		if err = verr; err == nil {
			cat, err = catalog.ReadImage(ctx, repo+"@"+m.Digest.String(), vi)
		}
	}
	if err == nil {
		f.Packages, err = cat.List("")
	}
	if err != nil {
		f.Err = err.Error()
		return f
	}
	for _, b := range cat.Bundles {
		bf := bundleFacts{Name: b.Name, Version: b.Version, Image: b.Image}
		for _, ri := range b.RelatedImages {
			bf.Related = append(bf.Related, ri.Image)
		}
		f.Bundles[b.Name] = bf
	}
	for _, ch := range cat.Channels {
		for _, e := range ch.Entries {
			f.Entries[ch.Package+"/"+ch.Name] = append(f.Entries[ch.Package+"/"+ch.Name], e.Name)
		}
	}
	c.catalogs.put(m.Digest, f)
	return f
}

type catalogsPage struct {
	Catalogs []catalogRef
	Selected *catalogRef
	Err      string
	Packages []packageRow
}

type packageRow struct {
	Name, DefaultChannel string
	Channels             []channelRow
}

// Complete reports whether the bundle and every related image are in the mirror.
func (b *bundleRow) Complete() bool { return b.ImagePresent && len(b.MissingRelated) == 0 }

type channelRow struct {
	Name, Head, HeadVersion string
	Versions                []string
	Err                     string
	HeadBundle              *bundleRow
	Bundles                 []*bundleRow // every bundle of the channel, by version
}

type bundleRow struct {
	Name           string
	Version        string
	Image          string
	ImagePresent   bool
	Related        int
	MissingRelated []string
}

func (c *Console) catalogsView(w http.ResponseWriter, r *request) {
	ctx := r.Context()
	cats, err := c.findCatalogs(ctx, r)
	if err != nil {
		c.internal(w, r, "finding catalogs", err)
		return
	}
	p := catalogsPage{Catalogs: cats}
	q := r.URL.Query()
	if repo, tag := q.Get("repo"), q.Get("tag"); repo != "" {
		for i := range cats {
			if cats[i].Repo == repo && cats[i].Tag == tag {
				p.Selected = &cats[i]
			}
		}
		if p.Selected == nil {
			c.fail(w, r, http.StatusNotFound, "No catalog "+repo+":"+tag+" that you may pull.")
			return
		}
	} else if len(cats) == 1 {
		p.Selected = &cats[0]
	}
	if p.Selected != nil {
		m, err := c.meta.TaggedManifest(ctx, p.Selected.Repo, p.Selected.Tag)
		if err != nil {
			c.internal(w, r, "reading the catalog", err)
			return
		}
		f := c.catalogFacts(ctx, p.Selected.Repo, m)
		p.Err = f.Err
		for _, pkg := range f.Packages {
			row := packageRow{Name: pkg.Name, DefaultChannel: pkg.DefaultChannel}
			for _, ch := range pkg.Channels {
				cr := channelRow{Name: ch.Name, Head: ch.Head, HeadVersion: ch.HeadVersion, Versions: ch.Versions}
				if ch.Err != nil {
					cr.Err = ch.Err.Error()
				}
				for _, name := range f.Entries[pkg.Name+"/"+ch.Name] {
					b, ok := f.Bundles[name]
					if !ok {
						continue
					}
					br := c.bundlePresence(ctx, r, p.Selected.Repo, b)
					cr.Bundles = append(cr.Bundles, br)
					if name == ch.Head {
						cr.HeadBundle = br
					}
				}
				sort.SliceStable(cr.Bundles, func(i, j int) bool { return newer(cr.Bundles[j].Version, cr.Bundles[i].Version) })
				row.Channels = append(row.Channels, cr)
			}
			p.Packages = append(p.Packages, row)
		}
	}
	c.render(w, r, http.StatusOK, "catalogs", "Operator catalogs", p)
}

// bundlePresence checks a bundle's image and related images in the
// mirror. An image a.b/x/y@d was mirrored to <prefix>/x/y@d, where
// <prefix> is what the catalog repository has before its own source
// path; every leading part of the catalog's name is tried.
func (c *Console) bundlePresence(ctx context.Context, r *request, catRepo string, b bundleFacts) *bundleRow {
	row := &bundleRow{Name: b.Name, Version: b.Version, Image: b.Image, Related: len(b.Related)}
	row.ImagePresent = c.mirrored(ctx, r, catRepo, b.Image)
	seen := map[string]bool{}
	for _, ri := range b.Related {
		if seen[ri] || ri == b.Image {
			continue
		}
		seen[ri] = true
		if !c.mirrored(ctx, r, catRepo, ri) {
			row.MissingRelated = append(row.MissingRelated, ri)
		}
	}
	sort.Strings(row.MissingRelated)
	return row
}

func (c *Console) mirrored(ctx context.Context, r *request, catRepo, ref string) bool {
	name, dg, byDigest := strings.Cut(ref, "@")
	tag := ""
	if !byDigest {
		if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
			name, tag = name[:i], name[i+1:]
		}
	}
	// Drop the source registry host.
	if first, rest, ok := strings.Cut(name, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		name = rest
	}
	parts := strings.Split(catRepo, "/")
	for i := 0; i < len(parts); i++ {
		repo := path.Join(strings.Join(parts[:i], "/"), name)
		if !r.canPull(repo) {
			continue
		}
		if byDigest {
			d, err := digest.Parse(dg)
			if err != nil {
				return false
			}
			if missing, err := c.meta.MissingManifests(ctx, repo, []digest.Digest{d}); err == nil && len(missing) == 0 {
				return true
			}
		} else if _, err := c.meta.TaggedManifest(ctx, repo, tag); err == nil {
			return true
		}
	}
	return false
}
