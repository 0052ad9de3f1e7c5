package helm

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"helm.sh/helm/v4/pkg/chart/common"
	valuesutil "helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/engine"
)

// Manifest is one rendered template file, as `helm template` prints it
// under "# Source: <Template>".
type Manifest struct {
	Template string
	Content  string
}

// Render renders chart c the way `helm template` does with no flags but
// values: release "release-name" in namespace "default", Helm's default
// Kubernetes version and API versions for .Capabilities (those of the
// Kubernetes client Ferry is built with, as for the helm CLI), lookup
// answering an empty object, hooks and tests included, NOTES.txt left
// out. values are merged over the chart's defaults as `helm template -f
// values.yaml` merges them, subcharts' conditions, tags and
// import-values applied.
//
// This is what Helm's install action does in client-only mode, without
// the action package: its Kubernetes clients and release storage drivers
// would make the ferry binary 142 MB instead of 80 and every ferry
// process start at 93 MiB of memory instead of 38.
//
// The template functions that allocate in proportion to a number
// (randAlphaNum, repeat, until, indent, ...; fmt caps printf widths
// itself) refuse numbers over MaxAlloc. Render cannot be interrupted, so
// callers that do not trust the chart run it in a Sandbox.
func Render(ctx context.Context, c *chart.Chart, values map[string]any) ([]Manifest, error) {
	if c.Metadata.Type == "library" {
		// As `helm template`: a library chart has only helpers for others.
		return nil, fmt.Errorf("chart %s is a library chart: it is not installable and has no images of its own; list the charts that use it", c.Name())
	}
	if err := checkDependencies(c); err != nil {
		return nil, err
	}
	vals := map[string]any{}
	maps.Copy(vals, values)
	if err := chartutil.ProcessDependencies(c, vals); err != nil {
		return nil, fmt.Errorf("chart dependencies processing failed: %w", err)
	}
	caps := common.DefaultCapabilities.Copy()
	if kv := c.Metadata.KubeVersion; kv != "" && !chartutil.IsCompatibleRange(kv, caps.KubeVersion.String()) {
		return nil, fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", kv, caps.KubeVersion.Version)
	}
	opts := common.ReleaseOptions{Name: "release-name", Namespace: "default", Revision: 1, IsInstall: true}
	top, err := valuesutil.ToRenderValuesWithSchemaValidation(c, vals, opts, caps, false)
	if err != nil {
		return nil, err
	}
	e := engine.Engine{CustomTemplateFuncs: cappedFuncs()}
	files, err := e.RenderWithContext(ctx, c, top)
	if err != nil {
		return nil, err
	}
	var out []Manifest
	for name, content := range files {
		if strings.HasSuffix(name, "NOTES.txt") || strings.TrimSpace(content) == "" {
			continue
		}
		out = append(out, Manifest{Template: name, Content: content})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Template < out[j].Template })
	return out, nil
}

// checkDependencies fails a chart whose Chart.yaml lists a dependency
// that is not under charts/, as `helm template` does: rendering without
// it would silently miss its images.
func checkDependencies(c *chart.Chart) error {
	have := map[string]bool{}
	for _, d := range c.Dependencies() {
		have[d.Name()] = true
	}
	var missing []string
	for _, d := range c.Metadata.Dependencies {
		if !have[d.Name] {
			missing = append(missing, d.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("found in Chart.yaml, but missing in charts/ directory: %s; the chart was packaged without `helm dependency build`", strings.Join(missing, ", "))
	}
	return nil
}

// MaxAlloc bounds what one call of a template function may allocate from
// a number it is given: a string of MaxAlloc bytes, a list of MaxAlloc/64
// numbers. Real charts ask for a 16-character password or a few spaces.
const MaxAlloc = 1 << 20

func tooBig(fn string, n int) error {
	return fmt.Errorf("%s %d: over Ferry's limit of %d; a chart does not need this much to render", fn, n, MaxAlloc)
}

// cappedFuncs replaces Helm's functions that allocate in proportion to a
// numeric argument by ones that refuse huge numbers, then do what Helm's
// do (the originals come from the same engine's function map).
func cappedFuncs() template.FuncMap {
	orig := helmFuncs()
	str := func(name string) func(int) (string, error) {
		f := orig[name].(func(int) string)
		return func(n int) (string, error) {
			if n > MaxAlloc {
				return "", tooBig(name, n)
			}
			return f(n), nil
		}
	}
	m := template.FuncMap{
		"randAlphaNum": str("randAlphaNum"),
		"randAlpha":    str("randAlpha"),
		"randNumeric":  str("randNumeric"),
		"randAscii":    str("randAscii"),
		"randBytes": func(n int) (string, error) {
			if n > MaxAlloc {
				return "", tooBig("randBytes", n)
			}
			return orig["randBytes"].(func(int) (string, error))(n)
		},
		"repeat": func(n int, s string) (string, error) {
			if n > 0 && int64(n)*int64(max(len(s), 1)) > MaxAlloc {
				return "", tooBig("repeat", n)
			}
			return orig["repeat"].(func(int, string) string)(n, s), nil
		},
		"until": func(n int) ([]int, error) {
			if n > MaxAlloc/64 || n < -MaxAlloc/64 {
				return nil, tooBig("until", n)
			}
			return orig["until"].(func(int) []int)(n), nil
		},
		"untilStep": func(start, stop, step int) ([]int, error) {
			if step != 0 && (int64(stop)-int64(start))/int64(step) > MaxAlloc/64 {
				return nil, tooBig("untilStep", stop-start)
			}
			return orig["untilStep"].(func(int, int, int) []int)(start, stop, step), nil
		},
		"seq": func(params ...int) (string, error) {
			for _, p := range params {
				if p > MaxAlloc/64 || p < -MaxAlloc/64 {
					return "", tooBig("seq", p)
				}
			}
			return orig["seq"].(func(...int) string)(params...), nil
		},
		"indent": func(n int, s string) (string, error) {
			if n > MaxAlloc || int64(n)*int64(strings.Count(s, "\n")+1) > 16*MaxAlloc {
				return "", tooBig("indent", n)
			}
			return orig["indent"].(func(int, string) string)(n, s), nil
		},
		"nindent": func(n int, s string) (string, error) {
			if n > MaxAlloc || int64(n)*int64(strings.Count(s, "\n")+1) > 16*MaxAlloc {
				return "", tooBig("nindent", n)
			}
			return orig["nindent"].(func(int, string) string)(n, s), nil
		},
	}
	return m
}

// helmFuncs returns Sprig's functions, which Helm's engine starts from
// (it does not export its map): Ferry wraps the originals rather than
// rewriting them.
func helmFuncs() map[string]any {
	return sprig.TxtFuncMap()
}
