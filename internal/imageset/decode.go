package imageset

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxNodes bounds the work of walking a document, so that alias bombs
// ("billion laughs") fail cleanly instead of exhausting memory.
const maxNodes = 100000

// decoder maps a yaml.Node tree onto the config structs by their json tags,
// strictly, and remembers the line of every field path for later errors.
type decoder struct {
	file  string
	lines map[string]int
	errs  []error
	// warns are spellings oc-mirror accepts that users should fix: a key
	// in another case than the usual one.
	warns []error
	nodes int
	// via is the line of the alias being expanded, if any: errors inside
	// it point there, where the user used the value.
	via int
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, lines: map[string]int{}}
}

func (d *decoder) fail(line int, path, format string, args ...any) {
	d.errs = append(d.errs, &FieldError{File: d.file, Line: line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

// line returns the line of path, or of its closest recorded parent.
func (d *decoder) line(path string) int {
	for path != "" {
		if l, ok := d.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!null":
		return "null"
	case "!!bool":
		return "boolean " + n.Value
	case "!!int", "!!float":
		return "number " + n.Value
	}
	return strconv.Quote(n.Value)
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	d.nodes++
	if d.nodes > maxNodes {
		if d.nodes == maxNodes+1 {
			d.fail(n.Line, path, "document too large or too deeply aliased (more than %d nodes)", maxNodes)
		}
		return
	}
	// The line of an alias is where it is used, not where its anchor is.
	if _, ok := d.lines[path]; !ok {
		d.lines[path] = n.Line
		if d.via > 0 {
			d.lines[path] = d.via
		}
	}
	if n.Kind == yaml.AliasNode {
		outer := d.via
		if outer == 0 {
			d.via = n.Line
		}
		d.decode(n.Alias, v, path)
		d.via = outer
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // absent and null mean the same: the zero value
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n.Line, path, "expected a list, got %s", describe(n))
			return
		}
		if len(n.Content) == 0 {
			return // an empty list and no list mean the same
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!bool" {
			d.fail(n.Line, path, "expected a string, got %s (quote it if it is meant as text)", describe(n))
			return
		}
		// Numbers are kept as written: "minVersion: 4.14" means the text 4.14.
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.fail(n.Line, path, "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int64:
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
			d.fail(n.Line, path, "expected a whole number, got %s", describe(n))
			return
		}
		v.SetInt(i)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(n.Line, path, "expected a mapping, got %s", describe(n))
			return
		}
		m := reflect.New(v.Type())
		if err := n.Decode(m.Interface()); err != nil {
			d.fail(n.Line, path, "%v", err)
			return
		}
		v.Set(m.Elem())
	default:
		panic(fmt.Sprintf("imageset: no decoder for %s", v.Type()))
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n.Line, path, "expected a mapping, got %s", describe(n))
		return
	}
	fields := jsonFields(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key.Kind != yaml.ScalarNode {
			d.fail(key.Line, path, "a field name must be a plain word, got %s", describe(key))
			continue
		}
		name, ok := fieldName(key.Value, fields)
		fpath := join(path, name)
		if !ok {
			d.fail(key.Line, fpath, "unknown field; allowed here: %s%s", strings.Join(sortedKeys(fields), ", "), v1Hint(fpath))
			continue
		}
		if first, dup := seen[name]; dup {
			d.fail(key.Line, fpath, "given twice (first on line %d); keep one", first)
			continue
		}
		seen[name] = key.Line
		if name != key.Value {
			d.warns = append(d.warns, &FieldError{File: d.file, Line: key.Line, Field: fpath,
				Msg: fmt.Sprintf("written %s; read as %s, its usual spelling (keys are matched without regard to case, as oc-mirror reads them)", key.Value, name)})
		}
		idx := fields[name]
		d.lines[fpath] = key.Line
		if d.via > 0 {
			d.lines[fpath] = d.via
		}
		d.decode(val, v.Field(idx), fpath)
	}
}

// v1Hint explains the field that only oc-mirror v1 knew.
func v1Hint(path string) string {
	if path == "storageConfig" {
		return " (storageConfig is oc-mirror v1's; with oc-mirror v2 and Ferry the workspace or archive folder keeps that state, so remove it)"
	}
	return ""
}

// fieldName matches key to a field as encoding/json does, which is how
// oc-mirror decodes: the exact name, else one equal without regard to case.
func fieldName(key string, fields map[string]int) (string, bool) {
	if _, ok := fields[key]; ok {
		return key, true
	}
	for _, f := range sortedKeys(fields) {
		if strings.EqualFold(f, key) {
			return f, true
		}
	}
	return key, false
}

func jsonFields(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "" || name == "-" {
			continue
		}
		m[name] = i
	}
	return m
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
