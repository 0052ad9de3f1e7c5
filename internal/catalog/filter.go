package catalog

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// Filter says which bundles of a catalog to keep: the operators entry of an
// ImageSetConfiguration, field for field.
type Filter struct {
	// Full keeps every bundle: of the whole catalog when Packages is empty,
	// else of every listed package (or of its listed channels).
	Full     bool
	Packages []PackageFilter
}

// PackageFilter selects bundles of one package.
type PackageFilter struct {
	Name string
	// DefaultChannel becomes the package's default channel; required when
	// the filter drops the catalog's default channel.
	DefaultChannel string
	// MinVersion and MaxVersion bound every channel of the package.
	MinVersion string
	MaxVersion string
	// Channels limits the package to these channels.
	Channels []ChannelFilter
	// Bundles keeps exactly these bundles, by name, in every channel.
	Bundles []string
}

// ChannelFilter selects bundles of one channel.
type ChannelFilter struct {
	Name       string
	MinVersion string
	MaxVersion string
}

// Filter returns the catalog cut down to what f selects, and the images the
// kept bundles need. It follows oc-mirror v2's filter (catalog-filter):
//   - no packages: the head of every channel of every package;
//   - a package with no channels: every channel of it, head only;
//   - listed channels: only those, head only;
//   - minVersion/maxVersion (of a channel, or of the package for all its
//     channels): the range walked down the replaces chain (see keepRange);
//     a channel the range empties is dropped with a warning, unless it is
//     the package's default channel;
//   - minVersion equal to maxVersion: exactly that version, in the channels
//     that have it;
//   - bundles: exactly those bundles;
//   - full: every entry of the selected channels;
//   - defaultChannel: the package's new default channel.
//
// Kept channel entries are written as they are: a replaces or skips that
// names a dropped bundle stays, as oc-mirror leaves it, because OLM accepts a
// dangling edge and uses it to upgrade a cluster running that older bundle.
// Deprecation entries for dropped bundles and channels go.
//
// A package the filter cannot select from (one the catalog does not have,
// an unknown channel or bundle, no bundle of an exact version, its default
// channel dropped or emptied without a defaultChannel naming a kept one)
// fails alone: it is left out and listed in Result.Failed, naming what the
// catalog has, and the other packages are kept. The returned error is for
// a filter that is wrong whatever the catalog holds (a minVersion above
// the maxVersion, full combined with a version range, a package or
// channel listed twice) and for a catalog that cannot be indexed.
func (c *Catalog) Filter(f Filter) (*Result, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	ix, err := c.index()
	if err != nil {
		return nil, err
	}
	if f.Full && len(f.Packages) == 0 {
		return newResult(c, true, nil), nil
	}
	pkgFilters := f.Packages
	if len(pkgFilters) == 0 {
		for _, name := range ix.packageNames() {
			pkgFilters = append(pkgFilters, PackageFilter{Name: name})
		}
	}

	out := &Catalog{}
	keptChans := map[string]map[string]bool{}
	keptBundles := map[string]map[string]bool{}
	var warnings []string
	var failed []*PackageError
	for _, pf := range pkgFilters {
		pkg, chans, w, err := selectPackage(ix, f.Full, pf)
		if err != nil {
			failed = append(failed, &PackageError{Package: pf.Name, Err: err})
			continue
		}
		warnings = append(warnings, w...)
		out.Packages = append(out.Packages, pkg)
		keptChans[pkg.Name] = map[string]bool{}
		keptBundles[pkg.Name] = map[string]bool{}
		for _, ch := range chans {
			out.Channels = append(out.Channels, ch)
			keptChans[pkg.Name][ch.Name] = true
			for _, e := range ch.Entries {
				if keptBundles[pkg.Name][e.Name] {
					continue
				}
				keptBundles[pkg.Name][e.Name] = true
				out.Bundles = append(out.Bundles, ix.bundles[pkg.Name][e.Name])
			}
		}
	}
	sort.SliceStable(out.Bundles, func(i, j int) bool {
		if out.Bundles[i].Package != out.Bundles[j].Package {
			return out.Bundles[i].Package < out.Bundles[j].Package
		}
		return out.Bundles[i].Name < out.Bundles[j].Name
	})
	for _, d := range c.Deprecations {
		if keptChans[d.Package] == nil {
			continue
		}
		d, err := pruneDeprecation(d, keptChans[d.Package], keptBundles[d.Package])
		if err != nil {
			return nil, err
		}
		if d != nil {
			out.Deprecations = append(out.Deprecations, d)
		}
	}
	for _, m := range c.Others {
		if m.Package == "" || keptChans[m.Package] != nil {
			out.Others = append(out.Others, m)
		}
	}
	res := newResult(out, false, warnings)
	res.Failed = failed
	return res, nil
}

