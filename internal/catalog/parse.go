package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
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

// parseJSON reads a stream of JSON documents held in memory.
func (c *Catalog) parseJSON(name string, data []byte) error {
	return scanJSON(name, bytes.NewReader(data), 0, func(raw []byte, line int) error {
		return c.addDocument(name, line, raw)
	})
}

// scanJSON reads a stream of JSON documents from r and hands each to fn,
// whole, with the line it starts on. It holds one document at a time, not
// the file, and accepts what encoding/json accepts: duplicate keys (the
// last wins) and invalid UTF-8. It reads with jsontext (encoding/json/v2's
// tokenizer), several times faster than encoding/json's scanner at the
// long base64 strings bundles are mostly made of. A syntax error, or a
// document over maxDoc bytes (MaxDocumentBytes when 0), is a *ParseError;
// an error from r or fn is returned as it is.
func scanJSON(name string, r io.Reader, maxDoc int64, fn func(raw []byte, line int) error) error {
	if maxDoc <= 0 {
		maxDoc = MaxDocumentBytes
	}
	lr := &lineReader{r: r, line: 1, maxDoc: maxDoc, first: -1}
	dec := jsontext.NewDecoder(lr, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	for {
		v, err := dec.ReadValue()
		if lr.tooLarge {
			line := 0
			if lr.first >= 0 {
				line = lr.lineAt(lr.first)
			}
			return &ParseError{File: name, Line: line, Err: fmt.Errorf("a document larger than %s, the most one catalog document may hold (real bundles are a few MiB); the catalog is damaged or not a catalog, check where it comes from", mib(maxDoc))}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if lr.err != nil {
			return lr.err
		}
		if err != nil {
			line := 0
			var se *jsontext.SyntacticError
			if errors.As(err, &se) {
				line = lr.lineAt(se.ByteOffset)
				err = se.Err
			}
			return &ParseError{File: name, Line: line, Err: fmt.Errorf("invalid JSON: %w", err)}
		}
		line := lr.lineAt(dec.InputOffset() - int64(len(v)))
		lr.next(dec.InputOffset(), dec.UnreadBuffer())
		if err := fn(v.Clone(), line); err != nil {
			return err
		}
	}
}

// errDocumentTooLarge stops the decoder at a document over the limit
// before it buffers more of it.
var errDocumentTooLarge = errors.New("catalog document too large")

// lineReader passes r through and notes where its newlines are, from the
// last offset asked about on, so that it can tell the line of any later
// offset while holding a few bytes per line rather than the text. It hands
// out at most maxDoc bytes past the end of the last document, so that the
// decoder, which buffers a whole value, never holds more than that of one.
type lineReader struct {
	r    io.Reader
	err  error   // r's error, other than io.EOF
	read int64   // bytes read
	nl   []int64 // offsets of the newlines from mark on
	mark int64
	line int // the line at mark

	maxDoc   int64
	start    int64 // where the last document ended
	first    int64 // the first byte that is not white space from start on; -1: not seen
	tooLarge bool
}

// next says that a document ended at off, and that the decoder holds
// unread, the bytes it has read past it.
func (l *lineReader) next(off int64, unread []byte) {
	l.start, l.first = off, -1
	if i := firstNonSpace(unread); i >= 0 {
		l.first = l.read - int64(len(unread)) + int64(i)
	}
}

func (l *lineReader) Read(p []byte) (int, error) {
	if l.tooLarge {
		return 0, errDocumentTooLarge
	}
	left := l.start + l.maxDoc - l.read
	if left <= 0 {
		l.tooLarge = true
		return 0, errDocumentTooLarge
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	n, err := l.r.Read(p)
	if l.first < 0 {
		if i := firstNonSpace(p[:n]); i >= 0 {
			l.first = l.read + int64(i)
		}
	}
	for i, b := 0, p[:n]; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			break
		}
		l.nl = append(l.nl, l.read+int64(i+j))
		i += j + 1
	}
	l.read += int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		l.err = err
	}
	return n, err
}

// firstNonSpace is the index of the first byte of b that is not JSON
// white space, or -1.
func firstNonSpace(b []byte) int {
	for i, c := range b {
		if !isJSONSpace(c) {
			return i
		}
	}
	return -1
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// lineAt is the 1-based line of offset off, which is never before the last
// one asked about; 0 if it is.
func (l *lineReader) lineAt(off int64) int {
	if off < l.mark {
		return 0
	}
	k, _ := slices.BinarySearch(l.nl, off)
	l.line += k
	l.nl = l.nl[k:]
	l.mark = off
	return l.line
}

// addDocument adds one JSON document, starting on line line of file name.
func (c *Catalog) addDocument(name string, line int, raw []byte) error {
	fields, err := splitObject(raw)
	if err != nil {
		return &ParseError{File: name, Line: line, Err: fmt.Errorf("invalid JSON: %w", err)}
	}
	if err := c.addFields(fields, raw, fmt.Sprintf("%s:%d", name, line)); err != nil {
		return &ParseError{File: name, Line: line, Err: err}
	}
	return nil
}

// splitObject splits a JSON object into its top-level fields, each copied
// out of raw so that keeping a small field does not keep a large document.
// Anything but an object gives nil fields, for addFields to refuse.
func splitObject(raw []byte) (map[string]json.RawMessage, error) {
	dec := jsontext.NewDecoder(bytes.NewBuffer(raw), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	if dec.PeekKind() != '{' {
		return nil, nil
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, err
	}
	fields := map[string]json.RawMessage{}
	for dec.PeekKind() != '}' {
		k, err := dec.ReadToken()
		if err != nil {
			return nil, err
		}
		key := k.String() // before the next read, which invalidates k
		v, err := dec.ReadValue()
		if err != nil {
			return nil, err
		}
		fields[key] = json.RawMessage(v.Clone())
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, err
	}
	return fields, nil
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
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			fields = nil // not an object: addFields says so
		}
		if err := c.addFields(fields, raw, fmt.Sprintf("%s:%d", name, line)); err != nil {
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

// addFields decodes one document, split into its top-level fields, by its
// schema and appends it. raw is the whole document; fields is nil when it
// is not an object.
func (c *Catalog) addFields(fields map[string]json.RawMessage, raw []byte, source string) error {
	if fields == nil {
		return fmt.Errorf("a catalog document must be an object, not %s", jsonKind(raw))
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
		if c.keeps(ch.Package) {
			ch.shareEntries(c.names)
			c.Channels = append(c.Channels, ch)
		}
	case SchemaBundle:
		b, err := decodeBundle(d)
		if err != nil {
			return fmt.Errorf("%s: %w", schema, err)
		}
		if !c.keeps(b.Package) {
			return nil
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
		if c.keeps(dep.Package) {
			c.Deprecations = append(c.Deprecations, dep)
		}
	default:
		m := &Meta{Schema: schema, doc: d}
		if m.Package, err = stringField(fields, "package"); err != nil {
			return err
		}
		if m.Name, err = stringField(fields, "name"); err != nil {
			return err
		}
		if m.Package == "" || c.keeps(m.Package) {
			c.Others = append(c.Others, m)
		}
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

// jsonKind names what a JSON value is, for messages.
func jsonKind(raw []byte) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case 'n':
		return "null"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	default:
		return "a number"
	}
}
