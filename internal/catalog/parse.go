package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ParseError is an FBC document that cannot be read, with where it is.
type ParseError struct {
	File string
	Line int // 1-based; 0 when unknown
	Err  error
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// ParseFile parses every FBC document of one file into c. Like opm, a file
// whose first non-blank byte is '{' is a stream of JSON objects; anything
// else is YAML, one or many documents separated by "---".
func (c *Catalog) ParseFile(name string, data []byte) error {
	data = bytes.TrimPrefix(data, []byte("\ufeff")) // a byte order mark some editors write
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil
	}
	if trimmed[0] == '{' {
		return c.parseJSON(name, data)
	}
	return c.parseYAML(name, data)
}

func (c *Catalog) parseJSON(name string, data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		start := skipSpace(data, int(dec.InputOffset()))
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			off := start
			var se *json.SyntaxError
			if errors.As(err, &se) {
				off = int(se.Offset)
			}
			return &ParseError{File: name, Line: lineAt(data, off), Err: fmt.Errorf("invalid JSON: %w", err)}
		}
		line := lineAt(data, start)
		if err := c.add(raw, fmt.Sprintf("%s:%d", name, line)); err != nil {
			return &ParseError{File: name, Line: line, Err: err}
		}
	}
}

func (c *Catalog) parseYAML(name string, data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var node yaml.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return &ParseError{File: name, Line: yamlErrorLine(err), Err: fmt.Errorf("invalid YAML: %w", err)}
		}
		line := node.Line
		if len(node.Content) == 1 {
			line = node.Content[0].Line
		}
		timestampsAsText(&node)
		var v any
		if err := node.Decode(&v); err != nil {
			return &ParseError{File: name, Line: line, Err: fmt.Errorf("invalid YAML: %w", err)}
		}
		if v == nil { // an empty document, as after a trailing "---"
			continue
		}
		raw, err := json.Marshal(jsonable(v))
		if err != nil {
			return &ParseError{File: name, Line: line, Err: fmt.Errorf("document cannot be expressed as JSON: %w", err)}
		}
		if err := c.add(raw, fmt.Sprintf("%s:%d", name, line)); err != nil {
			return &ParseError{File: name, Line: line, Err: err}
		}
	}
}

// yamlErrorLine finds the line yaml.v3 names in its message ("yaml: line
// 6: ..."); it exposes it nowhere else.
func yamlErrorLine(err error) int {
	m := yamlLine.FindStringSubmatch(err.Error())
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

var yamlLine = regexp.MustCompile(`\bline (\d+)\b`)

// timestampsAsText keeps unquoted dates as the text they are, as opm's YAML
// reader (YAML 1.1 through sigs.k8s.io/yaml) does, instead of turning them
// into times.
func timestampsAsText(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!timestamp" {
		n.Tag = "!!str"
	}
	for _, c := range n.Content {
		timestampsAsText(c)
	}
}

// jsonable turns what yaml.v3 decodes into what encoding/json can write:
// map keys become strings, the way Kubernetes' YAML-to-JSON conversion does.
func jsonable(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = jsonable(e)
		}
		return t
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case []any:
		for i, e := range t {
			t[i] = jsonable(e)
		}
		return t
	default:
		return v
	}
}