// PackageError is a package the filter could not select from; the rest of
// the catalog is filtered without it.
type PackageError struct {
	Package string
	Err     error
}

func (e *PackageError) Error() string { return e.Err.Error() }
func (e *PackageError) Unwrap() error { return e.Err }

// selectPackage plans and applies the filter of one package, and checks
// that every kept entry has its bundle.
func selectPackage(ix *index, full bool, pf PackageFilter) (*Package, []*Channel, []string, error) {
	plan, err := planPackage(ix, full, pf)
	if err != nil {
		return nil, nil, nil, err
	}
	pkg, chans, warnings, err := plan.apply(ix)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, ch := range chans {
		for _, e := range ch.Entries {
			if ix.bundles[pkg.Name][e.Name] == nil {
				return nil, nil, nil, fmt.Errorf("channel %s of package %s (%s) lists bundle %s, which the catalog does not define", ch.Name, pkg.Name, ch.Source, e.Name)
			}
		}
	}
	return pkg, chans, warnings, nil
}

// validate reports what is wrong with the filter whatever the catalog.
func (f Filter) validate() error {
	seen := map[string]bool{}
	for _, pf := range f.Packages {
		if seen[pf.Name] {
			return fmt.Errorf("package %s is listed twice; merge the two entries", pf.Name)
		}
		seen[pf.Name] = true
		pkgRange, err := versionRange(pf.Name, pf.MinVersion, pf.MaxVersion)
		if err != nil {
			return err
		}
		switch {
		case f.Full && pkgRange != "":
			return fmt.Errorf("package %s: full: true keeps every version, so it cannot be combined with minVersion/maxVersion; drop one of them", pf.Name)
		case f.Full && len(pf.Bundles) > 0:
			return fmt.Errorf("package %s: full: true keeps every bundle, so it cannot be combined with a bundles list; drop one of them", pf.Name)
		case len(pf.Bundles) > 0 && (pkgRange != "" || len(pf.Channels) > 0):
			return fmt.Errorf("package %s: a bundles list cannot be combined with channels or minVersion/maxVersion; use one way of selecting", pf.Name)
		}
		chans := map[string]bool{}
		for _, cf := range pf.Channels {
			if chans[cf.Name] {
				return fmt.Errorf("package %s: channel %s is listed twice; merge the two entries", pf.Name, cf.Name)
			}
			chans[cf.Name] = true
			rng, err := versionRange(pf.Name+" channel "+cf.Name, cf.MinVersion, cf.MaxVersion)
			if err != nil {
				return err
			}
			switch {
			case rng != "" && pkgRange != "":
				return fmt.Errorf("package %s has minVersion/maxVersion, so its channel %s cannot have its own; keep one of the two", pf.Name, cf.Name)
			case rng != "" && f.Full:
				return fmt.Errorf("package %s channel %s: full: true keeps every version, so it cannot be combined with minVersion/maxVersion; drop one of them", pf.Name, cf.Name)
			}
		}
	}
	return nil
}

// pkgPlan is what to do with one package: which channels, and how.
type pkgPlan struct {
	pkg            *Package
	defaultChannel string // the override, if any
	chans          []chanPlan
	full           bool
	bundles        map[string]bool
}

type chanPlan struct {
	ch       *Channel
	listed   bool // named by the filter
	min, max string
}

