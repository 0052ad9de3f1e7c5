package helm

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeChart writes files (path inside the chart -> content) as a chart
// folder and loads it.
func writeChart(t *testing.T, files map[string]string) *Chart {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func refs(t *testing.T, c *Chart, values map[string]any, paths ...string) []string {
	t.Helper()
	imgs, err := Images(c, values, paths)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, im := range imgs {
		out = append(out, im.Ref)
		t.Logf("%s found in %s", im.Ref, im.Where)
	}
	return out
}

func assertRefs(t *testing.T, got []string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("images:\n got %q\nwant %q", got, want)
	}
}

const testChartYAML = "apiVersion: v2\nname: app\nversion: 1.2.3\nappVersion: \"2.0\"\n"

func TestRenderedTemplates(t *testing.T) {
	c := writeChart(t, map[string]string{
		"Chart.yaml": testChartYAML,
		"values.yaml": `
registry: quay.example.com
image:
  repository: team/app
  tag: ""
sidecar:
  enabled: true
`,
		"templates/_helpers.tpl": `{{- define "app.image" -}}
{{ .Values.registry }}/{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}`,
		"templates/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "app.image" . | trunc 10 | quote }}
spec:
  template:
    spec:
      initContainers:
      - name: init
        image: registry.example.com/init/busybox:1.36
      containers:
      - name: main
        image: {{ include "app.image" . | quote }}
      {{- if .Values.sidecar.enabled }}
      - name: sidecar
        image: {{ printf "%s/%s" .Values.registry "team/sidecar@sha256:0123456789012345678901234567890123456789012345678901234567890123" }}
      {{- end }}
---
apiVersion: v1
kind: Pod
metadata:
  name: test
spec:
  containers:
  - name: t
    image: "{{ .Values.registry }}/team/test:{{ .Chart.Version }}"
`,
		"templates/NOTES.txt": "image: not.an/image:from-notes\n",
	})
	assertRefs(t, refs(t, c, nil),
		"quay.example.com/team/app:2.0",
		"registry.example.com/init/busybox:1.36",
		"quay.example.com/team/sidecar@sha256:0123456789012345678901234567890123456789012345678901234567890123",
		"quay.example.com/team/test:1.2.3",
	)
	// Values from the config override the chart's: sidecar off, a tag set.
	assertRefs(t, refs(t, c, map[string]any{"sidecar": map[string]any{"enabled": false}, "image": map[string]any{"tag": "2.1"}}),
		"quay.example.com/team/app:2.1",
		"registry.example.com/init/busybox:1.36",
		"quay.example.com/team/test:1.2.3",
	)
}

func TestImagePaths(t *testing.T) {
	c := writeChart(t, map[string]string{
		"Chart.yaml": testChartYAML,
		"templates/cronjob.yaml": `apiVersion: batch/v1
kind: CronJob
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - image: registry.example.com/jobs/backup:3
          - image: registry.example.com/jobs/upload:3
---
apiVersion: example.com/v1
kind: Widget
spec:
  images:
    main: registry.example.com/widgets/main:1
`,
	})
	// The default paths do not reach a CronJob's containers or custom resources.
	assertRefs(t, refs(t, c, nil))
	assertRefs(t, refs(t, c, nil, "{.spec.jobTemplate.spec.template.spec.containers[*].image}", ".spec.images.main"),
		"registry.example.com/jobs/backup:3", "registry.example.com/jobs/upload:3", "registry.example.com/widgets/main:1")
	assertRefs(t, refs(t, c, nil, "{.spec.jobTemplate.spec.template.spec.containers[1].image}"), "registry.example.com/jobs/upload:3")

	for _, bad := range []string{"spec.containers", "{..image}", "{.spec.containers[?(@.name=='a')].image}", "{.a[x]}", "{.a,.b}"} {
		if _, err := Images(c, nil, []string{bad}); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("image path %q: error %v, want one naming the path", bad, err)
		}
	}
}

func TestTemplateThatDoesNotRender(t *testing.T) {
	c := writeChart(t, map[string]string{
		"Chart.yaml":  testChartYAML,
		"values.yaml": "web:\n  repo: registry.example.com/web/server\n  tag: \"\"\n",
		"templates/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ someHelmOnlyFunction .Release.Name }}
spec:
  template:
    spec:
      containers:
      - image: registry.example.com/web/literal:1.0
      - image: "{{ .Values.web.repo }}:{{ .Values.web.tag | default .Chart.AppVersion }}"
      - image: {{ include "unknown.helper" . }}
`,
		"templates/_helpers.tpl": `{{- define "web.migrate" -}}registry.example.com/web/helper:{{ .Chart.AppVersion }}{{- end -}}
{{- define "web.password" -}}{{ htpasswd "u" "p" }}{{- end -}}`,
		"templates/migrate.yaml": `apiVersion: v1
kind: Pod
metadata:
  annotations:
    created: {{ now | date "2006" }}
spec:
  containers:
  - image: {{ include "web.migrate" . }}
`,
		"templates/job.yaml": `apiVersion: batch/v1
kind: Job
spec:
  template:
    spec:
      containers:
      - image: {{ required "set web.key" .Values.web.key }}
      - image: registry.example.com/web/migrate:1.0
`,
	})
	assertRefs(t, refs(t, c, nil),
		"registry.example.com/web/literal:1.0",
		"registry.example.com/web/server:2.0",
		"registry.example.com/web/migrate:1.0",
		// Rendered although the helpers and the template call functions
		// Ferry does not implement (htpasswd, now, date).
		"registry.example.com/web/helper:2.0",
	)
}

