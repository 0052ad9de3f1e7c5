package helm

import (
	"bytes"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzImages feeds arbitrary templates and values, the chart author's
// input, through rendering and discovery: errors are fine, panics and
// hangs are not.
func FuzzImages(f *testing.F) {
	f.Add("image: {{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}", "image:\n  repository: r.example.com/a\n  tag: \"1\"\n", "{.spec.containers[*].image}")
	f.Add("{{ include \"x\" . }}{{ define \"x\" }}{{ include \"x\" . }}{{ end }}", "a: [1, 2]", ".a[0]")
	f.Add("spec:\n  containers:\n  - image: {{ tpl .Values.t . }}", "t: \"{{ .Values.t }}\"", "")
	f.Fuzz(func(t *testing.T, tmpl, values, path string) {
		var v map[string]any
		_ = yaml.Unmarshal([]byte(values), &v)
		c := &Chart{Name: "f", Version: "1.0.0", AppVersion: "1", Values: v, Templates: []File{{Name: "templates/t.yaml", Data: []byte(tmpl)}}}
		if c.Values == nil {
			c.Values = map[string]any{}
		}
		_, _ = Images(c, nil, []string{path})
	})
}

// FuzzLoadArchive reads arbitrary bytes as a chart archive.
func FuzzLoadArchive(f *testing.F) {
	var buf bytes.Buffer
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = LoadArchive(bytes.NewReader(data))
	})
}