// planPackage finds what pf names in the catalog; pf has been validated.
func planPackage(ix *index, full bool, pf PackageFilter) (pkgPlan, error) {
	p := ix.pkgs[pf.Name]
	if p == nil {
		return pkgPlan{}, &NotFoundError{Kind: "package", Name: pf.Name, In: "the catalog", Available: ix.packageNames()}
	}
	plan := pkgPlan{pkg: p, defaultChannel: pf.DefaultChannel, full: full}
	if err := hasExactVersion(ix, p.Name, pf.MinVersion, pf.MaxVersion); err != nil {
		return plan, err
	}
	if len(pf.Bundles) > 0 {
		plan.bundles = map[string]bool{}
		for _, b := range pf.Bundles {
			if ix.bundles[p.Name][b] == nil {
				return plan, &NotFoundError{Kind: "bundle", Name: b, In: "package " + p.Name, Available: sortedKeys(ix.bundles[p.Name])}
			}
			plan.bundles[b] = true
		}
	}
	if len(pf.Channels) == 0 {
		for _, name := range ix.channelNames(p.Name) {
			plan.chans = append(plan.chans, chanPlan{ch: ix.channels[p.Name][name], min: pf.MinVersion, max: pf.MaxVersion})
		}
		return plan, nil
	}
	for _, cf := range pf.Channels {
		ch := ix.channels[p.Name][cf.Name]
		if ch == nil {
			return plan, &NotFoundError{Kind: "channel", Name: cf.Name, In: "package " + p.Name, Available: ix.channelNames(p.Name)}
		}
		cp := chanPlan{ch: ch, listed: true, min: cf.MinVersion, max: cf.MaxVersion}
		if cf.MinVersion == "" && cf.MaxVersion == "" {
			cp.min, cp.max = pf.MinVersion, pf.MaxVersion
		}
		if err := hasExactVersion(ix, p.Name, cf.MinVersion, cf.MaxVersion); err != nil {
			return plan, err
		}
		plan.chans = append(plan.chans, cp)
	}
	return plan, nil
}

// versionRange turns min and max into the constraint oc-mirror builds.
func versionRange(what, min, max string) (string, error) {
	var lo, hi *semver.Version
	var err error
	if min != "" {
		if lo, err = semver.NewVersion(min); err != nil {
			return "", fmt.Errorf("%s: minVersion %q is not a semantic version, like 1.2.3", what, min)
		}
	}
	if max != "" {
		if hi, err = semver.NewVersion(max); err != nil {
			return "", fmt.Errorf("%s: maxVersion %q is not a semantic version, like 1.2.3", what, max)
		}
	}
	if lo != nil && hi != nil && lo.GreaterThan(hi) {
		return "", fmt.Errorf("%s: minVersion %s is above maxVersion %s; swap them or widen the range", what, min, max)
	}
	var parts []string
	if lo != nil {
		parts = append(parts, ">="+min)
	}
	if hi != nil {
		parts = append(parts, "<="+max)
	}
	return strings.Join(parts, " "), nil
}

// hasExactVersion checks, when min equals max, that the package has a bundle
// of that version.
func hasExactVersion(ix *index, pkg, min, max string) error {
	if min == "" || min != max {
		return nil
	}
	want, err := semver.NewVersion(min)
	if err != nil {
		return nil // versionRange has reported it
	}
	var have []string
	for _, b := range ix.bundles[pkg] {
		if v, err := semver.NewVersion(b.Version); err == nil && v.Equal(want) {
			return nil
		}
		have = append(have, b.Version)
	}
	sortVersions(have)
	return fmt.Errorf("package %s has no bundle of version %s (minVersion = maxVersion selects exactly one version); its versions: %s", pkg, min, strings.Join(have, ", "))
}

// apply cuts the package's channels and settles its default channel.
func (plan pkgPlan) apply(ix *index) (*Package, []*Channel, []string, error) {
	name := plan.pkg.Name
	var kept []*Channel
	var warnings []string
	def := plan.pkg.DefaultChannel
	if plan.defaultChannel != "" {
		def = plan.defaultChannel
	}
	for _, cp := range plan.chans {
		entries, w, err := plan.entries(ix, cp)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("package %s channel %s (%s): %w", name, cp.ch.Name, cp.ch.Source, err)
		}
		warnings = append(warnings, w...)
		if len(entries) == 0 {
			// As oc-mirror: a channel the range empties is dropped, but
			// not the default channel, which OLM needs.
			if cp.listed && cp.ch.Name == def {
				return nil, nil, nil, fmt.Errorf("package %s channel %s: the filter keeps no bundle of the default channel; widen its version range, or set defaultChannel to another listed channel", name, cp.ch.Name)
			}
			if cp.listed {
				warnings = append(warnings, fmt.Sprintf("package %s channel %s: the version range keeps no bundle of this channel, so the channel is left out", name, cp.ch.Name))
			}
			continue
		}
		if len(entries) == len(cp.ch.Entries) {
			kept = append(kept, cp.ch)
			continue
		}
		ch, err := cp.ch.withEntries(entries)
		if err != nil {
			return nil, nil, nil, err
		}
		if plan.bundles != nil {
			// A hand-picked set of bundles can split a channel in two.
			if _, err := newGraph(ch); err != nil {
				return nil, nil, nil, fmt.Errorf("package %s channel %s: the selected bundles do not form a valid channel: %w", name, ch.Name, err)
			}
		}
		kept = append(kept, ch)
	}
	if len(kept) == 0 {
		return nil, nil, nil, fmt.Errorf("package %s: the filter keeps no bundle of any channel; widen its version range or bundle list", name)
	}
	names := make([]string, 0, len(kept))
	has := map[string]bool{}
	for _, ch := range kept {
		names = append(names, ch.Name)
		has[ch.Name] = true
	}
	sort.Strings(names)
	pkg := plan.pkg
	switch {
	case plan.defaultChannel != "" && !has[plan.defaultChannel]:
		return nil, nil, nil, fmt.Errorf("package %s: defaultChannel %q is not among the channels the filter keeps (%s); pick one of them", name, plan.defaultChannel, strings.Join(names, ", "))
	case plan.defaultChannel != "" && plan.defaultChannel != pkg.DefaultChannel:
		var err error
		if pkg, err = pkg.withDefaultChannel(plan.defaultChannel); err != nil {
			return nil, nil, nil, err
		}
	case plan.defaultChannel == "" && !has[pkg.DefaultChannel]:
		return nil, nil, nil, fmt.Errorf("package %s: the filter drops its default channel %q; keep that channel or set defaultChannel to one of the kept channels (%s)", name, pkg.DefaultChannel, strings.Join(names, ", "))
	}
	return pkg, kept, warnings, nil
}

