package helm_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestHelm mirrors charts from the fixture chart repository and local
// charts, m2m and then m2d/d2m with the upstream gone; the upstream is
// built once because pushing it is most of the test's time.
func TestHelm(t *testing.T) {
	up := startUpstream(t)
	demo1, job := up.chart(t, "ferry-demo", "0.1.0"), up.chart(t, "busybox-job", "1.0.0")

	t.Run("m2m", func(t *testing.T) {
		dst := testenv.StartFerry(t, testenv.FerryOptions{})
		// Both charts reference ubi9: it is asked for and copied once. The
		// charts name images by tag, so the mirror set is an ITMS.
		isc := writeConfig(t, fmt.Sprintf(`    repositories:
    - name: fixtures
      url: %s
      charts:
      - name: ferry-demo
        version: 0.1.0
      - name: busybox-job
        version: 1.0.0
`, up.srv.ChartURL))
		ws := t.TempDir()
		out, code := ferry(t, "mirror", "-c", isc, "--workspace", "file://"+ws, "docker://"+dst.Host+"/mirror", "--dest-tls-verify=false", "--src-tls-verify=false")
		if code != 0 {
			t.Fatalf("m2m exited %d", code)
		}
		refs := append(append([]string{}, demo1.Images...), job.Images...)
		assertExactly(t, dst.Host, "mirror", up, refs)
		if !strings.Contains(out, "images: 3 copied") {
			t.Errorf("output does not say 3 images were copied (nginx, ubi9 once, busybox)")
		}
		itms, err := os.ReadFile(filepath.Join(ws, "working-dir", "cluster-resources", "itms-oc-mirror.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(itms), dst.Host+"/mirror/") {
			t.Errorf("itms-oc-mirror.yaml (the images are by tag) does not point at the mirror:\n%s", itms)
		}
	})

	// charts[].platforms, as oc-mirror has it: the chart's lists keep
	// only those platforms.
	t.Run("platforms", func(t *testing.T) {
		dst := testenv.StartFerry(t, testenv.FerryOptions{})
		isc := writeConfig(t, fmt.Sprintf(`    repositories:
    - name: fixtures
      url: %s
      charts:
      - name: busybox-job
        version: 1.0.0
        platforms:
        - os: linux
          architecture: amd64
`, up.srv.ChartURL))
		ws := t.TempDir()
		out, code := ferry(t, "mirror", "-c", isc, "--workspace", "file://"+ws, "docker://"+dst.Host+"/mirror", "--dest-tls-verify=false", "--src-tls-verify=false")
		if code != 0 {
			t.Fatalf("m2m exited %d", code)
		}
		if !strings.Contains(out, "was filtered to platforms linux/amd64") {
			t.Errorf("no list of the chart was filtered to linux/amd64:\n%s", out)
		}
	})

	t.Run("local", func(t *testing.T) {
		dst := testenv.StartFerry(t, testenv.FerryOptions{})
		dir := t.TempDir()
		tgz := filepath.Join(dir, "local-app-1.0.0.tgz")
		nginx := demo1.Images[0] // values.yaml repository and tag
		i := strings.LastIndex(nginx, ":")
		repo, tag := nginx[:i], nginx[i+1:] // the tag comes from appVersion
		writeChartArchive(t, tgz, "local-app", map[string]string{
			"Chart.yaml":  "apiVersion: v2\nname: local-app\nversion: 1.0.0\nappVersion: \"" + tag + "\"\n",
			"values.yaml": "image:\n  repository: " + repo + "\n  tag: \"\"\n",
			"templates/pod.yaml": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  containers:\n" +
				"  - name: app\n    image: \"{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}\"\n",
		})
		folder := filepath.Join(dir, "folder-chart")
		for name, data := range map[string]string{
			"Chart.yaml": "apiVersion: v2\nname: folder-chart\nversion: 0.1.0\n",
			"templates/job.yaml": "apiVersion: batch/v1\nkind: Job\nspec:\n  template:\n    spec:\n      containers:\n" +
				"      - name: job\n        image: " + job.Images[0] + "\n",
		} {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(folder, name)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(folder, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		isc := writeConfig(t, fmt.Sprintf("    local:\n    - name: local-app\n      path: %s\n    - name: folder-chart\n      path: %s\n", tgz, folder))
		_, code := ferry(t, "mirror", "-c", isc, "--workspace", "file://"+t.TempDir(), "docker://"+dst.Host+"/local", "--dest-tls-verify=false", "--src-tls-verify=false")
		if code != 0 {
			t.Fatalf("m2m of local charts exited %d", code)
		}
		assertExactly(t, dst.Host, "local", up, []string{nginx, job.Images[0]})
	})

	t.Run("bad input", func(t *testing.T) {
		for _, tc := range []struct {
			name, body string
			want       []string
		}{
			{"unreachable repository", "    repositories:\n    - name: gone\n      url: http://127.0.0.1:1/charts\n      charts:\n      - name: ferry-demo\n",
				[]string{`"gone"`, "127.0.0.1:1", "unreachable"}},
			{"unknown chart", "    repositories:\n    - name: fixtures\n      url: " + up.srv.ChartURL + "\n      charts:\n      - name: no-such-chart\n        version: 1.0.0\n",
				[]string{`"fixtures"`, `"no-such-chart"`, "ferry-demo"}},
			{"unknown version", "    repositories:\n    - name: fixtures\n      url: " + up.srv.ChartURL + "\n      charts:\n      - name: ferry-demo\n        version: 9.9.9\n",
				[]string{`"fixtures"`, `"ferry-demo"`, `"9.9.9"`, "0.1.0, 0.2.0"}},
			{"missing local chart", "    local:\n    - name: mine\n      path: /nonexistent/mine.tgz\n",
				[]string{`"mine"`, "/nonexistent/mine.tgz"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				out, code := ferry(t, "mirror", "-c", writeConfig(t, tc.body), "file://"+t.TempDir(), "--src-tls-verify=false")
				if code != 16 {
					t.Errorf("exit code %d, want 16 (helm failed)", code)
				}
				for _, w := range tc.want {
					if !strings.Contains(out, w) {
						t.Errorf("output does not name %s", w)
					}
				}
				if strings.Contains(out, "panic") {
					t.Errorf("ferry panicked")
				}
			})
		}
	})

	t.Run("oci", func(t *testing.T) {
		pushOCIChart(t, up, "ferry-demo", "0.1.0")
		dst := testenv.StartFerry(t, testenv.FerryOptions{})
		isc := writeConfig(t, "    repositories:\n    - name: oci-charts\n      url: oci://"+up.reg.Host+"/charts\n      charts:\n      - name: ferry-demo\n        version: 0.1.0\n")
		if _, code := ferry(t, "mirror", "-c", isc, "--workspace", "file://"+t.TempDir(), "docker://"+dst.Host+"/oci", "--dest-tls-verify=false", "--src-tls-verify=false"); code != 0 {
			t.Fatalf("m2m from an oci:// chart repository exited %d", code)
		}
		assertExactly(t, dst.Host, "oci", up, demo1.Images)

		isc = writeConfig(t, "    repositories:\n    - name: oci-charts\n      url: oci://"+up.reg.Host+"/charts\n      charts:\n      - name: ferry-demo\n        version: 0.3.0\n")
		out, code := ferry(t, "mirror", "-c", isc, "file://"+t.TempDir(), "--src-tls-verify=false")
		if code != 16 || !strings.Contains(out, `"oci-charts"`) || !strings.Contains(out, `"0.3.0"`) {
			t.Errorf("unknown version in an oci:// repository: exit %d; want 16 and an error naming the repository and version", code)
		}
	})

	t.Run("chart that does not render", func(t *testing.T) {
		// One chart of the run fails as `helm template` fails on it; the
		// others mirror, the errors file carries Helm's message and the
		// exit code has bit 16.
		dst := testenv.StartFerry(t, testenv.FerryOptions{})
		broken := writeChartDir(t, "broken", map[string]string{
			"Chart.yaml":             "apiVersion: v2\nname: broken\nversion: 0.3.0\n",
			"values.yaml":            "image:\n  repository: quay.example.com/app\n",
			"templates/_helpers.tpl": "{{- define \"broken.image\" -}}\n{{ .Values.image.repository }}:{{ required \"image.tag is required: set it in the chart values\" .Values.image.tag }}\n{{- end -}}\n",
			"templates/deploy.yaml":  "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: b\nspec:\n  template:\n    spec:\n      containers:\n      - name: b\n        image: {{ include \"broken.image\" . }}\n",
			"templates/svc.yaml":     "apiVersion: v1\nkind: Service\nmetadata:\n  name: b\n",
		})
		isc := writeConfig(t, fmt.Sprintf("    repositories:\n    - name: fixtures\n      url: %s\n      charts:\n      - name: ferry-demo\n        version: 0.1.0\n    local:\n    - name: broken\n      path: %s\n", up.srv.ChartURL, broken))
		ws := t.TempDir()
		out, code := ferry(t, "mirror", "-c", isc, "--log-level", "debug", "--workspace", "file://"+ws, "docker://"+dst.Host+"/partial", "--dest-tls-verify=false", "--src-tls-verify=false")
		if code != 16 {
			t.Errorf("exit %d, want 16 (a helm chart failed)", code)
		}
		assertExactly(t, dst.Host, "partial", up, demo1.Images)
		report := errorsFile(t, ws)
		for _, want := range []string{"[helm] helm chart broken", "broken/templates/deploy.yaml", "image.tag is required: set it in the chart values"} {
			if !strings.Contains(report, want) {
				t.Errorf("errors file does not say %q:\n%s", want, report)
			}
		}
		for _, tmpl := range []string{"broken/templates/deploy.yaml", "broken/templates/svc.yaml", "broken/templates/_helpers.tpl"} {
			if !strings.Contains(out, "template="+tmpl) {
				t.Errorf("no debug line for template %s", tmpl)
			}
		}
		if !strings.Contains(out, `msg="helm template does not render" chart="broken`) {
			t.Errorf("the debug log does not name the template that does not render")
		}
	})

	// Last: it stops the upstream.
	t.Run("m2d-d2m", func(t *testing.T) {
		// A chart of each source: the index repository (no version: the
		// newest, 0.2.0), oci:// and a local .tgz.
		pushOCIChart(t, up, "ferry-demo", "0.1.0")
		local := filepath.Join(t.TempDir(), "busybox-job-1.0.0.tgz")
		if err := os.WriteFile(local, download(t, up.srv.ChartURL+"/charts/busybox-job-1.0.0.tgz"), 0o644); err != nil {
			t.Fatal(err)
		}
		isc := writeConfig(t, fmt.Sprintf("    repositories:\n    - name: fixtures\n      url: %s\n      charts:\n      - name: ferry-demo\n"+
			"    - name: oci-charts\n      url: oci://%s/charts\n      charts:\n      - name: ferry-demo\n        version: 0.1.0\n"+
			"    local:\n    - name: busybox-job\n      path: %s\n", up.srv.ChartURL, up.reg.Host, local))
		arch := filepath.Join(t.TempDir(), "archive")
		if _, code := ferry(t, "mirror", "-c", isc, "file://"+arch, "--src-tls-verify=false"); code != 0 {
			t.Fatalf("m2d exited %d", code)
		}
		up.srv.Close()
		up.reg.Stop()
		dst := testenv.StartFerry(t, testenv.FerryOptions{})
		_, code := ferry(t, "mirror", "-c", isc, "--from", "file://"+arch, "docker://"+dst.Host+"/d2m", "--dest-tls-verify=false")
		if code != 0 {
			t.Fatalf("d2m exited %d", code)
		}
		var want []string
		for _, c := range [][2]string{{"ferry-demo", "0.2.0"}, {"ferry-demo", "0.1.0"}, {"busybox-job", "1.0.0"}} {
			want = append(want, up.chart(t, c[0], c[1]).Images...)
		}
		assertExactly(t, dst.Host, "d2m", up, want)
	})
}

// pushOCIChart stores fixture chart name-version as `helm push` does: an
// artifact <registry>/charts/<name>:<version> whose layer is the .tgz.
func pushOCIChart(t *testing.T, up *upstream, chart, version string) {
	t.Helper()
	tgz := download(t, up.srv.ChartURL+"/charts/"+chart+"-"+version+".tgz")
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer(tgz, "application/vnd.cncf.helm.chart.content.v1.tar+gzip"))
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), "application/vnd.cncf.helm.config.v1+json")
	ref, err := name.ParseReference(up.reg.Host+"/charts/"+chart+":"+version, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
}

func download(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
