package imageset

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The corpus under testdata/corpus is configurations written the way
// oc-mirror's documentation and end-to-end tests write them: valid/ must
// all be accepted and together set every field of every type; each file of
// invalid/ must be refused with the file, line and message its .want file
// gives (<line>\t<text>).
const corpusDir = "testdata/corpus"

func parseAny(data []byte, name string) (any, error) {
	if bytes.Contains(data, []byte(KindDeleteImageSetConfiguration)) {
		return ParseDelete(data, name)
	}
	return Parse(data, name)
}

func TestCorpusValid(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(corpusDir, "valid", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 60 {
		t.Fatalf("%d valid configurations, want at least 60", len(files))
	}
	covered := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := parseAny(data, f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		cover(reflect.ValueOf(cfg).Elem(), covered)
	}
	var missing []string
	for _, k := range allFields(reflect.TypeOf(ImageSetConfiguration{}), reflect.TypeOf(DeleteImageSetConfiguration{})) {
		if !covered[k] {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Errorf("no valid configuration sets %s", strings.Join(missing, ", "))
	}
}

func TestCorpusInvalid(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(corpusDir, "invalid", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 15 {
		t.Fatalf("%d invalid configurations, want at least 15", len(files))
	}
	for _, f := range files {
		want, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + ".want")
		if err != nil {
			t.Fatal(err)
		}
		lineText, text, ok := strings.Cut(strings.TrimSpace(string(want)), "\t")
		line, err := strconv.Atoi(lineText)
		if !ok || err != nil {
			t.Fatalf("%s.want: want <line>\\t<text>", f)
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, err = parseAny(data, f)
		if err == nil {
			t.Errorf("%s was accepted", f)
			continue
		}
		msg := err.Error()
		if loc := fmt.Sprintf("%s:%d: ", f, line); !strings.Contains(msg, loc) || !strings.Contains(msg, text) {
			t.Errorf("%s: error %q\nwant %q and %q", f, msg, loc, text)
		}
	}
}

// cover records Type.Field for every field v sets to a non-zero value.
func cover(v reflect.Value, covered map[string]bool) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if tag := f.Tag.Get("json"); tag == "" || tag == "-" {
				continue
			}
			if !v.Field(i).IsZero() {
				covered[v.Type().Name()+"."+f.Name] = true
			}
			cover(v.Field(i), covered)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			cover(v.Index(i), covered)
		}
	}
}

// allFields lists Type.Field for every decoded field reachable from roots.
func allFields(roots ...reflect.Type) []string {
	seen := map[reflect.Type]bool{}
	var out []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if tag := f.Tag.Get("json"); tag == "" || tag == "-" {
				continue
			}
			out = append(out, t.Name()+"."+f.Name)
			walk(f.Type)
		}
	}
	for _, r := range roots {
		walk(r)
	}
	sort.Strings(out)
	return out
}
