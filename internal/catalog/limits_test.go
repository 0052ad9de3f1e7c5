package catalog

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"
)

// TestLimits: a catalog folder with one file over the per-file limit, or
// files that together pass the total limit, is refused with an error
// naming the file and the limit; within the limits it loads.
func TestLimits(t *testing.T) {
	pkg := func(name string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte(`{"schema":"olm.package","name":"` + name + `","defaultChannel":"stable"}` + "\n" + strings.Repeat(" ", 900))}
	}
	fsys := fstest.MapFS{"a/catalog.json": pkg("a"), "b/catalog.json": pkg("b"), "c/catalog.json": pkg("c")}
	for _, tc := range []struct {
		name string
		lim  limits
		want string // "" loads
	}{
		{"within", limits{file: 1000, total: 3000}, ""},
		{"file over", limits{file: 900, total: 1 << 20}, "more than the 900 bytes one catalog file may hold"},
		{"total over", limits{file: 1000, total: 2500}, "catalog files add up to more than 2500 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadFS(context.Background(), fsys, tc.lim)
			switch {
			case tc.want == "" && (err != nil || len(c.Packages) != 3):
				t.Errorf("loadFS = %v; want the 3 packages", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "catalog.json")):
				t.Errorf("loadFS = %v; want an error naming the file and %q", err, tc.want)
			}
		})
	}
}