func TestValuesShapes(t *testing.T) {
	c := writeChart(t, map[string]string{
		"Chart.yaml": testChartYAML,
		"values.yaml": `
image: registry.example.com/top/app:1
metrics:
  enabled: false
  image:
    registry: registry.example.com
    repository: exporters/metrics
    tag: 0.9
db:
  image:
    repository: registry.example.com/db/postgres
    digest: sha256:0123456789012345678901234567890123456789012345678901234567890123
operator:
  image:
    repository: registry.example.com/op/manager
    tag: ""
sidecars:
- name: a
  image: registry.example.com/side/a:1
notAnImage:
  image: nginx
  repository: registry.example.com/ignored/repo
`,
	})
	assertRefs(t, refs(t, c, nil),
		"registry.example.com/top/app:1",
		"registry.example.com/exporters/metrics:0.9",
		"registry.example.com/db/postgres@sha256:0123456789012345678901234567890123456789012345678901234567890123",
		"registry.example.com/op/manager:2.0",
		"registry.example.com/side/a:1",
	)
}

func TestSubcharts(t *testing.T) {
	c := writeChart(t, map[string]string{
		"Chart.yaml":               testChartYAML + "dependencies:\n- name: cache\n  condition: cache.enabled\n- name: off\n  condition: off.enabled\n",
		"values.yaml":              "global:\n  registry: mirror.example.com\ncache:\n  enabled: true\n  tag: \"7.2\"\noff:\n  enabled: false\n",
		"charts/cache/Chart.yaml":  "apiVersion: v2\nname: cache\nversion: 0.1.0\n",
		"charts/cache/values.yaml": "tag: \"6.0\"\n",
		"charts/cache/templates/pod.yaml": `apiVersion: v1
kind: Pod
spec:
  containers:
  - image: {{ .Values.global.registry }}/cache/redis:{{ .Values.tag }}
`,
		"charts/off/Chart.yaml": "apiVersion: v2\nname: off\nversion: 0.1.0\n",
		"charts/off/templates/pod.yaml": `apiVersion: v1
kind: Pod
spec:
  containers:
  - image: registry.example.com/disabled/pod:1
`,
	})
	assertRefs(t, refs(t, c, nil), "mirror.example.com/cache/redis:7.2")
}
