package helm

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeChart writes files (path inside the chart -> content) as a chart
// folder and returns it.
func writeChart(t *testing.T, files map[string]string) string {
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
	return dir
}

// tgz packs files (path inside the chart -> content) as chart name's archive.
func tgz(t testing.TB, name string, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: name + "/" + n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(files[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func run(t *testing.T, job Job) (*Result, error) {
	t.Helper()
	return Sandbox{Timeout: 20 * time.Second}.Run(context.Background(), job)
}

func refs(t *testing.T, job Job) []string {
	t.Helper()
	res, err := run(t, job)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, im := range res.Images {
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

func TestImagePaths(t *testing.T) {
	dir := writeChart(t, map[string]string{
		"Chart.yaml": testChartYAML,
		"templates/cronjob.yaml": `apiVersion: batch/v1
kind: CronJob
metadata:
  name: backup
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec:
          initContainers:
          - name: wait
            image: registry.example.com/jobs/wait:1
          containers:
          - name: backup
            image: registry.example.com/jobs/backup:3
          - name: upload
            image: registry.example.com/jobs/upload:3
---
apiVersion: v1
kind: Pod
metadata:
  name: debug
spec:
  containers:
  - name: main
    image: nginx
  ephemeralContainers:
  - name: shell
    image: registry.example.com/tools/shell@sha256:` + strings.Repeat("ab", 32) + `
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
spec:
  images:
    main: registry.example.com/widgets/main:1
`,
	})
	// Every pod template is searched by default; a custom resource only
	// through imagePaths. A bare name is docker.io's, :latest.
	def := []string{"docker.io/library/nginx:latest", "registry.example.com/jobs/backup:3", "registry.example.com/jobs/upload:3",
		"registry.example.com/jobs/wait:1", "registry.example.com/tools/shell@sha256:" + strings.Repeat("ab", 32)}
	assertRefs(t, refs(t, Job{Path: dir}), def...)
	assertRefs(t, refs(t, Job{Path: dir, ImagePaths: []string{".spec.images.main"}}), append(def, "registry.example.com/widgets/main:1")...)

	for _, bad := range []string{"spec.containers", "{..image}", "{.spec.containers[?(@.name=='a')].image}", "{.a[x]}", "{.a,.b}"} {
		_, err := run(t, Job{Path: dir, ImagePaths: []string{bad}})
		if err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("image path %q: error %v, want one naming the path", bad, err)
		}
	}
}

// TestNoTagInvented: values that give an image without its tag render
// "repo:" and that is not an image; Ferry does not make one up from
// appVersion (the chart may add a "v", as node-exporter's does).
func TestNoTagInvented(t *testing.T) {
	dir := writeChart(t, map[string]string{
		"Chart.yaml":  "apiVersion: v2\nname: exporter\nversion: 4.0.0\nappVersion: \"1.12.1\"\n",
		"values.yaml": "image:\n  repository: quay.example.com/prometheus/node-exporter\n  tag: \"\"\nsidecar:\n  repository: quay.example.com/sidecar\n",
		"templates/ds.yaml": `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: exporter
spec:
  template:
    spec:
      containers:
      - name: exporter
        image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default (printf "v%s" .Chart.AppVersion) }}"
      - name: sidecar
        image: "{{ .Values.sidecar.repository }}:{{ .Values.sidecar.tag }}"
`,
	})
	res, err := run(t, Job{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 1 || res.Images[0].Ref != "quay.example.com/prometheus/node-exporter:v1.12.1" {
		t.Errorf("images %v, want only node-exporter:v1.12.1 as the template writes it", res.Images)
	}
	if len(res.Invalid) != 1 || !strings.Contains(res.Invalid[0], `"quay.example.com/sidecar:"`) {
		t.Errorf("invalid %q, want the sidecar without its tag named", res.Invalid)
	}
}

// TestChartThatDoesNotRender: Helm's message, naming the template, is
// the chart's error; nothing is guessed from the template's text.
func TestChartThatDoesNotRender(t *testing.T) {
	dir := writeChart(t, map[string]string{
		"Chart.yaml":  testChartYAML,
		"values.yaml": "web:\n  repo: registry.example.com/web/server\n",
		"templates/web.yaml": `apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: web
    image: {{ .Values.web.repo }}:{{ required "web.tag is required: set it in the chart's values" .Values.web.tag }}
`,
	})
	_, err := run(t, Job{Path: dir})
	var ce *ChartError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "app/templates/web.yaml") || !strings.Contains(err.Error(), "web.tag is required") {
		t.Fatalf("error %v, want a chart error naming the template and Helm's message", err)
	}
	assertRefs(t, refs(t, Job{Path: dir, Values: map[string]any{"web": map[string]any{"tag": "7"}}}), "registry.example.com/web/server:7")

	noDeps := writeChart(t, map[string]string{"Chart.yaml": testChartYAML + "dependencies:\n- name: redis\n  version: 1.0.0\n  repository: https://charts.example.com\n"})
	if _, err := run(t, Job{Path: noDeps}); !errors.As(err, &ce) || !strings.Contains(err.Error(), "missing in charts/ directory: redis") {
		t.Errorf("a dependency not under charts/: %v, want a chart error naming it", err)
	}

	lib := writeChart(t, map[string]string{"Chart.yaml": "apiVersion: v2\nname: lib\nversion: 1.0.0\ntype: library\n", "templates/_x.tpl": "{{ define \"x\" }}{{ end }}"})
	if _, err := run(t, Job{Path: lib}); !errors.As(err, &ce) || !strings.Contains(err.Error(), "library chart") {
		t.Errorf("a library chart: %v, want a chart error saying it is a library", err)
	}

	notYAML := writeChart(t, map[string]string{"Chart.yaml": testChartYAML, "templates/x.yaml": "a: [b\n"})
	if _, err := run(t, Job{Path: notYAML}); !errors.As(err, &ce) || !strings.Contains(err.Error(), "app/templates/x.yaml") {
		t.Errorf("a template that renders to bad YAML: %v, want a chart error naming it", err)
	}
}

// TestHostileCharts: in-process, the checks that do not need a child
// process: the byte budget over nested archives, the nesting cap, and
// the caps on functions that allocate from a number.
func TestHostileCharts(t *testing.T) {
	chartYAML := func(name string) []byte { return []byte("apiVersion: v2\nname: " + name + "\nversion: 0.1.0\n") }
	// Each level holds 8 copies of the one below: 8^6 copies of 1 MiB.
	level := tgz(t, "leaf", map[string][]byte{"Chart.yaml": chartYAML("leaf"), "files/zero": make([]byte, 1<<20)})
	for i := range 6 {
		files := map[string][]byte{"Chart.yaml": chartYAML("bomb")}
		for j := range 8 {
			files["charts/c"+string(rune('a'+j))+".tgz"] = level
		}
		level = tgz(t, "bomb"+string(rune('0'+i)), files)
	}
	_, err := run(t, Job{Archive: level})
	if err == nil || !strings.Contains(err.Error(), "64 MiB") {
		t.Errorf("subchart bomb: %v, want the byte budget named", err)
	}

	deep := tgz(t, "d", map[string][]byte{"Chart.yaml": chartYAML("d")})
	for range MaxChartDepth + 1 {
		deep = tgz(t, "d", map[string][]byte{"Chart.yaml": chartYAML("d"), "charts/d.tgz": deep})
	}
	if _, err := run(t, Job{Archive: deep}); err == nil || !strings.Contains(err.Error(), "nest more than") {
		t.Errorf("subcharts nested %d deep: %v, want the depth limit named", MaxChartDepth+2, err)
	}

	for _, tmpl := range []string{
		`{{ randAlphaNum 1000000000 }}`,
		`{{ repeat 1000000000 "ab" }}`,
		`{{ range until 1000000000 }}{{ end }}`,
		`{{ "x" | indent 1000000000 }}`,
	} {
		dir := writeChart(t, map[string]string{"Chart.yaml": testChartYAML, "templates/a.yaml": "a: " + tmpl + "\n"})
		start := time.Now()
		_, err := run(t, Job{Path: dir})
		if err == nil || !strings.Contains(err.Error(), "over Ferry's limit") || time.Since(start) > 5*time.Second {
			t.Errorf("%s: %v after %s, want the limit named at once", tmpl, err, time.Since(start))
		}
	}
	// Under the caps, the functions still do what Helm's do.
	dir := writeChart(t, map[string]string{"Chart.yaml": testChartYAML, "templates/p.yaml": `apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations:
    pw: {{ randAlphaNum 16 | len | quote }}
    r: {{ repeat 3 "ab" | quote }}
    u: {{ until 3 | toJson | quote }}
    f: {{ printf "%05d" 42 | quote }}
spec:
  containers:
  - name: a
    image: {{ printf "%s:%s" "registry.example.com/a" (repeat 2 "1") }}
`})
	assertRefs(t, refs(t, Job{Path: dir}), "registry.example.com/a:11")
}