// entries returns the channel entries the plan keeps, in catalog order.
func (plan pkgPlan) entries(ix *index, cp chanPlan) ([]ChannelEntry, []string, error) {
	var keep map[string]bool
	var warnings []string
	switch {
	case plan.full:
		return cp.ch.Entries, nil, nil
	case plan.bundles != nil:
		keep = plan.bundles
	case cp.min != "" && cp.min == cp.max:
		// Exactly that version, as oc-mirror does since OCPBUGS-61497, even
		// when the channel reaches it only through another bundle's skips.
		want, err := semver.NewVersion(cp.min)
		if err != nil {
			return nil, nil, err
		}
		keep = map[string]bool{}
		for _, e := range cp.ch.Entries {
			b := ix.bundles[plan.pkg.Name][e.Name]
			if b == nil {
				continue
			}
			if v, err := semver.NewVersion(b.Version); err == nil && v.Equal(want) {
				keep[e.Name] = true
			}
		}
	case cp.min != "" || cp.max != "":
		g, err := newGraph(cp.ch)
		if err != nil {
			return nil, nil, err
		}
		rng, err := versionRange(plan.pkg.Name, cp.min, cp.max)
		if err != nil {
			return nil, nil, err
		}
		constraint, err := semver.NewConstraint(rng)
		if err != nil {
			return nil, nil, fmt.Errorf("version range %q: %w", rng, err)
		}
		var bad error
		inRange := func(b string) bool {
			bundle := ix.bundles[plan.pkg.Name][b]
			if bundle == nil {
				return false
			}
			v, err := semver.StrictNewVersion(bundle.Version)
			if err != nil {
				bad = errors.Join(bad, fmt.Errorf("bundle %s (%s) has version %q, which is not a semantic version, so a version range cannot place it", b, bundle.Source, bundle.Version))
				return false
			}
			return constraint.Check(v)
		}
		keep, warnings = g.keepRange(inRange)
		if bad != nil {
			return nil, nil, bad
		}
	default:
		g, err := newGraph(cp.ch)
		if err != nil {
			return nil, nil, err
		}
		keep = map[string]bool{g.head.name: true}
	}
	var out []ChannelEntry
	for _, e := range cp.ch.Entries {
		if keep[e.Name] {
			out = append(out, e)
		}
	}
	return out, warnings, nil
}

// pruneDeprecation drops entries about bundles and channels the filter
// dropped, and the whole document when nothing is left.
func pruneDeprecation(d *Deprecation, chans, bundles map[string]bool) (*Deprecation, error) {
	var entries []DeprecationEntry
	for _, e := range d.Entries {
		switch e.Reference.Schema {
		case SchemaBundle:
			if !bundles[e.Reference.Name] {
				continue
			}
		case SchemaChannel:
			if !chans[e.Reference.Name] {
				continue
			}
		}
		entries = append(entries, e)
	}
	switch {
	case len(entries) == 0:
		return nil, nil
	case len(entries) == len(d.Entries):
		return d, nil
	}
	return d.withEntries(entries)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
