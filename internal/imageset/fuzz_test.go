package imageset

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"sigs.k8s.io/yaml"
)

// FuzzParse checks that no input crashes Parse, and that whatever Parse
// accepts survives a write and re-read unchanged.
func FuzzParse(f *testing.F) {
	f.Add([]byte(full))
	f.Add([]byte(head + "mirror:\n  additionalImages:\n  - &a {name: quay.io/a/b:1}\n  - *a\n"))
	f.Add([]byte(head + "archiveSize: 0x10\nmirror: {platform: {channels: [{name: c, minVersion: 1.0.0}]}}\n"))
	f.Add([]byte("kind: x\n"))
	seeds, _ := filepath.Glob(filepath.Join(corpusDir, "*", "*.yaml"))
	for _, p := range seeds {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.yaml")
		if err != nil {
			return
		}
		if hasValues(cfg) {
			return // helm values round-trip through JSON numbers, not comparable
		}
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatalf("marshal accepted config: %v", err)
		}
		again, err := Parse(out, "again.yaml")
		if err != nil {
			t.Fatalf("re-parse of\n%s\nfailed: %v", out, err)
		}
		cfg.Warnings = nil // the re-read spells every key the usual way
		if !reflect.DeepEqual(cfg, again) {
			t.Fatalf("round trip changed the config:\n%#v\n%#v", cfg, again)
		}
	})
}

func hasValues(cfg *ImageSetConfiguration) bool {
	for _, r := range cfg.Mirror.Helm.Repositories {
		for _, c := range r.Charts {
			if c.Values != nil {
				return true
			}
		}
	}
	for _, c := range cfg.Mirror.Helm.Local {
		if c.Values != nil {
			return true
		}
	}
	return false
}
