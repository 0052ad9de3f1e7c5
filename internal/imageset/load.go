package imageset

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxErrors keeps a badly broken file from burying the first problems.
const maxErrors = 20

// Load reads, strictly decodes and validates an ImageSetConfiguration file.
func Load(path string) (*ImageSetConfiguration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read image set configuration: %w", err)
	}
	return Parse(data, path)
}

// Parse strictly decodes and validates an ImageSetConfiguration; name is
// used in error messages (normally the file path). Errors are *FieldError
// values, several joined with errors.Join when the file has several problems.
func Parse(data []byte, name string) (*ImageSetConfiguration, error) {
	var cfg ImageSetConfiguration
	d, err := decodeFile(data, name, KindImageSetConfiguration, "mirror", &cfg)
	if err != nil {
		return nil, err
	}
	v := &validator{decoder: d}
	v.archiveSize(cfg.ArchiveSize)
	v.mirror(&cfg.Mirror, "mirror")
	if err := d.err(); err != nil {
		return nil, err
	}
	complete(&cfg.Mirror.Platform)
	m := &cfg.Mirror
	trimDocker(&m.Platform, m.Operators, m.AdditionalImages, m.Samples)
	cfg.Warnings = d.warns
	return &cfg, nil
}

// LoadDelete reads, strictly decodes and validates a DeleteImageSetConfiguration file.
func LoadDelete(path string) (*DeleteImageSetConfiguration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read delete image set configuration: %w", err)
	}
	return ParseDelete(data, path)
}

// ParseDelete strictly decodes and validates a DeleteImageSetConfiguration.
func ParseDelete(data []byte, name string) (*DeleteImageSetConfiguration, error) {
	var cfg DeleteImageSetConfiguration
	d, err := decodeFile(data, name, KindDeleteImageSetConfiguration, "delete", &cfg)
	if err != nil {
		return nil, err
	}
	v := &validator{decoder: d}
	v.delete(&cfg.Delete, "delete")
	if err := d.err(); err != nil {
		return nil, err
	}
	complete(&cfg.Delete.Platform)
	dl := &cfg.Delete
	trimDocker(&dl.Platform, dl.Operators, dl.AdditionalImages, dl.Samples)
	cfg.Warnings = d.warns
	return &cfg, nil
}

// ArchiveSizeBytes is archiveSize in bytes, or 0 when it is unset.
func (c *ImageSetConfiguration) ArchiveSizeBytes() int64 {
	return c.ArchiveSize << 30
}

// trimDocker drops the docker:// prefix oc-mirror users may write before a
// registry reference, so consumers see plain references; oci:// stays.
func trimDocker(p *Platform, ops []Operator, imgs ...[]AdditionalImage) {
	p.Release = strings.TrimPrefix(p.Release, "docker://")
	for i := range ops {
		ops[i].Catalog = strings.TrimPrefix(ops[i].Catalog, "docker://")
	}
	for _, list := range imgs {
		for i := range list {
			list[i].Name = strings.TrimPrefix(list[i].Name, "docker://")
		}
	}
}

// complete fills the defaults oc-mirror documents, so consumers need not.
func complete(p *Platform) {
	for i := range p.Channels {
		if p.Channels[i].Type == "" {
			p.Channels[i].Type = "ocp"
		}
	}
	if len(p.Architectures) == 0 && len(p.Platforms) == 0 && (len(p.Channels) > 0 || p.Release != "") {
		p.Architectures = []string{"amd64"}
	}
}

func (d *decoder) err() error {
	if len(d.errs) == 0 {
		return nil
	}
	if len(d.errs) == 1 {
		return d.errs[0]
	}
	errs := d.errs
	if len(errs) > maxErrors {
		errs = append(errs[:maxErrors:maxErrors], fmt.Errorf("%s: and %d more problems", d.file, len(d.errs)-maxErrors))
	}
	return errors.Join(errs...)
}

