package catalog

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

// TestLimits: a catalog folder whose files together pass the total limit,
// a YAML file over the per-file limit, or a JSON document over the
// per-document limit is refused with an error naming the file and the
// limit; a JSON file larger than the per-file limit loads, since it is
// read a document at a time.
func TestLimits(t *testing.T) {
	pkg := func(name string) string {
		return `{"schema":"olm.package","name":"` + name + `","defaultChannel":"stable"}` + "\n"
	}
	padded := func(name string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte(pkg(name) + strings.Repeat(" ", 900))}
	}
	// One JSON file holding three packages and a bundle, as opm render
	// writes a whole index: 1,100 bytes or so.
	var one strings.Builder
	for _, n := range []string{"a", "b", "c"} {
		one.WriteString(pkg(n))
	}
	one.WriteString(`{"schema":"olm.bundle","name":"a.v1","package":"a","image":"example.com/a@sha256:` + strings.Repeat("0", 64) + `","properties":[{"type":"olm.package","value":{"packageName":"a","version":"1.0.0"}},{"type":"olm.bundle.object","value":{"data":"` + strings.Repeat("QUFB", 150) + `"}}]}` + "\n")
	// The same, with the bundle pretty-printed over many lines as opm
	// render -o json writes it: the error names the line it starts on.
	var pretty strings.Builder
	for _, n := range []string{"a", "b", "c"} {
		pretty.WriteString(pkg(n))
	}
	pretty.WriteString("{\n  \"schema\": \"olm.bundle\",\n  \"name\": \"a.v1\",\n  \"package\": \"a\",\n  \"properties\": [\n")
	for range 20 {
		pretty.WriteString(`    {"type": "olm.bundle.object", "value": {"data": "` + strings.Repeat("QUFB", 10) + `"}},` + "\n")
	}
	pretty.WriteString(`    {"type": "olm.package", "value": {"packageName": "a", "version": "1.0.0"}}` + "\n  ]\n}\n")
	yaml := "schema: olm.package\nname: y\ndefaultChannel: stable\n" + "# " + strings.Repeat("x", 1000) + "\n"

	for _, tc := range []struct {
		name     string
		fsys     fstest.MapFS
		lim      limits
		packages int
		want     string // "" loads
		line     int    // the line a *ParseError names; 0: none expected
	}{
		{"within", fstest.MapFS{"a/catalog.json": padded("a"), "b/catalog.json": padded("b"), "c/catalog.json": padded("c")}, limits{file: 1000, total: 3000}, 3, "", 0},
		{"total over", fstest.MapFS{"a/catalog.json": padded("a"), "b/catalog.json": padded("b"), "c/catalog.json": padded("c")}, limits{file: 1000, total: 2500}, 0, "catalog files add up to more than 2500 bytes", 0},
		{"JSON file over the file limit", fstest.MapFS{"index/catalog.json": {Data: []byte(one.String())}}, limits{file: 500, total: 3000, doc: 1000}, 3, "", 0},
		{"YAML file over the file limit", fstest.MapFS{"y/catalog.yaml": {Data: []byte(yaml)}}, limits{file: 500, total: 3000}, 0, "more than the 500 bytes a YAML catalog file may hold", 0},
		{"JSON document over the document limit", fstest.MapFS{"index/catalog.json": {Data: []byte(one.String())}}, limits{total: 3000, doc: 500}, 0, "a document larger than 500 bytes", 4},
		{"pretty-printed JSON document over the document limit", fstest.MapFS{"index/catalog.json": {Data: []byte(pretty.String())}}, limits{total: 3000, doc: 500}, 0, "a document larger than 500 bytes", 4},
		{"pretty-printed JSON within the limits", fstest.MapFS{"index/catalog.json": {Data: []byte(pretty.String())}}, limits{total: 3000, doc: 2500}, 3, "", 0},
		{"blanks after a document count toward the next", fstest.MapFS{"a/catalog.json": padded("a")}, limits{total: 3000, doc: 500}, 0, "a document larger than 500 bytes", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadFS(context.Background(), tc.fsys, tc.lim)
			switch {
			case tc.want == "" && (err != nil || len(c.Packages) != tc.packages):
				t.Fatalf("loadFS = %v; want the %d packages", err, tc.packages)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "catalog.")):
				t.Fatalf("loadFS = %v; want an error naming the file and %q", err, tc.want)
			}
			var pe *ParseError
			if tc.line > 0 && (!errors.As(err, &pe) || pe.Line != tc.line) {
				t.Errorf("loadFS = %v; want a parse error at line %d", err, tc.line)
			}
		})
	}
}
