package plan

import (
	"slices"
	"strings"
	"testing"

	"github.com/ferry-mirror/ferry/internal/catalog"
	"github.com/ferry-mirror/ferry/internal/imageset"
)

func TestCatalogResourceName(t *testing.T) {
	for _, tc := range []struct{ repo, tag, want string }{
		{"redhat/redhat-operator-index", "v4.16", "redhat-operator-index-v4-16"},
		{"ops/My_Catalog", "Latest", "my-catalog-latest"},
		// oc-mirror keeps 12 characters of the tag, or of a digest tag
		{"catalog", strings.Repeat("ab", 32), "catalog-abababababab"},
		{"redhat/certified-operator-index", "v4.16-2024-10-01", "certified-operator-index-v4-16-2024-1"},
		{strings.Repeat("c", 70), "v1", strings.Repeat("c", 60)},
	} {
		got, err := CatalogResourceName(tc.repo, tc.tag)
		if err != nil || got != tc.want {
			t.Errorf("CatalogResourceName(%q, %q) = %q, %v; want %q", tc.repo, tc.tag, got, err, tc.want)
		}
		if len(got) > 60 {
			t.Errorf("%q is longer than 60 characters", got)
		}
	}
	if _, err := CatalogResourceName("ops/__", "--"); err == nil {
		t.Error("a name with no letters or digits must be refused")
	}
}

func TestFilterFromConfig(t *testing.T) {
	op := imageset.Operator{Full: true, Packages: []imageset.Package{{
		Name: "alpha", DefaultChannel: "fast", MinVersion: "1.0.0", MaxVersion: "2.0.0",
		Channels: []imageset.Channel{{Name: "fast", MinVersion: "1.1.0", MaxVersion: "1.2.0"}},
		Bundles:  []imageset.Bundle{{Name: "alpha.v1.1.0"}},
	}}}
	f := Filter(op)
	want := catalog.PackageFilter{Name: "alpha", DefaultChannel: "fast", MinVersion: "1.0.0", MaxVersion: "2.0.0",
		Channels: []catalog.ChannelFilter{{Name: "fast", MinVersion: "1.1.0", MaxVersion: "1.2.0"}}, Bundles: []string{"alpha.v1.1.0"}}
	if !f.Full || len(f.Packages) != 1 {
		t.Fatalf("Filter = %+v", f)
	}
	p := f.Packages[0]
	if p.Name != want.Name || p.DefaultChannel != want.DefaultChannel || p.MinVersion != want.MinVersion || p.MaxVersion != want.MaxVersion ||
		!slices.Equal(p.Channels, want.Channels) || !slices.Equal(p.Bundles, want.Bundles) {
		t.Errorf("Filter package = %+v, want %+v", p, want)
	}
}
