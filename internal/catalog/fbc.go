package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// The FBC schemas this package understands; any other is kept as a Meta.
const (
	SchemaPackage     = "olm.package"
	SchemaChannel     = "olm.channel"
	SchemaBundle      = "olm.bundle"
	SchemaDeprecation = "olm.deprecations"
)

// Catalog is a file-based catalog: every document of every file, by schema.
type Catalog struct {
	Packages     []*Package
	Channels     []*Channel
	Bundles      []*Bundle
	Deprecations []*Deprecation
	Others       []*Meta

	// spool takes the large fields of the bundles parsed into the catalog
	// (see spool.go); nil keeps everything in memory.
	spool *spool
	// keep, when set, names the packages whose documents parsing keeps
	// (see OnlyPackages).
	keep map[string]bool
	// names, when set, gives one copy of each bundle name the channels
	// parsed into the catalog mention.
	names *interner
}

// keeps says whether parsing keeps a document of package pkg.
func (c *Catalog) keeps(pkg string) bool { return c.keep == nil || c.keep[pkg] }

// Package is an olm.package document.
type Package struct {
	Name           string `json:"name"`
	DefaultChannel string `json:"defaultChannel"`
	Description    string `json:"description,omitempty"`
	Icon           *Icon  `json:"icon,omitempty"`
	doc
}

// Icon is a package's icon.
type Icon struct {
	Data      []byte `json:"base64data"`
	MediaType string `json:"mediatype"`
}

// Channel is an olm.channel document.
type Channel struct {
	Name    string         `json:"name"`
	Package string         `json:"package"`
	Entries []ChannelEntry `json:"entries"`
	doc
}

// ChannelEntry is one bundle of a channel and the upgrade edges into it.
type ChannelEntry struct {
	Name      string   `json:"name"`
	Replaces  string   `json:"replaces,omitempty"`
	Skips     []string `json:"skips,omitempty"`
	SkipRange string   `json:"skipRange,omitempty"`
	raw       json.RawMessage
}

// UnmarshalJSON keeps the entry as read besides its parsed fields.
func (e *ChannelEntry) UnmarshalJSON(b []byte) error {
	type plain ChannelEntry
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*e = ChannelEntry(p)
	e.raw = append(json.RawMessage(nil), b...)
	return nil
}

