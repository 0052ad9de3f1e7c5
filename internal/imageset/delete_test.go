package imageset

import (
	"errors"
	"strings"
	"testing"
)

func TestParseDelete(t *testing.T) {
	doc := `apiVersion: mirror.openshift.io/v2alpha1
kind: DeleteImageSetConfiguration
delete:
  platform:
    channels:
    - name: stable-4.15
      minVersion: 4.15.1
      maxVersion: 4.15.3
  operators:
  - catalog: registry.redhat.io/redhat/redhat-operator-index:v4.15
    packages:
    - name: aws-load-balancer-operator
  additionalImages:
  - name: registry.redhat.io/ubi8/ubi:latest
`
	cfg, err := ParseDelete([]byte(doc), "delete.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Delete
	if d.Platform.Channels[0].MaxVersion != "4.15.3" || d.Platform.Architectures[0] != "amd64" || d.Operators[0].Packages[0].Name != "aws-load-balancer-operator" || d.AdditionalImages[0].Name != "registry.redhat.io/ubi8/ubi:latest" {
		t.Errorf("delete = %+v", d)
	}
}

func TestParseDeleteErrors(t *testing.T) {
	const dh = "apiVersion: mirror.openshift.io/v2alpha1\nkind: DeleteImageSetConfiguration\n"
	for _, tc := range []struct{ name, doc, want string }{
		{"mirror kind", head + "mirror: {}\n", "delete.yaml:2: kind: this file is an ImageSetConfiguration, which is read by ferry mirror"},
		{"missing delete", dh, "delete.yaml:1: delete: missing"},
		{"mirror section", dh + "delete: {}\nmirror: {}\n", "delete.yaml:4: mirror: unknown field; allowed here: apiVersion, delete, kind"},
		{"blockedImages", dh + "delete:\n  blockedImages: []\n", "delete.yaml:4: delete.blockedImages: unknown field"},
		{"archiveSize", dh + "archiveSize: 1\ndelete: {}\n", "delete.yaml:3: archiveSize: unknown field"},
		{"bad version", dh + "delete:\n  platform:\n    channels:\n    - name: stable-4.15\n      maxVersion: 4.x\n", "delete.yaml:7: delete.platform.channels[0].maxVersion: \"4.x\" is not a semantic version"},
		{"duplicate catalog", dh + "delete:\n  operators:\n  - catalog: quay.io/a/b:1\n  - catalog: quay.io/a/b:1\n", "delete.yaml:6: delete.operators[1].catalog: catalog \"quay.io/a/b:1\" is listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseDelete([]byte(tc.doc), "delete.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseDelete error = %v\nwant one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseDocumentErrors(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"empty", "  \n", "isc.yaml: file is empty; it needs apiVersion: mirror.openshift.io/v2alpha1"},
		{"comment only", "# nothing\n", "isc.yaml: file holds no YAML document"},
		{"bad yaml", head + "mirror:\n  platform: {\n", "isc.yaml: not valid YAML: yaml: line 4"},
		{"two documents", head + "mirror: {}\n---\n" + head + "mirror: {}\n", "isc.yaml:5: holds more than one YAML document"},
		{"list at top", "- a\n- b\n", "isc.yaml:1: expected a mapping with apiVersion, kind and mirror, got a list"},
		{"non-scalar key", head + "mirror:\n  ? [a]\n  : b\n", "isc.yaml:4: mirror: a field name must be a plain word"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), "isc.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse error = %v\nwant one containing %q", err, tc.want)
			}
		})
	}
}

// TestParseReportsAllProblems checks that one run shows every problem, so
// a user fixes the file in one pass.
func TestParseReportsAllProblems(t *testing.T) {
	doc := head + "mirror:\n  platform:\n    architectures: [x86]\n  additionalImages:\n  - name: \"\"\n  blockedImages:\n  - name: \"(\"\n"
	_, err := Parse([]byte(doc), "isc.yaml")
	if err == nil {
		t.Fatal("Parse accepted it")
	}
	for _, want := range []string{"isc.yaml:5: mirror.platform.architectures[0]", "isc.yaml:7: mirror.additionalImages[0].name", "isc.yaml:9: mirror.blockedImages[0].name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\ndoes not report %q", err, want)
		}
	}
	var many interface{ Unwrap() []error }
	if !errors.As(err, &many) || len(many.Unwrap()) != 3 {
		t.Errorf("want 3 joined errors, got %v", err)
	}
}

// TestParseRejectsAliasBomb feeds a small file whose aliases expand to a
// million channels; Parse must refuse it instead of exhausting memory.
func TestParseRejectsAliasBomb(t *testing.T) {
	aliases := func(name string) string { return strings.Repeat(", *"+name, 99) }
	doc := head + "mirror:\n  operators:\n  - &op {catalog: quay.io/a/b:1, packages: [&pkg {name: p, channels: [&ch {name: c}" +
		aliases("ch") + "]}" + aliases("pkg") + "]}\n" + strings.Repeat("  - *op\n", 99)
	if len(doc) > 10000 {
		t.Fatalf("bomb is %d bytes, meant to be small", len(doc))
	}
	_, err := Parse([]byte(doc), "isc.yaml")
	if err == nil || !strings.Contains(err.Error(), "too deeply aliased") {
		t.Fatalf("Parse of an alias bomb = %v, want a size error", err)
	}
}
