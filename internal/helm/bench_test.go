package helm

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkImages renders a chart shaped like a mid-size application
// chart: helpers, 20 deployments, values with 20 image blocks.
func BenchmarkImages(b *testing.B) {
	var values, helpers strings.Builder
	helpers.WriteString(`{{- define "img" -}}{{ .registry }}/{{ .repository }}:{{ .tag | default "1.0" }}{{- end -}}`)
	c := &Chart{Name: "bench", Version: "1.0.0", AppVersion: "1.0", Values: map[string]any{}}
	for i := range 20 {
		fmt.Fprintf(&values, "c%d:\n  image:\n    registry: registry.example.com\n    repository: team/c%d\n    tag: \"%d\"\n", i, i, i)
		c.Templates = append(c.Templates, File{Name: fmt.Sprintf("templates/c%d.yaml", i), Data: []byte(fmt.Sprintf(
			"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-c%d\n  labels: {{- toYaml .Values.c%d | nindent 4 }}\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        image: {{ include \"img\" .Values.c%d.image | quote }}\n", i, i, i))})
	}
	c.Templates = append(c.Templates, File{Name: "templates/_helpers.tpl", Data: []byte(helpers.String())})
	var err error
	if c.Values, err = parseValues([]byte(values.String())); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		imgs, err := Images(c, nil, nil)
		if err != nil || len(imgs) != 20 {
			b.Fatalf("%d images, %v", len(imgs), err)
		}
	}
}
