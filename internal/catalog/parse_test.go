package catalog

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestParseFileErrorsNameFileAndLine(t *testing.T) {
	tests := []struct {
		name, data string
		line       int
		says       string
	}{
		{"json syntax", "{\"schema\": \"olm.package\", \"name\": \"a\", \"defaultChannel\": \"s\"}\n{\"schema\": \"olm.channel\",\n  \"name\": \"s\" \"package\": \"a\"}\n", 3, "invalid JSON"},
		{"json wrong type", "\n\n{\"schema\": \"olm.channel\", \"name\": \"s\", \"package\": \"a\", \"entries\": {}}\n", 3, "olm.channel"},
		{"json no schema", "{\"schema\": \"olm.package\", \"name\": \"a\"}\n\n  {\"name\": \"x\"}", 3, `no "schema" field`},
		{"json bundle without package", "{\"schema\": \"olm.bundle\", \"name\": \"a.v1\"}", 1, `"name" and "package"`},
		{"yaml no schema", "schema: olm.package\nname: a\n---\n# a comment\nname: b\n", 5, `no "schema" field`},
		{"yaml wrong type", "schema: olm.channel\nname: s\npackage: a\nentries: 7\n", 1, "olm.channel"},
		{"yaml not an object", "- a\n- b\n", 1, "must be an object"},
		{"schema not a string", "{\"schema\": 7}", 1, `"schema" must be a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (&Catalog{}).ParseFile("pkg/catalog.json", []byte(tt.data))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a ParseError", err)
			}
			if pe.File != "pkg/catalog.json" || pe.Line != tt.line {
				t.Errorf("error at %s:%d, want pkg/catalog.json:%d: %v", pe.File, pe.Line, tt.line, err)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q does not say %q", err, tt.says)
			}
		})
	}
}

func TestParseFileYAMLSyntaxErrorHasLine(t *testing.T) {
	err := (&Catalog{}).ParseFile("a.yaml", []byte("schema: olm.package\nname: a\n---\nschema: olm.channel\nname: c\npackage: a\nentries:\n  - name: x\n   bad: indent\n"))
	var pe *ParseError
	// yaml.v3 names the line of the block the bad line breaks (7), not
	// the bad line itself (9); either leads the user to the spot.
	if !errors.As(err, &pe) || pe.File != "a.yaml" || pe.Line < 7 || pe.Line > 9 {
		t.Errorf("error %v should name a.yaml and a line from 7 to 9", err)
	}
}

func TestParseFileForms(t *testing.T) {
	// The same package, channel and bundle in every form a file can take.
	forms := map[string]string{
		"json stream": `{"schema":"olm.package","name":"p","defaultChannel":"c"}
{"schema":"olm.channel","package":"p","name":"c","entries":[{"name":"p.v1"}]}{"schema":"olm.bundle","package":"p","name":"p.v1","image":"r.example.com/p@sha256:` + strings.Repeat("a", 64) + `","properties":[{"type":"olm.package","value":{"packageName":"p","version":"1.0.0"}}]}`,
		"yaml multi-doc": `---
schema: olm.package
name: p
defaultChannel: c
---
schema: olm.channel
package: p
name: c
entries:
- name: p.v1
---
schema: olm.bundle
package: p
name: p.v1
image: r.example.com/p@sha256:` + strings.Repeat("a", 64) + `
properties:
- type: olm.package
  value: {packageName: p, version: 1.0.0}
---
`,
		"yaml, case-insensitive keys": "Schema: olm.package\nName: p\nDefaultChannel: c\n",
	}
	for name, data := range forms {
		t.Run(name, func(t *testing.T) {
			c := &Catalog{}
			if err := c.ParseFile("f", []byte("\ufeff"+data)); err != nil {
				t.Fatal(err)
			}
			if len(c.Packages) != 1 || c.Packages[0].Name != "p" || c.Packages[0].DefaultChannel != "c" {
				t.Fatalf("packages %+v", c.Packages)
			}
			if name == "yaml, case-insensitive keys" {
				return
			}
			if len(c.Channels) != 1 || len(c.Channels[0].Entries) != 1 || c.Channels[0].Entries[0].Name != "p.v1" {
				t.Errorf("channels %+v", c.Channels)
			}
			if len(c.Bundles) != 1 || c.Bundles[0].Version != "1.0.0" {
				t.Errorf("bundles %+v", c.Bundles)
			}
		})
	}
}

func TestLoadFSIndexIgnore(t *testing.T) {
	pkg := `{"schema":"olm.package","name":"p","defaultChannel":"c"}`
	fsys := fstest.MapFS{
		".indexignore":          {Data: []byte("# comment\n*.md\n/scratch/\nsub/skip.json\n!keep.md\n")},
		"README.md":             {Data: []byte("not: [json")},
		"p/notes.md":            {Data: []byte("also not json")},
		"p/catalog.json":        {Data: []byte(pkg)},
		"scratch/bad.json":      {Data: []byte("{")},
		"sub/skip.json":         {Data: []byte("{")},
		"sub/.indexignore":      {Data: []byte("local-*.yaml\n")},
		"sub/local-test.yaml":   {Data: []byte(": bad")},
		"other/local-test.yaml": {Data: []byte(`{"schema":"olm.package","name":"q","defaultChannel":"c"}`)},
	}
	c, err := LoadFS(context.Background(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range c.Packages {
		names = append(names, p.Name)
	}
	if !slices.Equal(names, []string{"q", "p"}) && !slices.Equal(names, []string{"p", "q"}) {
		t.Errorf("packages %v, want p and q", names)
	}
	// Without the ignore file, the README is read and named in the error.
	delete(fsys, ".indexignore")
	_, err = LoadFS(context.Background(), fsys)
	var pe *ParseError
	if !errors.As(err, &pe) || pe.File != "README.md" {
		t.Errorf("error %v, want a ParseError for README.md", err)
	}
}

func TestLoadFSFixtureFromDisk(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, fixtureFiles(t))
	if err := os.WriteFile(dir+"/beta/broken.yaml", []byte("schema: olm.bundle\nname: beta.v9\npackage: beta\n---\nschema: olm.bundle\nname: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFS(context.Background(), os.DirFS(dir))
	if err == nil || !strings.Contains(err.Error(), "beta/broken.yaml") || !strings.Contains(err.Error(), "line 6") {
		t.Errorf("error %v should name beta/broken.yaml and line 6", err)
	}
}

func TestWriteRoundTrip(t *testing.T) {
	cat := loadFixture(t)
	dir := t.TempDir()
	if err := cat.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	back, err := LoadFS(context.Background(), os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	if filesOf(t, back) != filesOf(t, cat) {
		t.Error("writing and reading back changed the catalog")
	}
	files, err := cat.Files()
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, f.Path)
	}
	if want := []string{"alpha/catalog.json", "beta/catalog.json", "catalog.json", "gamma/catalog.json"}; !slices.Equal(paths, want) {
		t.Errorf("files %v, want %v", paths, want)
	}
	// Within a package: olm.package, channels by name, bundles by name.
	alpha := string(files[0].Data)
	order := []string{`"schema": "olm.package"`}
	for _, n := range []string{"fast", "stable", "alpha.v1.0.0", "alpha.v2.0.0"} {
		order = append(order, `"name": "`+n+`",
    "package": "alpha"`)
	}
	last := -1
	for _, s := range order {
		i := strings.Index(alpha, s)
		if i < last {
			t.Errorf("%s is out of order in alpha/catalog.json", s)
		}
		last = i
	}
	// A YAML date stays the text it was.
	if !strings.Contains(string(files[3].Data), `"when": "2024-05-01"`) {
		t.Errorf("gamma's custom document changed:\n%s", files[3].Data)
	}
}

func TestList(t *testing.T) {
	cat := loadFixture(t)
	pkgs, err := cat.List("")
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 3 || pkgs[0].Name != "alpha" || pkgs[0].DefaultChannel != "stable" {
		t.Fatalf("packages %+v", pkgs)
	}
	alpha := pkgs[0]
	if len(alpha.Channels) != 2 {
		t.Fatalf("alpha channels %+v", alpha.Channels)
	}
	fast, stable := alpha.Channels[0], alpha.Channels[1]
	if fast.Name != "fast" || fast.Head != "alpha.v2.0.0" || fast.HeadVersion != "2.0.0" ||
		!slices.Equal(fast.Versions, []string{"1.2.0", "1.3.0", "2.0.0"}) {
		t.Errorf("fast: %+v", fast)
	}
	if stable.Name != "stable" || stable.Head != "alpha.v1.3.0" ||
		!slices.Equal(stable.Versions, []string{"1.0.0", "1.1.0", "1.1.1", "1.2.0", "1.3.0"}) {
		t.Errorf("stable: %+v", stable)
	}
	one, err := cat.List("beta")
	if err != nil || len(one) != 1 || one[0].Name != "beta" || one[0].Channels[1].Head != "beta.v2.1.0" {
		t.Errorf("List(beta) = %+v, %v", one, err)
	}
	_, err = cat.List("nope")
	if err == nil || !strings.Contains(err.Error(), "available packages: alpha, beta, gamma") {
		t.Errorf("List(nope) error %v", err)
	}
}

func TestListReportsBrokenChannel(t *testing.T) {
	c := &Catalog{}
	err := c.ParseFile("c.json", []byte(`{"schema":"olm.package","name":"p","defaultChannel":"c"}
{"schema":"olm.channel","package":"p","name":"c","entries":[{"name":"p.v1"},{"name":"p.v2"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := c.List("")
	if err != nil {
		t.Fatal(err)
	}
	ch := pkgs[0].Channels[0]
	if ch.Head != "" || ch.Err == nil || !strings.Contains(ch.Err.Error(), "multiple channel heads: p.v1, p.v2") {
		t.Errorf("channel %+v", ch)
	}
	res, err := c.Filter(Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failed) != 1 || !strings.Contains(res.Failed[0].Error(), "multiple channel heads") {
		t.Errorf("Filter failed packages %v, want p with multiple channel heads", res.Failed)
	}
}
