package helm

import (
	"testing"
)

// FuzzLoadArchive reads arbitrary bytes as a chart archive: errors are
// fine, panics and hangs are not.
func FuzzLoadArchive(f *testing.F) {
	f.Add([]byte("not gzip"))
	f.Add(tgz(f, "a", map[string][]byte{"Chart.yaml": []byte("apiVersion: v2\nname: a\nversion: 1.0.0\n")}))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = LoadArchive(data)
	})
}

// FuzzImages searches arbitrary rendered output at an arbitrary path.
func FuzzImages(f *testing.F) {
	f.Add("spec:\n  containers:\n  - image: registry.example.com/a:1\n", "{.spec.containers[*].image}")
	f.Add("a: [1, 2]\n---\nb: {c: d}\n", ".a[0]")
	f.Fuzz(func(t *testing.T, manifest, path string) {
		_, _ = Images([]Manifest{{Template: "t.yaml", Content: manifest}}, []string{path})
	})
}
