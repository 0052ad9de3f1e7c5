package catalog

import (
	"sort"

	"github.com/Masterminds/semver/v3"
)

// PackageInfo describes one package for `ferry list operators`.
type PackageInfo struct {
	Name           string
	DefaultChannel string
	Channels       []ChannelInfo // sorted by name
}

// ChannelInfo describes one channel of a package.
type ChannelInfo struct {
	Name string
	// Head is the bundle nothing replaces or skips, the one OLM installs;
	// "" when the channel is invalid (see Err).
	Head        string
	HeadVersion string
	// Versions are the versions of the channel's bundles, lowest first.
	Versions []string
	// Err says why the channel has no head: several heads, or a cycle.
	Err error
}

// List describes the catalog's packages, or only pkg when it is not "".
// A channel whose upgrade graph is broken is listed with its error rather
// than failing the whole listing.
func (c *Catalog) List(pkg string) ([]PackageInfo, error) {
	ix, err := c.index()
	if err != nil {
		return nil, err
	}
	names := ix.packageNames()
	if pkg != "" {
		if ix.pkgs[pkg] == nil {
			return nil, &NotFoundError{Kind: "package", Name: pkg, In: "the catalog", Available: names}
		}
		names = []string{pkg}
	}
	var out []PackageInfo
	for _, name := range names {
		info := PackageInfo{Name: name, DefaultChannel: ix.pkgs[name].DefaultChannel}
		for _, chName := range ix.channelNames(name) {
			ch := ix.channels[name][chName]
			ci := ChannelInfo{Name: chName}
			if g, err := newGraph(ch); err != nil {
				ci.Err = err
			} else {
				ci.Head = g.head.name
				if b := ix.bundles[name][ci.Head]; b != nil {
					ci.HeadVersion = b.Version
				}
			}
			for _, e := range ch.Entries {
				if b := ix.bundles[name][e.Name]; b != nil && b.Version != "" {
					ci.Versions = append(ci.Versions, b.Version)
				}
			}
			sortVersions(ci.Versions)
			info.Channels = append(info.Channels, ci)
		}
		out = append(out, info)
	}
	return out, nil
}

// sortVersions sorts semantic versions by precedence, anything else after
// them by text.
func sortVersions(vs []string) {
	parsed := make(map[string]*semver.Version, len(vs))
	for _, v := range vs {
		if sv, err := semver.NewVersion(v); err == nil {
			parsed[v] = sv
		}
	}
	sort.SliceStable(vs, func(i, j int) bool {
		a, b := parsed[vs[i]], parsed[vs[j]]
		switch {
		case a != nil && b != nil:
			if c := a.Compare(b); c != 0 {
				return c < 0
			}
			return vs[i] < vs[j]
		case a != nil:
			return true
		case b != nil:
			return false
		}
		return vs[i] < vs[j]
	})
}
