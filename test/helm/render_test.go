package helm_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/distribution/reference"
	"gopkg.in/yaml.v3"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// unreachable is the registry every image of these charts names: the
// comparison needs what ferry asks for, not the images, and a refused
// connection fails at once.
const unreachable = "127.0.0.1:1"

// platformChart is an umbrella chart built the way big real charts are:
// a library chart called through include with tuple and dict arguments,
// a subchart whose defaults the parent reads (.Values.cache.* and
// .Subcharts), global.imageRegistry, tpl, a .helmignore that drops a
// template, .Capabilities checks, an image that only a named template
// knows, init containers, a CronJob, an ephemeral container, a hook, and
// a custom resource whose image only imagePaths reach. Its helpers call
// Sprig functions the old hand-written renderer did not have.
var platformChart = map[string]string{
	"Chart.yaml": `apiVersion: v2
name: platform
version: 1.4.0
appVersion: "3.2.1"
dependencies:
- name: common
  version: 0.1.0
- name: cache
  version: 2.0.0
  condition: cache.enabled
- name: search
  version: 1.0.0
  condition: search.enabled
`,
	".helmignore": "# test-only manifests\ntemplates/dev-only.yaml\n*.bak\n",
	"values.yaml": `global:
  imageRegistry: ""
image:
  registry: quay.example.com
  repository: platform/api
  tag: ""
worker:
  image:
    registry: quay.example.com
    repository: platform/worker
    tag: "3.2.1-worker"
  extraArgs: ["--a", "--b"]
sidecarImage: "{{ .Values.global.imageRegistry }}/platform/sidecar:{{ .Chart.AppVersion }}"
agent:
  image: platform/agent:0.9
cache:
  enabled: true
search:
  enabled: false
`,
	"templates/_helpers.tpl": `{{- define "platform.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "platform.migrator" -}}
{{- $parts := concat (list .Values.global.imageRegistry) (list "platform" "migrate") -}}
{{- printf "%s:%s" (join "/" $parts) (dig "migrate" "tag" "2.1" (.Values | toRawJson | fromJson)) -}}
{{- end -}}
`,
	"templates/deployment.yaml": `{{- $args := .Values.worker.extraArgs | toRawJson | fromJsonArray }}
{{- $labels := omit (dict "app" "platform" "tier" "api" "drop" "me") "drop" }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "platform.fullname" . }}
  labels: {{- toYaml $labels | nindent 4 }}
spec:
  selector:
    matchLabels: {{- toYaml $labels | nindent 6 }}
  template:
    metadata:
      labels: {{- toYaml $labels | nindent 8 }}
    spec:
      initContainers:
      - name: migrate
        image: {{ include "platform.migrator" . }}
      containers:
      - name: api
        image: {{ include "common.image" (tuple .Values.image .Values.global .Chart.AppVersion) }}
      - name: worker
        image: {{ include "common.image.dict" (dict "image" .Values.worker.image "global" .Values.global) }}
        args: {{- toYaml $args | nindent 8 }}
      - name: sidecar
        image: {{ tpl .Values.sidecarImage . }}
{{- if typeIs "string" .Values.agent.image }}
      - name: cache-client
        image: "{{ .Values.global.imageRegistry }}/{{ .Values.cache.image.repository }}:{{ .Subcharts.cache.Chart.AppVersion }}"
{{- end }}
`,
	"templates/cronjob.yaml": `{{- if .Capabilities.APIVersions.Has "batch/v1" }}
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {{ include "platform.fullname" . }}-report
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          initContainers:
          - name: wait
            image: {{ .Values.global.imageRegistry }}/platform/wait:1.0
          containers:
          - name: report
            image: {{ .Values.global.imageRegistry }}/platform/report:{{ .Chart.AppVersion }}
{{- end }}
{{- if .Capabilities.APIVersions.Has "example.com/v1/NotServed" }}
---
apiVersion: v1
kind: Pod
metadata:
  name: never
spec:
  containers:
  - name: never
    image: {{ .Values.global.imageRegistry }}/platform/never:1
{{- end }}
{{- if semverCompare ">=1.20-0" .Capabilities.KubeVersion.Version }}
---
apiVersion: v1
kind: Pod
metadata:
  name: {{ include "platform.fullname" . }}-debug
  annotations:
    "helm.sh/hook": test
spec:
  containers:
  - name: check
    image: {{ .Values.global.imageRegistry }}/platform/check:1
  ephemeralContainers:
  - name: shell
    image: {{ .Values.global.imageRegistry }}/platform/shell:1
{{- end }}
`,
	"templates/agent.yaml": `apiVersion: example.com/v1
kind: Agent
metadata:
  name: {{ include "platform.fullname" . }}
spec:
  agent:
    image: {{ .Values.global.imageRegistry }}/{{ .Values.agent.image }}
`,
	"templates/dev-only.yaml": `apiVersion: v1
kind: Pod
metadata:
  name: dev
spec:
  containers:
  - name: dev
    image: {{ .Values.global.imageRegistry }}/platform/dev-only:1
`,
	"templates/NOTES.txt": "image: {{ .Values.global.imageRegistry }}/platform/notes:1\n",

	"charts/common/Chart.yaml": "apiVersion: v2\nname: common\nversion: 0.1.0\ntype: library\n",
	"charts/common/templates/_images.tpl": `{{/* common.image: (tuple image global appVersion); the global registry wins. */}}
{{- define "common.image" -}}
{{- $img := index . 0 -}}{{- $global := index . 1 -}}
{{- $registry := $global.imageRegistry | default $img.registry -}}
{{- $tag := $img.tag | default (printf "v%s" (index . 2)) -}}
{{- printf "%s/%s:%s" $registry $img.repository $tag -}}
{{- end -}}
{{- define "common.image.dict" -}}
{{- include "common.image" (tuple .image .global "0") -}}
{{- end -}}
`,
	"charts/cache/Chart.yaml":  "apiVersion: v2\nname: cache\nversion: 2.0.0\nappVersion: \"7.4\"\n",
	"charts/cache/values.yaml": "image:\n  repository: cache/server\n  tag: \"7.4.2\"\nexporter:\n  enabled: true\n  image: cache/exporter:1.1\n",
	"charts/cache/templates/statefulset.yaml": `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ .Release.Name }}-cache
spec:
  serviceName: cache
  selector:
    matchLabels: {app: cache}
  template:
    metadata:
      labels: {app: cache}
    spec:
      containers:
      - name: cache
        image: {{ .Values.global.imageRegistry }}/{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- if .Values.exporter.enabled }}
      - name: exporter
        image: {{ .Values.global.imageRegistry }}/{{ .Values.exporter.image }}
{{- end }}
`,
	"charts/search/Chart.yaml": "apiVersion: v2\nname: search\nversion: 1.0.0\n",
	"charts/search/templates/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: search
spec:
  template:
    spec:
      containers:
      - name: search
        image: ` + unreachable + `/platform/search-disabled:1
`,
}

// platformValues are the values the ImageSetConfiguration gives.
const platformValues = `global:
  imageRegistry: ` + unreachable + `
cache:
  exporter:
    image: cache/exporter:1.2
`

// certsChart is shaped like cert-manager's chart, the example:
// every image goes through a helper taking a tuple, digests win over
// tags, the default tag adds a "v" to appVersion, one component is off
// by default and one is a post-install hook Job. It is read as a .tgz.
var certsChart = map[string]string{
	"Chart.yaml": "apiVersion: v2\nname: certs\nversion: 1.16.0\nappVersion: \"1.16.0\"\nkubeVersion: \">= 1.22.0-0\"\n",
	"values.yaml": `image:
  registry: ` + unreachable + `
  repository: jetstack/controller
  tag: ""
webhook:
  image:
    repository: ` + unreachable + `/jetstack/webhook
    digest: sha256:` + strings.Repeat("4b", 32) + `
cainjector:
  enabled: false
  image:
    repository: ` + unreachable + `/jetstack/cainjector
startupapicheck:
  enabled: true
  image:
    repository: ` + unreachable + `/jetstack/startupapicheck
    tag: v1.16.0-fix
`,
	"templates/_helpers.tpl": `{{- define "image" -}}
{{- $defaultTag := index . 1 -}}
{{- with index . 0 -}}
{{- if .registry -}}{{ printf "%s/%s" .registry .repository }}{{- else -}}{{- .repository -}}{{- end -}}
{{- if .digest -}}{{ printf "@%s" .digest }}{{- else -}}{{ printf ":%s" (default $defaultTag .tag) }}{{- end -}}
{{- end }}
{{- end }}
{{- define "deployment" -}}
{{- $name := index . 0 }}{{ $image := index . 1 }}{{ $root := index . 2 -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $root.Release.Name }}-{{ $name }}
spec:
  selector:
    matchLabels: {app: {{ $name }}}
  template:
    metadata:
      labels: {app: {{ $name }}}
    spec:
      containers:
      - name: {{ $name }}
        image: "{{ template "image" (tuple $image (printf "v%s" $root.Chart.AppVersion)) }}"
{{- end }}
`,
	"templates/controller.yaml": `{{ include "deployment" (tuple "controller" .Values.image .) }}`,
	"templates/webhook.yaml":    `{{ include "deployment" (tuple "webhook" .Values.webhook.image .) }}`,
	"templates/cainjector.yaml": `{{- if .Values.cainjector.enabled }}{{ include "deployment" (tuple "cainjector" .Values.cainjector.image .) }}{{ end }}`,
	"templates/startupapicheck.yaml": `{{- if .Values.startupapicheck.enabled }}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-startupapicheck
  annotations:
    helm.sh/hook: post-install
spec:
  template:
    spec:
      restartPolicy: OnFailure
      containers:
      - name: check
        image: "{{ template "image" (tuple .Values.startupapicheck.image (printf "v%s" .Chart.AppVersion)) }}"
{{- end }}
`,
}

// TestHelmTemplateParity: the images ferry finds in a chart are exactly
// those in `helm template` of the same chart and values, with and
// without imagePaths for the custom resource.
func TestHelmTemplateParity(t *testing.T) {
	helmBin, err := exec.LookPath("helm")
	if err != nil {
		t.Fatal("the helm CLI is not installed; run scripts/install-test-deps.sh")
	}
	certsTgz := filepath.Join(t.TempDir(), "certs-1.16.0.tgz")
	writeChartArchive(t, certsTgz, "certs", certsChart)
	for _, tc := range []struct {
		name, path, values string
		imagePaths         string
		// must and mustNot guard against a chart edit that quietly
		// stops testing what the chart is for.
		must, mustNot []string
	}{
		{name: "platform", path: writeChartDir(t, "platform", platformChart), values: platformValues, imagePaths: "{.spec.agent.image}",
			must: []string{unreachable + "/platform/api:v3.2.1", unreachable + "/platform/worker:3.2.1-worker",
				unreachable + "/platform/migrate:2.1", unreachable + "/platform/sidecar:3.2.1", unreachable + "/cache/server:7.4",
				unreachable + "/cache/exporter:1.2", unreachable + "/platform/wait:1.0", unreachable + "/platform/shell:1", unreachable + "/platform/agent:0.9"},
			mustNot: []string{"dev-only", "never", "notes", "search-disabled"}},
		{name: "certs", path: certsTgz, values: "cainjector:\n  enabled: true\n",
			must: []string{unreachable + "/jetstack/controller:v1.16.0", unreachable + "/jetstack/webhook@sha256:" + strings.Repeat("4b", 32),
				unreachable + "/jetstack/cainjector:v1.16.0", unreachable + "/jetstack/startupapicheck:v1.16.0-fix"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			valuesFile := filepath.Join(t.TempDir(), "values.yaml")
			if err := os.WriteFile(valuesFile, []byte(tc.values), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(helmBin, "template", tc.path, "-f", valuesFile).CombinedOutput()
			if err != nil {
				t.Fatalf("helm template: %v\n%s", err, out)
			}
			all, crs := helmImages(t, out)
			t.Logf("helm template renders %d images, %d in custom resources", len(all), len(crs))
			for _, want := range tc.must {
				if !slices.Contains(all, want) {
					t.Errorf("helm template does not render %s; the test chart is not what the test means", want)
				}
			}
			for _, never := range tc.mustNot {
				for _, im := range all {
					if strings.Contains(im, never) {
						t.Errorf("helm template renders %s; the test chart is not what the test means", im)
					}
				}
			}
			var defaults []string
			for _, im := range all {
				if !slices.Contains(crs, im) {
					defaults = append(defaults, im)
				}
			}
			config := "    local:\n    - name: " + tc.name + "\n      path: " + tc.path + "\n      values:\n" + indent(tc.values, "        ")
			if got := requested(t, writeConfig(t, config)); !slices.Equal(got, defaults) {
				t.Errorf("default image paths: ferry asks for\n %q\nhelm template renders, outside custom resources,\n %q", got, defaults)
			}
			if tc.imagePaths == "" {
				return
			}
			config += "      imagePaths:\n      - '" + tc.imagePaths + "'\n"
			if got := requested(t, writeConfig(t, config)); !slices.Equal(got, all) {
				t.Errorf("with imagePaths: ferry asks for\n %q\nhelm template renders\n %q", got, all)
			}
		})
	}
}

// requested runs a dry run of isc and returns the images ferry asked
// for: mapped or missing, helm charts that failed left out.
func requested(t *testing.T, isc string) []string {
	t.Helper()
	ws := t.TempDir()
	out, code := ferry(t, "mirror", "-c", isc, "--dry-run", "--retry-times=0", "--workspace", "file://"+ws, "docker://"+unreachable+"/mirror", "--src-tls-verify=false")
	if code != 0 {
		t.Fatalf("dry run exited %d:\n%s", code, out)
	}
	var got []string
	for _, f := range []string{"mapping.txt", "missing.txt"} {
		data, err := os.ReadFile(filepath.Join(ws, "working-dir", "dry-run", f))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			src, _, _ := strings.Cut(strings.TrimPrefix(line, "docker://"), "=")
			src, _, _ = strings.Cut(src, "\t")
			if src != "" {
				got = append(got, src)
			}
		}
	}
	slices.Sort(got)
	return slices.Compact(got)
}

// helmImages reads `helm template` output as a user checking it would:
// every string under an `image` key, normalized as the kubelet reads it,
// and separately those in documents that are not core Kubernetes kinds.
func helmImages(t *testing.T, out []byte) (all, crs []string) {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("helm template output: %v", err)
		}
		custom := strings.Contains(str(doc["apiVersion"]), "example.com")
		walkImages(doc, func(s string) {
			named, err := reference.ParseNormalizedNamed(s)
			if err != nil {
				t.Fatalf("helm template renders image %q: %v", s, err)
			}
			ref := reference.TagNameOnly(named).String()
			all = append(all, ref)
			if custom {
				crs = append(crs, ref)
			}
		})
	}
	slices.Sort(all)
	slices.Sort(crs)
	return slices.Compact(all), slices.Compact(crs)
}

func walkImages(v any, found func(string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "image" {
				found(s)
				continue
			}
			walkImages(e, found)
		}
	case []any:
		for _, e := range x {
			walkImages(e, found)
		}
	}
}

func str(v any) string { s, _ := v.(string); return s }

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

// writeChartDir writes a chart folder: files by path inside the chart.
func writeChartDir(t *testing.T, name string, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	for n, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// measured is one ferry run with its resource use.
type measured struct {
	out      string
	code     int
	wall     time.Duration
	maxRSSKB int64
}

// ferryMeasured runs ferry and reports its peak RSS: the kernel's
// rusage of the process, which covers the render children it waited for.
func ferryMeasured(t *testing.T, args ...string) measured {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.FerryBinary(t), args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	start := time.Now()
	err := cmd.Run()
	m := measured{out: buf.String(), wall: time.Since(start)}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		m.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run ferry: %v", err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.maxRSSKB = ru.Maxrss
	}
	t.Logf("ferry %s: exit %d in %s, peak RSS %d MiB\n%s", strings.Join(args, " "), m.code, m.wall.Round(time.Millisecond), m.maxRSSKB>>10, m.out)
	return m
}

// TestHostileCharts: charts built to exhaust the mirror end within
// seconds with a clear error, exit bit 16, and ferry (its render child
// included) stays under 256 MiB.
func TestHostileCharts(t *testing.T) {
	chartYAML := func(name string) []byte { return []byte("apiVersion: v2\nname: " + name + "\nversion: 0.1.0\n") }
	dir := t.TempDir()
	// A subchart bomb: each level holds 8 copies of the one below, 8^6
	// copies of a 1 MiB file at the bottom; the .tgz stays small.
	level := chartArchive(t, "leaf", map[string][]byte{"Chart.yaml": chartYAML("leaf"), "files/zero": make([]byte, 1<<20)})
	for i := range 6 {
		files := map[string][]byte{"Chart.yaml": chartYAML("bomb")}
		for j := range 8 {
			files["charts/sub"+string(rune('a'+j))+".tgz"] = level
		}
		level = chartArchive(t, "bomb"+strconv.Itoa(i), files)
	}
	bomb := filepath.Join(dir, "bomb-0.1.0.tgz")
	if err := os.WriteFile(bomb, level, 0o644); err != nil {
		t.Fatal(err)
	}
	fanout := []string{`{{- define "l0" }}{{ end }}`}
	for i := 1; i <= 40; i++ {
		fanout = append(fanout, `{{- define "l`+strconv.Itoa(i)+`" }}{{ include "l`+strconv.Itoa(i-1)+`" . }}{{ include "l`+strconv.Itoa(i-1)+`" . }}{{ end }}`)
	}
	charts := []struct {
		name, path string
		files      map[string]string
		want       string
	}{
		{name: "bomb", path: bomb, want: "64 MiB"},
		{name: "random", files: map[string]string{"templates/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  pw: {{ randAlphaNum 1000000000 }}\n"},
			want: "randAlphaNum 1000000000: over Ferry's limit"},
		{name: "fanout", files: map[string]string{"templates/_fan.tpl": strings.Join(fanout, "\n"), "templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  x: {{ include \"l40\" . | quote }}\n"},
			want: "did not finish within 5s"},
		{name: "hog", files: map[string]string{"templates/cm.yaml": "{{- $l := list }}{{ range until 16000 }}{{ $l = append $l (repeat 1000000 \"x\") }}{{ end }}apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"},
			want: "more than 128 MiB of memory"},
	}
	for _, c := range charts {
		t.Run(c.name, func(t *testing.T) {
			p := c.path
			if p == "" {
				files := map[string]string{"Chart.yaml": string(chartYAML(c.name))}
				for k, v := range c.files {
					files[k] = v
				}
				p = writeChartDir(t, c.name, files)
			}
			isc := writeConfig(t, "    local:\n    - name: "+c.name+"\n      path: "+p+"\n")
			arch := t.TempDir()
			m := ferryMeasured(t, "mirror", "-c", isc, "file://"+arch, "--helm-render-timeout=5s")
			if m.code != 16 {
				t.Errorf("exit %d, want 16 (helm failed)", m.code)
			}
			if !strings.Contains(m.out, c.want) {
				t.Errorf("output does not say %q", c.want)
			}
			if report := errorsFile(t, arch); !strings.Contains(report, c.want) || !strings.Contains(report, c.name) {
				t.Errorf("errors file %q does not name the chart and %q", report, c.want)
			}
			if m.wall > 20*time.Second {
				t.Errorf("took %s, want seconds", m.wall)
			}
			if m.maxRSSKB > 256<<10 && !testenv.RaceEnabled {
				t.Errorf("peak RSS %d MiB, want under 256 MiB", m.maxRSSKB>>10)
			}
		})
	}
}

// errorsFile returns the mirroring_errors_*.txt of a run's working-dir.
func errorsFile(t *testing.T, dir string) string {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(dir, "working-dir", "logs", "mirroring_errors_*.txt"))
	if len(matches) != 1 {
		t.Errorf("errors files in %s: %q, want one", dir, matches)
		return ""
	}
	data, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// chartArchive packs files (path inside the chart -> content) as chart
// name's .tgz.
func chartArchive(t *testing.T, name string, files map[string][]byte) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.tgz")
	s := map[string]string{}
	for k, v := range files {
		s[k] = string(v)
	}
	writeChartArchive(t, p, name, s)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestRenderStopsOnSignal: SIGTERM (or Ctrl-C) while a chart renders
// forever ends ferry at once, render child included.
func TestRenderStopsOnSignal(t *testing.T) {
	fanout := []string{`{{- define "l0" }}{{ end }}`}
	for i := 1; i <= 40; i++ {
		fanout = append(fanout, `{{- define "l`+strconv.Itoa(i)+`" }}{{ include "l`+strconv.Itoa(i-1)+`" . }}{{ include "l`+strconv.Itoa(i-1)+`" . }}{{ end }}`)
	}
	dir := writeChartDir(t, "forever", map[string]string{
		"Chart.yaml":         "apiVersion: v2\nname: forever\nversion: 0.1.0\n",
		"templates/_fan.tpl": strings.Join(fanout, "\n"),
		"templates/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  x: {{ include \"l40\" . | quote }}\n",
	})
	isc := writeConfig(t, "    local:\n    - name: forever\n      path: "+dir+"\n")
	bin := testenv.FerryBinary(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(bin, "mirror", "-c", isc, "file://"+t.TempDir())
			var buf bytes.Buffer
			cmd.Stdout, cmd.Stderr = &buf, &buf
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Wait until the child renders, then signal ferry alone (not
			// its process group, which a terminal's Ctrl-C would reach).
			child := 0
			for deadline := time.Now().Add(20 * time.Second); child == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				child = renderChild(bin, cmd.Process.Pid)
			}
			if child == 0 {
				cmd.Process.Kill()
				t.Fatalf("no %s helm-render child of ferry appeared:\n%s", bin, buf.String())
			}
			start := time.Now()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("ferry still running 10s after %s", sig)
			}
			t.Logf("ferry ended %s after %s (exit %d):\n%s", time.Since(start).Round(time.Millisecond), sig, cmd.ProcessState.ExitCode(), buf.String())
			if cmd.ProcessState.ExitCode() == 0 {
				t.Errorf("ferry exited 0 after %s", sig)
			}
			time.Sleep(200 * time.Millisecond)
			if _, err := os.Stat("/proc/" + strconv.Itoa(child)); err == nil {
				if data, _ := os.ReadFile("/proc/" + strconv.Itoa(child) + "/cmdline"); strings.Contains(string(data), "helm-render") {
					syscall.Kill(child, syscall.SIGKILL)
					t.Errorf("the render child %d outlived ferry", child)
				}
			}
		})
	}
}

// renderChild returns the pid of parent's `ferry helm-render` child, or 0.
func renderChild(bin string, parent int) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		_, rest, ok := strings.Cut(string(stat), ") ")
		if f := strings.Fields(rest); !ok || len(f) < 2 || f[1] != strconv.Itoa(parent) {
			continue
		}
		if cl, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline"); string(cl) == bin+"\x00helm-render\x00" {
			return pid
		}
	}
	return 0
}
