package catalog

import (
	"context"
	"errors"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
)

func loadFixture(t testing.TB, opts ...ReadOption) *Catalog {
	t.Helper()
	dir := t.TempDir()
	writeFixture(t, dir, fixtureFiles(t))
	c, err := LoadFS(context.Background(), os.DirFS(dir), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func keptBundles(c *Catalog) []string {
	var names []string
	for _, b := range c.Bundles {
		names = append(names, b.Name)
	}
	sort.Strings(names)
	return names
}

func keptChannels(c *Catalog) map[string][]string {
	out := map[string][]string{}
	for _, ch := range c.Channels {
		var names []string
		for _, e := range ch.Entries {
			names = append(names, e.Name)
		}
		out[ch.Package+"/"+ch.Name] = names
	}
	return out
}

func resultImages(r *Result) map[string][]string {
	out := map[string][]string{}
	for _, im := range r.Images {
		for _, u := range im.Users {
			out[im.Ref] = append(out[im.Ref], u.Bundle)
		}
		sort.Strings(out[im.Ref])
	}
	return out
}

func TestFilterModes(t *testing.T) {
	cat := loadFixture(t)
	all := func(pkg string) []string {
		var out []string
		for _, b := range fixtureBundles {
			if pkg == "" || b.pkg == pkg {
				out = append(out, bundleName(b.pkg, b.version))
			}
		}
		return out
	}
	tests := []struct {
		name     string
		filter   Filter
		bundles  []string
		channels map[string][]string // package/channel -> kept entries
		defaults map[string]string   // package -> default channel, when not the catalog's
		warn     string
	}{{
		name:    "no packages: the head of every channel of every package",
		filter:  Filter{},
		bundles: []string{"alpha.v1.3.0", "alpha.v2.0.0", "beta.v1.0.1", "beta.v2.1.0", "gamma.v0.1.0"},
		channels: map[string][]string{
			"alpha/stable":   {"alpha.v1.3.0"},
			"alpha/fast":     {"alpha.v2.0.0"},
			"beta/release-1": {"beta.v1.0.1"},
			"beta/release-2": {"beta.v2.1.0"},
			"gamma/stable":   {"gamma.v0.1.0"},
		},
	}, {
		name:    "package with no channels: every channel's head",
		filter:  Filter{Packages: []PackageFilter{{Name: "alpha"}}},
		bundles: []string{"alpha.v1.3.0", "alpha.v2.0.0"},
		channels: map[string][]string{
			"alpha/stable": {"alpha.v1.3.0"},
			"alpha/fast":   {"alpha.v2.0.0"},
		},
	}, {
		name:     "listed channel with a default channel override",
		filter:   Filter{Packages: []PackageFilter{{Name: "alpha", DefaultChannel: "fast", Channels: []ChannelFilter{{Name: "fast"}}}}},
		bundles:  []string{"alpha.v2.0.0"},
		channels: map[string][]string{"alpha/fast": {"alpha.v2.0.0"}},
		defaults: map[string]string{"alpha": "fast"},
	}, {
		name: "channel range walked along replaces and skips",
		filter: Filter{Packages: []PackageFilter{{Name: "alpha", Channels: []ChannelFilter{
			{Name: "stable", MinVersion: "1.1.0", MaxVersion: "1.2.0"}}}}},
		bundles:  []string{"alpha.v1.1.0", "alpha.v1.1.1", "alpha.v1.2.0"},
		channels: map[string][]string{"alpha/stable": {"alpha.v1.1.0", "alpha.v1.1.1", "alpha.v1.2.0"}},
	}, {
		name: "min equal to max: exactly that version",
		filter: Filter{Packages: []PackageFilter{{Name: "alpha", Channels: []ChannelFilter{
			{Name: "stable", MinVersion: "1.1.0", MaxVersion: "1.1.0"}}}}},
		bundles:  []string{"alpha.v1.1.0"},
		channels: map[string][]string{"alpha/stable": {"alpha.v1.1.0"}},
	}, {
		// 1.1.1 is reached only through 1.2.0's skips; still only 1.1.1.
		name: "min equal to max on a skipped version: still exactly that version",
		filter: Filter{Packages: []PackageFilter{{Name: "alpha", Channels: []ChannelFilter{
			{Name: "stable", MinVersion: "1.1.1", MaxVersion: "1.1.1"}}}}},
		bundles:  []string{"alpha.v1.1.1"},
		channels: map[string][]string{"alpha/stable": {"alpha.v1.1.1"}},
	}, {
		// 1.1.1 is reached only through 1.2.0's skips, so 1.2.0 must stay
		// for 1.1.1 to be in the channel without being a second head.
		name: "range ending on a skipped version keeps the bundle that skips it",
		filter: Filter{Packages: []PackageFilter{{Name: "alpha", Channels: []ChannelFilter{
			{Name: "stable", MinVersion: "1.1.1", MaxVersion: "1.1.9"}}}}},
		bundles:  []string{"alpha.v1.1.1", "alpha.v1.2.0"},
		channels: map[string][]string{"alpha/stable": {"alpha.v1.1.1", "alpha.v1.2.0"}},
		warn:     "alpha.v1.2.0 is outside the version range",
	}, {
		name:     "package min equal to max: that version, in the channels that have it",
		filter:   Filter{Packages: []PackageFilter{{Name: "alpha", MinVersion: "1.3.0", MaxVersion: "1.3.0"}}},
		bundles:  []string{"alpha.v1.3.0"},
		channels: map[string][]string{"alpha/stable": {"alpha.v1.3.0"}, "alpha/fast": {"alpha.v1.3.0"}},
	}, {
		name:     "channel minVersion only: up to the head",
		filter:   Filter{Packages: []PackageFilter{{Name: "alpha", Channels: []ChannelFilter{{Name: "stable", MinVersion: "1.2.0"}}}}},
		bundles:  []string{"alpha.v1.2.0", "alpha.v1.3.0"},
		channels: map[string][]string{"alpha/stable": {"alpha.v1.2.0", "alpha.v1.3.0"}},
	}, {
		name:    "package minVersion: every channel from there",
		filter:  Filter{Packages: []PackageFilter{{Name: "alpha", MinVersion: "1.2.0"}}},
		bundles: []string{"alpha.v1.2.0", "alpha.v1.3.0", "alpha.v2.0.0"},
		channels: map[string][]string{
			"alpha/stable": {"alpha.v1.2.0", "alpha.v1.3.0"},
			"alpha/fast":   {"alpha.v1.2.0", "alpha.v1.3.0", "alpha.v2.0.0"},
		},
	}, {
		name:     "package maxVersion drops the channels it empties",
		filter:   Filter{Packages: []PackageFilter{{Name: "alpha", MaxVersion: "1.0.0"}}},
		bundles:  []string{"alpha.v1.0.0"},
		channels: map[string][]string{"alpha/stable": {"alpha.v1.0.0"}},
	}, {
		name: "range that empties a listed channel other than the default: that channel is left out",
		filter: Filter{Packages: []PackageFilter{{Name: "alpha", Channels: []ChannelFilter{
			{Name: "stable", MinVersion: "1.2.0", MaxVersion: "1.3.0"}, {Name: "fast", MinVersion: "2.1.0"}}}}},
		bundles:  []string{"alpha.v1.2.0", "alpha.v1.3.0"},
		channels: map[string][]string{"alpha/stable": {"alpha.v1.2.0", "alpha.v1.3.0"}},
		warn:     "package alpha channel fast: the version range keeps no bundle of this channel, so the channel is left out",
	}, {
		name:    "full with a package: all of its bundles",
		filter:  Filter{Full: true, Packages: []PackageFilter{{Name: "beta"}}},
		bundles: all("beta"),
		channels: map[string][]string{
			"beta/release-1": {"beta.v1.0.0", "beta.v1.0.1"},
			"beta/release-2": {"beta.v2.0.0", "beta.v2.1.0"},
		},
	}, {
		name:     "full with a listed channel: all of that channel",
		filter:   Filter{Full: true, Packages: []PackageFilter{{Name: "beta", Channels: []ChannelFilter{{Name: "release-2"}}}}},
		bundles:  []string{"beta.v2.0.0", "beta.v2.1.0"},
		channels: map[string][]string{"beta/release-2": {"beta.v2.0.0", "beta.v2.1.0"}},
	}, {
		name:    "bundles list: exactly those, in every channel that has them",
		filter:  Filter{Packages: []PackageFilter{{Name: "alpha", Bundles: []string{"alpha.v1.3.0"}}}},
		bundles: []string{"alpha.v1.3.0"},
		channels: map[string][]string{
			"alpha/stable": {"alpha.v1.3.0"},
			"alpha/fast":   {"alpha.v1.3.0"},
		},
	}, {
		name: "several packages",
		filter: Filter{Packages: []PackageFilter{
			{Name: "gamma"},
			{Name: "beta", Channels: []ChannelFilter{{Name: "release-2", MinVersion: "2.0.0"}}},
		}},
		bundles: []string{"beta.v2.0.0", "beta.v2.1.0", "gamma.v0.1.0"},
		channels: map[string][]string{
			"beta/release-2": {"beta.v2.0.0", "beta.v2.1.0"},
			"gamma/stable":   {"gamma.v0.1.0"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := cat.Filter(tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Failed) > 0 {
				t.Fatalf("packages failed: %v", res.Failed)
			}
			if len(tt.filter.Packages) > 0 {
				sameWhenReadOnlyPackages(t, tt.filter, res)
			}
			want := append([]string(nil), tt.bundles...)
			sort.Strings(want)
			if got := keptBundles(res.Catalog); !slices.Equal(got, want) {
				t.Errorf("kept bundles %v, want %v", got, want)
			}
			gotCh := keptChannels(res.Catalog)
			if len(gotCh) != len(tt.channels) {
				t.Errorf("kept channels %v, want %v", gotCh, tt.channels)
			}
			for k, entries := range tt.channels {
				if !slices.Equal(gotCh[k], entries) {
					t.Errorf("channel %s keeps %v, want %v", k, gotCh[k], entries)
				}
			}
			if got, want := resultImages(res), expectedImages(want); !mapsEqual(got, want) {
				t.Errorf("images:\n got %v\nwant %v", got, want)
			}
			for _, p := range res.Catalog.Packages {
				want := tt.defaults[p.Name]
				if want == "" {
					want = map[string]string{"alpha": "stable", "beta": "release-2", "gamma": "stable"}[p.Name]
				}
				if p.DefaultChannel != want {
					t.Errorf("package %s default channel %q, want %q", p.Name, p.DefaultChannel, want)
				}
			}
			if tt.warn != "" && !strings.Contains(strings.Join(res.Warnings, "\n"), tt.warn) {
				t.Errorf("warnings %q, want one saying %q", res.Warnings, tt.warn)
			}
			if tt.warn == "" && len(res.Warnings) > 0 {
				t.Errorf("unexpected warnings %q", res.Warnings)
			}
			if len(res.Problems) > 0 {
				t.Errorf("unexpected problems %v", res.Problems)
			}
			if res.Unchanged {
				t.Error("Unchanged is true for a filtered catalog")
			}
			// Every kept channel is still a valid upgrade graph.
			for _, ch := range res.Catalog.Channels {
				if _, err := newGraph(ch); err != nil {
					t.Errorf("kept channel %s/%s is invalid: %v", ch.Package, ch.Name, err)
				}
			}
		})
	}
}

// sameWhenReadOnlyPackages checks that reading only the filter's packages,
// as ferry mirror does, gives the catalog and images that reading it whole
// gave.
func sameWhenReadOnlyPackages(t *testing.T, f Filter, whole *Result) {
	t.Helper()
	dir := t.TempDir()
	writeFixture(t, dir, fixtureFiles(t))
	var names []string
	for _, p := range f.Packages {
		names = append(names, p.Name)
	}
	c, err := LoadFS(context.Background(), os.DirFS(dir), OnlyPackages(names...))
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Filter(f)
	if err != nil {
		t.Fatalf("filter of a catalog read for packages %v: %v", names, err)
	}
	a, err := whole.Catalog.Files()
	if err != nil {
		t.Fatal(err)
	}
	b, err := res.Catalog.Files()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(a, b, func(x, y File) bool { return x.Path == y.Path && string(x.Data) == string(y.Data) }) {
		t.Errorf("read for packages %v, the filtered catalog differs from the one read whole", names)
	}
	if got, want := resultImages(res), resultImages(whole); !mapsEqual(got, want) {
		t.Errorf("read for packages %v, images %v, want %v", names, got, want)
	}
	if !slices.Equal(res.Warnings, whole.Warnings) {
		t.Errorf("read for packages %v, warnings %q, want %q", names, res.Warnings, whole.Warnings)
	}
}

func mapsEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func TestFilterFullCatalog(t *testing.T) {
	cat := loadFixture(t)
	res, err := cat.Filter(Filter{Full: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Unchanged {
		t.Error("full: true with no packages should leave the catalog unchanged")
	}
	var all []string
	for _, b := range fixtureBundles {
		all = append(all, bundleName(b.pkg, b.version))
	}
	sort.Strings(all)
	if got := keptBundles(res.Catalog); !slices.Equal(got, all) {
		t.Errorf("kept %v, want every bundle %v", got, all)
	}
	if got, want := resultImages(res), expectedImages(all); !mapsEqual(got, want) {
		t.Errorf("images:\n got %v\nwant %v", got, want)
	}
	// The shared image is listed once, with every bundle as a user.
	for _, im := range res.Images {
		if im.Ref == sharedImage && len(im.Users) != len(fixtureBundles) {
			t.Errorf("shared image has %d users, want %d", len(im.Users), len(fixtureBundles))
		}
		if im.Digest == "" || !strings.HasSuffix(im.Ref, im.Digest) {
			t.Errorf("image %s: digest %q", im.Ref, im.Digest)
		}
	}
}

func TestFilterDeprecations(t *testing.T) {
	cat := loadFixture(t)
	refs := func(c *Catalog) []string {
		var out []string
		for _, d := range c.Deprecations {
			for _, e := range d.Entries {
				out = append(out, e.Reference.Schema+":"+e.Reference.Name)
			}
		}
		return out
	}
	res, err := cat.Filter(Filter{Packages: []PackageFilter{{Name: "beta", Channels: []ChannelFilter{{Name: "release-2", MinVersion: "2.0.0"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	// release-1 and beta.v1.0.0 are dropped; the package entry and the kept
	// beta.v2.0.0 stay.
	if got, want := refs(res.Catalog), []string{"olm.package:", "olm.bundle:beta.v2.0.0"}; !slices.Equal(got, want) {
		t.Errorf("deprecations %v, want %v", got, want)
	}
	res, err = cat.Filter(Filter{Full: true, Packages: []PackageFilter{{Name: "beta"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := refs(res.Catalog); len(got) != 4 {
		t.Errorf("full beta keeps deprecations %v, want all 4", got)
	}
	// The original catalog is untouched by filtering.
	if got := refs(cat); len(got) != 4 {
		t.Errorf("filtering changed the source catalog's deprecations: %v", got)
	}
	res, err = cat.Filter(Filter{Packages: []PackageFilter{{Name: "alpha"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Catalog.Deprecations) != 0 {
		t.Errorf("filtering alpha kept beta's deprecations: %v", refs(res.Catalog))
	}
}

func TestFilterKeepsOtherSchemasAndUnknownFields(t *testing.T) {
	cat := loadFixture(t)
	res, err := cat.Filter(Filter{Packages: []PackageFilter{{Name: "alpha"}}})
	if err != nil {
		t.Fatal(err)
	}
	var others []string
	for _, m := range res.Catalog.Others {
		others = append(others, m.Schema+"/"+m.Package+"/"+m.Name)
	}
	// gamma's custom document goes with gamma; the global one stays.
	if !slices.Equal(others, []string{"example.com.global//everyone"}) {
		t.Errorf("other documents %v", others)
	}
	files, err := res.Catalog.Files()
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, f := range files {
		all.Write(f.Data)
	}
	if !strings.Contains(all.String(), `"x-ferry-test": "kept"`) {
		t.Error("an unknown channel entry field was lost")
	}
	if !strings.Contains(all.String(), `"base64data": "PHN2Zy8+"`) {
		t.Error("the package icon was lost")
	}
}

func TestFilterErrors(t *testing.T) {
	cat := loadFixture(t)
	tests := []struct {
		name   string
		filter Filter
		want   []string
	}{
		{"min above max", Filter{Packages: []PackageFilter{{Name: "alpha", MinVersion: "2.0.0", MaxVersion: "1.0.0"}}},
			[]string{"minVersion 2.0.0 is above maxVersion 1.0.0", "alpha"}},
		{"channel min above max", Filter{Packages: []PackageFilter{{Name: "alpha", Channels: []ChannelFilter{{Name: "fast", MinVersion: "1.5.0", MaxVersion: "1.4.0"}}}}},
			[]string{"alpha channel fast", "minVersion 1.5.0 is above maxVersion 1.4.0"}},
		{"bad version", Filter{Packages: []PackageFilter{{Name: "alpha", MinVersion: "one"}}},
			[]string{`minVersion "one" is not a semantic version`}},
		{"full with a range", Filter{Full: true, Packages: []PackageFilter{{Name: "alpha", MaxVersion: "1.0.0"}}},
			[]string{"full: true", "minVersion/maxVersion"}},
		{"package and channel ranges", Filter{Packages: []PackageFilter{{Name: "alpha", MinVersion: "1.0.0", Channels: []ChannelFilter{{Name: "fast", MaxVersion: "2.0.0"}}}}},
			[]string{"package alpha has minVersion/maxVersion", "channel fast"}},
		{"package listed twice", Filter{Packages: []PackageFilter{{Name: "alpha"}, {Name: "alpha"}}},
			[]string{"package alpha is listed twice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cat.Filter(tt.filter)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestFilterFailsPackageAlone: what the catalog does not have fails the
// package that names it, and the other packages are still kept.
func TestFilterFailsPackageAlone(t *testing.T) {
	cat := loadFixture(t)
	tests := []struct {
		name string
		pf   PackageFilter
		want []string
	}{
		{"unknown package", PackageFilter{Name: "delta"},
			[]string{`package "delta"`, "available packages: alpha, beta, gamma"}},
		{"unknown channel", PackageFilter{Name: "alpha", Channels: []ChannelFilter{{Name: "candidate"}}},
			[]string{`channel "candidate"`, "package alpha", "available channels: fast, stable"}},
		{"unknown bundle", PackageFilter{Name: "beta", Bundles: []string{"beta.v9.9.9"}},
			[]string{`bundle "beta.v9.9.9"`, "available bundles: beta.v1.0.0, beta.v1.0.1, beta.v2.0.0, beta.v2.1.0"}},
		{"range that empties the listed default channel", PackageFilter{Name: "alpha", DefaultChannel: "fast", Channels: []ChannelFilter{{Name: "fast", MinVersion: "3.0.0"}}},
			[]string{"channel fast", "keeps no bundle of the default channel"}},
		{"range that empties every channel", PackageFilter{Name: "beta", MinVersion: "5.0.0"},
			[]string{"package beta", "keeps no bundle"}},
		{"default channel filtered out", PackageFilter{Name: "alpha", Channels: []ChannelFilter{{Name: "fast"}}},
			[]string{`drops its default channel "stable"`, "set defaultChannel", "(fast)"}},
		{"default channel emptied by a package range", PackageFilter{Name: "alpha", MinVersion: "2.0.0"},
			[]string{`drops its default channel "stable"`}},
		{"override names a dropped channel", PackageFilter{Name: "alpha", DefaultChannel: "stable", Channels: []ChannelFilter{{Name: "fast"}}},
			[]string{`defaultChannel "stable" is not among the channels the filter keeps (fast)`}},
		{"min equal to max on a missing version", PackageFilter{Name: "beta", MinVersion: "0.2.0", MaxVersion: "0.2.0"},
			[]string{"package beta has no bundle of version 0.2.0", "its versions: 1.0.0, 1.0.1, 2.0.0, 2.1.0"}},
		{"bundles that split a channel", PackageFilter{Name: "alpha", Bundles: []string{"alpha.v1.0.0", "alpha.v1.3.0"}},
			[]string{"channel stable", "multiple channel heads"}},
	}
	for _, tt := range tests {
		for _, read := range []string{"read whole", "read for its packages"} {
			t.Run(tt.name+", "+read, func(t *testing.T) {
				cat := cat
				if read != "read whole" {
					cat = loadFixture(t, OnlyPackages(tt.pf.Name, "gamma"))
				}
				filterFailsPackageAlone(t, cat, tt.pf, tt.want)
			})
		}
	}
	res, err := cat.Filter(Filter{Packages: []PackageFilter{{Name: "delta"}}})
	if err != nil {
		t.Fatal(err)
	}
	var nf *NotFoundError
	if len(res.Failed) != 1 || !errors.As(res.Failed[0], &nf) || nf.Kind != "package" || !slices.Equal(nf.Available, []string{"alpha", "beta", "gamma"}) {
		t.Errorf("failed %v is not a NotFoundError listing the packages", res.Failed)
	}
	if len(res.Catalog.Packages) != 0 || len(res.Images) != 0 {
		t.Errorf("nothing listed exists, yet the result keeps %d packages and %d images", len(res.Catalog.Packages), len(res.Images))
	}
}

func TestFilterReportsInvalidImageAgainstItsBundle(t *testing.T) {
	c := &Catalog{}
	err := c.ParseFile("p/catalog.json", []byte(`{"schema":"olm.package","name":"p","defaultChannel":"c"}
{"schema":"olm.channel","package":"p","name":"c","entries":[{"name":"p.v1"}]}
{"schema":"olm.bundle","package":"p","name":"p.v1","image":"registry.example.com/p/bundle:v1",
 "properties":[{"type":"olm.package","value":{"packageName":"p","version":"1.0.0"}}],
 "relatedImages":[{"name":"local","image":"oci:///var/images/operand"},{"name":"operand","image":"registry.example.com/p/operand:v1"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Filter(Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) != 1 || res.Problems[0].Bundle != "p.v1" || res.Problems[0].Ref != "oci:///var/images/operand" {
		t.Fatalf("problems %v, want the oci:// image of p.v1", res.Problems)
	}
	if !strings.Contains(res.Problems[0].Error(), "bundle p.v1 of package p") {
		t.Errorf("problem %q does not name the bundle", res.Problems[0].Error())
	}
	var refs []string
	for _, im := range res.Images {
		refs = append(refs, im.Ref)
		if im.Digest != "" {
			t.Errorf("%s: digest %q for a tag reference", im.Ref, im.Digest)
		}
	}
	if want := []string{"registry.example.com/p/bundle:v1", "registry.example.com/p/operand:v1"}; !slices.Equal(refs, want) {
		t.Errorf("images %v, want %v", refs, want)
	}
}

// filterFailsPackageAlone filters cat for pf and gamma and checks that pf
// alone fails, with an error saying each of want.
func filterFailsPackageAlone(t *testing.T, cat *Catalog, pf PackageFilter, want []string) {
	t.Helper()
	res, err := cat.Filter(Filter{Packages: []PackageFilter{pf, {Name: "gamma"}}})
	if err != nil {
		t.Fatalf("the whole filter failed: %v", err)
	}
	if len(res.Failed) != 1 || res.Failed[0].Package != pf.Name {
		t.Fatalf("failed packages %v, want %s alone", res.Failed, pf.Name)
	}
	for _, w := range want {
		if !strings.Contains(res.Failed[0].Error(), w) {
			t.Errorf("error %q does not say %q", res.Failed[0], w)
		}
	}
	if got := keptBundles(res.Catalog); !slices.Equal(got, []string{"gamma.v0.1.0"}) {
		t.Errorf("kept bundles %v, want gamma's head alone", got)
	}
	for _, p := range res.Catalog.Packages {
		if p.Name == pf.Name {
			t.Errorf("failed package %s is still in the catalog", p.Name)
		}
	}
}