// add decodes one document by its schema and appends it.
func (c *Catalog) add(raw json.RawMessage, source string) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return fmt.Errorf("a catalog document must be an object: %w", err)
	}
	if fields == nil {
		return errors.New("a catalog document must be an object, not null")
	}
	schema, err := stringField(fields, "schema")
	if err != nil {
		return err
	}
	d := doc{fields: fields, Source: source}
	switch schema {
	case "":
		return errors.New(`document has no "schema" field; every FBC document needs one, like "schema": "olm.bundle"`)
	case SchemaPackage:
		p := &Package{}
		if err := json.Unmarshal(raw, p); err != nil {
			return fmt.Errorf("%s: %w", schema, err)
		}
		if p.Name == "" {
			return errors.New(`olm.package has no "name"`)
		}
		p.doc = d
		c.Packages = append(c.Packages, p)
	case SchemaChannel:
		ch := &Channel{}
		if err := json.Unmarshal(raw, ch); err != nil {
			return fmt.Errorf("%s: %w", schema, err)
		}
		if ch.Name == "" || ch.Package == "" {
			return errors.New(`olm.channel needs both "name" and "package"`)
		}
		for i, e := range ch.Entries {
			if e.Name == "" {
				return fmt.Errorf(`olm.channel %s entry %d has no "name"`, ch.Name, i)
			}
		}
		ch.doc = d
		c.Channels = append(c.Channels, ch)
	case SchemaBundle:
		b, err := decodeBundle(d)
		if err != nil {
			return fmt.Errorf("%s: %w", schema, err)
		}
		// Decoded: the properties are needed again only to write the
		// bundle out, if a filter keeps it.
		if err := b.doc.spill(c.spool, "properties"); err != nil {
			return err
		}
		c.Bundles = append(c.Bundles, b)
	case SchemaDeprecation:
		dep := &Deprecation{}
		if err := json.Unmarshal(raw, dep); err != nil {
			return fmt.Errorf("%s: %w", schema, err)
		}
		if dep.Package == "" {
			return errors.New(`olm.deprecations has no "package"`)
		}
		dep.doc = d
		c.Deprecations = append(c.Deprecations, dep)
	default:
		m := &Meta{Schema: schema, doc: d}
		if m.Package, err = stringField(fields, "package"); err != nil {
			return err
		}
		if m.Name, err = stringField(fields, "name"); err != nil {
			return err
		}
		c.Others = append(c.Others, m)
	}
	return nil
}

// stringField finds a top-level key case-insensitively, as opm does for
// schema, package and name.
func stringField(fields map[string]json.RawMessage, key string) (string, error) {
	var found []string
	for k := range fields {
		if strings.EqualFold(k, key) {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", fmt.Errorf("duplicate keys for %q: %v", key, found)
	}
	var s string
	if err := json.Unmarshal(fields[found[0]], &s); err != nil {
		return "", fmt.Errorf("%q must be a string", found[0])
	}
	return s, nil
}

// decodeBundle fills a Bundle from the fields already split out, field by
// field: bundles make up most of a catalog, and most of a bundle is its
// properties, so they are scanned once, not once more for the struct.
func decodeBundle(d doc) (*Bundle, error) {
	b := &Bundle{doc: d}
	for k, v := range d.fields {
		var dst any
		switch strings.ToLower(k) {
		case "name":
			dst = &b.Name
		case "package":
			dst = &b.Package
		case "image":
			dst = &b.Image
		case "relatedimages":
			dst = &b.RelatedImages
		default:
			continue
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return nil, fmt.Errorf("field %s: %w", k, err)
		}
	}
	if b.Name == "" || b.Package == "" {
		return nil, errors.New(`olm.bundle needs both "name" and "package"`)
	}
	props, err := b.Properties()
	if err != nil {
		return nil, err
	}
	for _, p := range props {
		if p.Type != SchemaPackage {
			continue
		}
		var v struct {
			PackageName string `json:"packageName"`
			Version     string `json:"version"`
		}
		if err := json.Unmarshal(p.Value, &v); err != nil {
			return nil, fmt.Errorf("bundle %s: olm.package property: %w", b.Name, err)
		}
		b.Version = v.Version
		break
	}
	return b, nil
}

func skipSpace(data []byte, off int) int {
	for off < len(data) && strings.IndexByte(" \t\r\n", data[off]) >= 0 {
		off++
	}
	return off
}

// lineAt is the 1-based line of byte offset off.
func lineAt(data []byte, off int) int {
	if off > len(data) {
		off = len(data)
	}
	return bytes.Count(data[:off], []byte{'\n'}) + 1
}
