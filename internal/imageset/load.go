package imageset

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"

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
	return &cfg, nil
}

// ArchiveSizeBytes is archiveSize in bytes, or 0 when it is unset.
func (c *ImageSetConfiguration) ArchiveSizeBytes() int64 {
	return c.ArchiveSize << 30
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
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		line := next.Line
		if len(next.Content) > 0 {
			line = next.Content[0].Line
		}
		return nil, &FieldError{File: name, Line: line, Msg: "holds more than one YAML document; put one configuration per file"}
	case !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("%s: not valid YAML: %w", name, err)
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

// checkTypeMeta reports a wrong apiVersion or kind before anything else,
// because with those wrong every other error would be noise.
func checkTypeMeta(root *yaml.Node, name, kind, section string) error {
	_, av := lookup(root, "apiVersion")
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
		return &FieldError{File: name, Line: root.Line, Field: "kind", Msg: fmt.Sprintf("missing; set kind: %s", kind)}
	case k.Value == KindDeleteImageSetConfiguration && kind == KindImageSetConfiguration:
		return &FieldError{File: name, Line: k.Line, Field: "kind", Msg: fmt.Sprintf("this file is a %s, which is read by ferry delete; ferry mirror needs kind: %s", k.Value, kind)}
	case k.Value == KindImageSetConfiguration && kind == KindDeleteImageSetConfiguration:
		return &FieldError{File: name, Line: k.Line, Field: "kind", Msg: fmt.Sprintf("this file is an %s, which is read by ferry mirror; ferry delete needs kind: %s", k.Value, kind)}
	case k.Value != kind:
		return &FieldError{File: name, Line: k.Line, Field: "kind", Msg: fmt.Sprintf("%q is not supported here; the accepted value is %s", k.Value, kind)}
	}
	if ks, _ := lookup(root, section); ks == nil {
		return &FieldError{File: name, Line: root.Line, Field: section, Msg: fmt.Sprintf("missing; a %s needs a %s: section saying what to %s", kind, section, section)}
	}
	return nil
}