// shareEntries makes the channel hold its entries once. Each entry's raw
// bytes become a slice of the document's own entries field, which is kept
// anyway, instead of a copy (UnmarshalJSON must copy what it keeps), and
// the bundle names they mention, repeated across a package's channels,
// come from names. Only bytes equal to the copy replace it, so what is
// written stays what was read. A full filter keeps every channel: this
// takes about two fifths off what they hold.
func (ch *Channel) shareEntries(names *interner) {
	for i := range ch.Entries {
		e := &ch.Entries[i]
		e.Name = names.get(e.Name)
		e.Replaces = names.get(e.Replaces)
		for j, s := range e.Skips {
			e.Skips[j] = names.get(s)
		}
	}
	var key string
	for k := range ch.fields {
		if strings.EqualFold(k, "entries") {
			if key != "" {
				return // which one json.Unmarshal read is its business
			}
			key = k
		}
	}
	buf := ch.fields[key]
	dec := jsontext.NewDecoder(bytes.NewReader(buf), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	if dec.PeekKind() != '[' {
		return
	}
	if _, err := dec.ReadToken(); err != nil {
		return
	}
	for i := 0; i < len(ch.Entries) && dec.PeekKind() != ']'; i++ {
		v, err := dec.ReadValue()
		if err != nil {
			return
		}
		end := dec.InputOffset()
		start := end - int64(len(v))
		if start < 0 || end > int64(len(buf)) || !bytes.Equal(buf[start:end], ch.Entries[i].raw) {
			return
		}
		ch.Entries[i].raw = buf[start:end:end]
	}
}

// interner hands out one copy of each string it is given, safe for the
// parsers of a catalog to share.
type interner struct {
	mu sync.Mutex
	m  map[string]string
}

// get returns the copy of s; a nil interner returns s.
func (in *interner) get(s string) string {
	if in == nil || s == "" {
		return s
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if c, ok := in.m[s]; ok {
		return c
	}
	if in.m == nil {
		in.m = map[string]string{}
	}
	in.m[s] = s
	return s
}

// MarshalJSON writes the entry as read.
func (e ChannelEntry) MarshalJSON() ([]byte, error) {
	if e.raw != nil {
		return e.raw, nil
	}
	type plain ChannelEntry
	return json.Marshal(plain(e))
}

// Bundle is an olm.bundle document. Bundles are never modified by a filter,
// so only the fields the filter and the mirroring need are parsed.
type Bundle struct {
	Name          string         `json:"name"`
	Package       string         `json:"package"`
	Image         string         `json:"image"`
	RelatedImages []RelatedImage `json:"relatedImages,omitempty"`
	// Version is the version of its olm.package property, "" when missing.
	Version string `json:"-"`
	doc
}

// RelatedImage is an image a bundle needs on the cluster.
type RelatedImage struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

// Property is one entry of a document's properties.
type Property struct {
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
}

// Properties returns the bundle's properties; they are parsed on demand
// because olm.bundle.object properties can be large.
func (b *Bundle) Properties() ([]Property, error) {
	fields, err := b.allFields()
	if err != nil {
		return nil, fmt.Errorf("bundle %s properties: %w", b.Name, err)
	}
	var raw json.RawMessage
	for k, v := range fields {
		if strings.EqualFold(k, "properties") {
			raw = v
		}
	}
	if raw == nil {
		return nil, nil
	}
	props, err := parseProperties(raw)
	if err != nil {
		return nil, fmt.Errorf("bundle %s properties: %w", b.Name, err)
	}
	return props, nil
}

// parseProperties reads a properties list with jsontext, one fast pass
// over values that are mostly long base64 strings. Any shape but the usual
// one (an array of objects whose "type" is a string) goes to
// encoding/json, so that what is accepted and the errors stay its own.
func parseProperties(raw []byte) ([]Property, error) {
	if props, ok := parsePropertiesFast(raw); ok {
		return props, nil
	}
	var props []Property
	if err := json.Unmarshal(raw, &props); err != nil {
		return nil, err
	}
	return props, nil
}

func parsePropertiesFast(raw []byte) ([]Property, bool) {
	dec := jsontext.NewDecoder(bytes.NewBuffer(raw), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	if dec.PeekKind() != '[' {
		return nil, false
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, false
	}
	props := []Property{}
	for dec.PeekKind() == '{' {
		if _, err := dec.ReadToken(); err != nil {
			return nil, false
		}
		var p Property
		for dec.PeekKind() != '}' {
			k, err := dec.ReadToken()
			if err != nil {
				return nil, false
			}
			// encoding/json matches field names ignoring case.
			switch key := k.String(); {
			case strings.EqualFold(key, "type"):
				if dec.PeekKind() != '"' {
					return nil, false
				}
				t, err := dec.ReadToken()
				if err != nil {
					return nil, false
				}
				p.Type = t.String()
			case strings.EqualFold(key, "value"):
				v, err := dec.ReadValue()
				if err != nil {
					return nil, false
				}
				p.Value = json.RawMessage(v.Clone())
			default:
				if err := dec.SkipValue(); err != nil {
					return nil, false
				}
			}
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, false
		}
		props = append(props, p)
	}
	if dec.PeekKind() != ']' {
		return nil, false
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, false
	}
	// Nothing may follow the array.
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, false
	}
	return props, true
}

// Deprecation is an olm.deprecations document.
type Deprecation struct {
	Package string             `json:"package"`
	Entries []DeprecationEntry `json:"entries"`
	doc
}

// DeprecationEntry deprecates the package, one channel or one bundle.
type DeprecationEntry struct {
	Reference Reference `json:"reference"`
	Message   string    `json:"message"`
	raw       json.RawMessage
}

// Reference names what a deprecation entry is about.
type Reference struct {
	Schema string `json:"schema"`
	Name   string `json:"name,omitempty"`
}

// UnmarshalJSON keeps the entry as read besides its parsed fields.
func (e *DeprecationEntry) UnmarshalJSON(b []byte) error {
	type plain DeprecationEntry
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*e = DeprecationEntry(p)
	e.raw = append(json.RawMessage(nil), b...)
	return nil
}

// MarshalJSON writes the entry as read.
func (e DeprecationEntry) MarshalJSON() ([]byte, error) {
	if e.raw != nil {
		return e.raw, nil
	}
	type plain DeprecationEntry
	return json.Marshal(plain(e))
}

// Meta is a document of a schema this package does not know, kept as read.
type Meta struct {
	Schema  string
	Package string
	Name    string
	doc
}

// doc is what every document keeps: its fields as read, and where it was read.
type doc struct {
	fields map[string]json.RawMessage
	// big is a large field kept in a spool instead of fields (see
	// spool.go); nil when none.
	big *spilled
	// Source is "file:line" of the document, for error messages.
	Source string `json:"-"`
}

// clone copies the field map so a filtered copy can change fields without
// touching the catalog it came from.
func (d doc) clone() doc {
	f := make(map[string]json.RawMessage, len(d.fields))
	for k, v := range d.fields {
		f[k] = v
	}
	return doc{fields: f, big: d.big, Source: d.Source}
}

// set replaces a field, dropping any spelling of its key that differs only
// in case (json.Unmarshal matched it case-insensitively when reading).
func (d *doc) set(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	for k := range d.fields {
		if strings.EqualFold(k, key) {
			delete(d.fields, k)
		}
	}
	if d.big != nil && strings.EqualFold(d.big.key, key) {
		d.big = nil
	}
	d.fields[key] = b
	return nil
}

// encode writes the document as indented JSON with sorted keys; nested
// values keep the order they were read in, so the same input always gives
// the same bytes.
func (d doc) encode() ([]byte, error) {
	fields, err := d.allFields()
	if err != nil {
		return nil, err
	}
	compact, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact, "", "    "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// withDefaultChannel returns a copy of p with its default channel set.
func (p *Package) withDefaultChannel(ch string) (*Package, error) {
	q := *p
	q.doc = p.clone()
	q.DefaultChannel = ch
	if err := q.set("defaultChannel", ch); err != nil {
		return nil, err
	}
	return &q, nil
}

// withEntries returns a copy of c holding only the given entries.
func (c *Channel) withEntries(entries []ChannelEntry) (*Channel, error) {
	q := *c
	q.doc = c.clone()
	// Copied, so that the few entries kept do not hold on to the whole
	// entries field of c that shareEntries made them slices of.
	q.Entries = make([]ChannelEntry, len(entries))
	for i, e := range entries {
		e.raw = bytes.Clone(e.raw)
		q.Entries[i] = e
	}
	if err := q.set("entries", q.Entries); err != nil {
		return nil, err
	}
	return &q, nil
}

// withEntries returns a copy of d holding only the given entries.
func (d *Deprecation) withEntries(entries []DeprecationEntry) (*Deprecation, error) {
	q := *d
	q.doc = d.clone()
	q.Entries = entries
	if err := q.set("entries", entries); err != nil {
		return nil, err
	}
	return &q, nil
}