// decodeFile checks the document's shape, apiVersion and kind, then decodes
// it strictly into out. section is the stanza the kind requires.
func decodeFile(data []byte, name, kind, section string, out any) (*decoder, error) {
	d := newDecoder(name)
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%s: file is empty; it needs apiVersion: %s, kind: %s and a %s: section", name, APIVersion, kind, section)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: file holds no YAML document; it needs apiVersion: %s, kind: %s and a %s: section", name, APIVersion, kind, section)
	} else if err != nil {
		return nil, fmt.Errorf("%s: not valid YAML: %w", name, err)
	}
	// Empty documents after the first (a trailing ---) are tolerated, as
	// oc-mirror does; a second configuration is refused, where oc-mirror
	// would drop it without a word.
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: not valid YAML: %w", name, err)
		}
		if len(next.Content) == 0 || (next.Content[0].Kind == yaml.ScalarNode && next.Content[0].ShortTag() == "!!null") {
			continue
		}
		return nil, &FieldError{File: name, Line: next.Content[0].Line, Msg: "holds more than one YAML document; put one configuration per file"}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &FieldError{File: name, Line: root.Line, Msg: fmt.Sprintf("expected a mapping with apiVersion, kind and %s, got %s", section, describe(root))}
	}
	if err := checkTypeMeta(root, name, kind, section); err != nil {
		return nil, err
	}
	d.decode(root, reflect.ValueOf(out).Elem(), "")
	if err := d.err(); err != nil {
		return nil, err
	}
	return d, nil
}

func lookup(m *yaml.Node, key string) (k, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Kind == yaml.ScalarNode && m.Content[i].Value == key {
			return m.Content[i], m.Content[i+1]
		}
	}
	return nil, nil
}

// caseHint explains a top-level key written in another case: oc-mirror
// looks kind and the mirror or delete stanza up by their exact names
// (only the fields under them are matched without regard to case).
func caseHint(m *yaml.Node, key string) string {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && strings.EqualFold(k.Value, key) {
			return fmt.Sprintf(" (line %d has %s: oc-mirror reads %s only in this spelling)", k.Line, k.Value, key)
		}
	}
	return ""
}

// checkTypeMeta reports a wrong apiVersion or kind before anything else,
// because with those wrong every other error would be noise.
func checkTypeMeta(root *yaml.Node, name, kind, section string) error {
	// apiVersion is decoded as any field (oc-mirror does not look it up
	// by name), so any case does.
	_, av := lookup(root, "apiVersion")
	for i := 0; av == nil && i+1 < len(root.Content); i += 2 {
		if k := root.Content[i]; k.Kind == yaml.ScalarNode && strings.EqualFold(k.Value, "apiVersion") {
			av = root.Content[i+1]
		}
	}
	switch {
	case av == nil:
		return &FieldError{File: name, Line: root.Line, Field: "apiVersion", Msg: fmt.Sprintf("missing; set apiVersion: %s", APIVersion)}
	case av.Value == legacyAPIVersion:
		// oc-mirror v2 reads v1alpha2 files that use the v2 layout (its
		// own tests do), so Ferry does too; v1-only fields still fail.
	case av.Value != APIVersion:
		return &FieldError{File: name, Line: av.Line, Field: "apiVersion", Msg: fmt.Sprintf("%q is not supported; the accepted value is %s", av.Value, APIVersion)}
	}
	_, k := lookup(root, "kind")
	switch {
	case k == nil:
		return &FieldError{File: name, Line: root.Line, Field: "kind", Msg: fmt.Sprintf("missing; set kind: %s%s", kind, caseHint(root, "kind"))}
	case k.Value == KindDeleteImageSetConfiguration && kind == KindImageSetConfiguration:
		return &FieldError{File: name, Line: k.Line, Field: "kind", Msg: fmt.Sprintf("this file is a %s, which is read by ferry delete; ferry mirror needs kind: %s", k.Value, kind)}
	case k.Value == KindImageSetConfiguration && kind == KindDeleteImageSetConfiguration:
		return &FieldError{File: name, Line: k.Line, Field: "kind", Msg: fmt.Sprintf("this file is an %s, which is read by ferry mirror; ferry delete needs kind: %s", k.Value, kind)}
	case k.Value != kind:
		return &FieldError{File: name, Line: k.Line, Field: "kind", Msg: fmt.Sprintf("%q is not supported here; the accepted value is %s", k.Value, kind)}
	}
	if ks, _ := lookup(root, section); ks == nil {
		return &FieldError{File: name, Line: root.Line, Field: section, Msg: fmt.Sprintf("missing; a %s needs a %s: section saying what to %s%s", kind, section, section, caseHint(root, section))}
	}
	return nil
}
