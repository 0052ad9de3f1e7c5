package catalog

import (
	"testing"
)

// FuzzParseFile feeds arbitrary files to the FBC parser. Whatever it
// accepts must write out and read back to the same files, and filtering or
// listing it must return, with an error at worst.
func FuzzParseFile(f *testing.F) {
	for _, data := range fixtureFiles(f) {
		f.Add([]byte(data))
	}
	f.Add([]byte(`{"schema":"olm.channel","package":"p","name":"c","entries":[{"name":"a","replaces":"a"},{"name":"b","skips":["b","a"]}]}`))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("{\"schema\":\"x\"}\n{\"schema\":\"x\",\"k\":1e999}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &Catalog{}
		if err := c.ParseFile("fuzz.json", data); err != nil {
			return
		}
		first, err := c.Files()
		if err != nil {
			return // a package name that cannot be a folder
		}
		back := &Catalog{}
		for _, file := range first {
			if err := back.ParseFile(file.Path, file.Data); err != nil {
				t.Fatalf("written file %s does not parse: %v\n%s", file.Path, err, file.Data)
			}
		}
		second, err := back.Files()
		if err != nil {
			t.Fatal(err)
		}
		if len(first) != len(second) {
			t.Fatalf("%d files written, %d after a round trip", len(first), len(second))
		}
		for i := range first {
			if first[i].Path != second[i].Path || string(first[i].Data) != string(second[i].Data) {
				t.Fatalf("round trip changed %s:\n%s\n---\n%s", first[i].Path, first[i].Data, second[i].Data)
			}
		}
		if res, err := c.Filter(Filter{}); err == nil {
			if _, err := res.Catalog.Files(); err != nil {
				t.Fatalf("a filtered catalog does not write: %v", err)
			}
		}
		_, _ = c.List("")
	})
}
