package helm

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"text/template"
)

// maxIncludeDepth stops a template that includes itself, as Helm does.
const maxIncludeDepth = 100

// rendered is one template file after rendering: its output, or the error
// that stopped it (then src is scanned instead).
type rendered struct {
	name   string
	out    string
	err    error
	src    string
	values map[string]any
	chart  *Chart
}

// unit is a chart, or a subchart, with the values it renders with.
type unit struct {
	chart  *Chart
	values map[string]any
	prefix string // chart path, like "app/charts/redis/", naming its templates
}

type renderer struct {
	set   *template.Template
	depth int
}

// units lists c and its enabled subcharts with their coalesced values: a
// subchart's own values.yaml, overridden by the parent's values under the
// subchart's name, with the parent's globals.
func units(c *Chart, values map[string]any, prefix string) []unit {
	out := []unit{{chart: c, values: values, prefix: prefix}}
	for _, sc := range c.Subcharts {
		if cond, ok := c.Conditions[sc.Name]; ok {
			if v, found := lookup(values, cond); found && v == false {
				continue
			}
		}
		sv := deepCopy(sc.Values).(map[string]any)
		if pv, ok := values[sc.Name].(map[string]any); ok {
			sv = mergeInto(sv, []map[string]any{pv}, true)
		}
		if g, ok := values["global"].(map[string]any); ok {
			sg, _ := sv["global"].(map[string]any)
			sv["global"] = mergeInto(sg, []map[string]any{g}, true)
		}
		out = append(out, units(sc, sv, prefix+"charts/"+sc.Name+"/")...)
	}
	return out
}

// render renders every manifest template of c and its subcharts. Values
// are c's defaults with user merged over them.
func render(c *Chart, user map[string]any) []rendered {
	values := mergeInto(deepCopy(c.Values).(map[string]any), []map[string]any{user}, true)
	us := units(c, values, c.Name+"/")
	r := &renderer{set: template.New("").Option("missingkey=zero")}
	r.set.Funcs(funcs(r))
	parseErr := map[string]error{}
	// Parse everything first: templates include partials from any chart.
	for _, u := range us {
		for _, f := range u.chart.Templates {
			name := u.prefix + f.Name
			if err := r.parse(name, string(f.Data)); err != nil {
				parseErr[name] = err
			}
		}
	}
	var out []rendered
	for _, u := range us {
		for _, f := range u.chart.Templates {
			base := path.Base(f.Name)
			if strings.HasPrefix(base, "_") || strings.HasSuffix(base, ".txt") {
				continue // partials and NOTES.txt
			}
			name := u.prefix + f.Name
			rd := rendered{name: name, src: string(f.Data), values: u.values, chart: u.chart}
			if err := parseErr[name]; err != nil {
				rd.err = err
			} else {
				var b strings.Builder
				err := r.set.ExecuteTemplate(&b, name, data(u, name))
				rd.out, rd.err = strings.ReplaceAll(b.String(), "<no value>", ""), err
			}
			out = append(out, rd)
		}
	}
	return out
}

// undefinedFunc matches text/template's parse error for a function it
// does not know.
var undefinedFunc = regexp.MustCompile(`function "([^"]+)" not defined`)

// parse adds a template file to the set. A function outside funcs (a
// certificate generator, a date) becomes one that returns "": one such
// call in _helpers.tpl would otherwise drop every helper of the chart,
// and an image built from an empty string is discarded, never wrong.
func (r *renderer) parse(name, text string) error {
	for range 32 {
		_, err := r.set.New(name).Parse(text)
		m := undefinedFunc.FindStringSubmatch(fmt.Sprint(err))
		if err == nil || m == nil {
			return err
		}
		r.set.Funcs(template.FuncMap{m[1]: func(...any) string { return "" }})
	}
	return fmt.Errorf("template %s calls too many functions Ferry does not know", name)
}

func (r *renderer) include(name string, data any) (string, error) {
	if r.depth >= maxIncludeDepth {
		return "", fmt.Errorf("include %q: nested more than %d deep", name, maxIncludeDepth)
	}
	r.depth++
	defer func() { r.depth-- }()
	var b strings.Builder
	err := r.set.ExecuteTemplate(&b, name, data)
	return b.String(), err
}

func (r *renderer) tpl(text string, data any) (string, error) {
	if r.depth >= maxIncludeDepth {
		return "", errors.New("tpl: nested too deep")
	}
	r.depth++
	defer func() { r.depth-- }()
	t, err := r.set.Clone()
	if err != nil {
		return "", err
	}
	if t, err = t.New("tpl").Parse(text); err != nil {
		return "", err
	}
	var b strings.Builder
	err = t.Execute(&b, data)
	return strings.ReplaceAll(b.String(), "<no value>", ""), err
}

// data is the root object a template sees: .Values, .Release, .Chart,
// .Capabilities, .Template and .Files.
func data(u unit, name string) map[string]any {
	return map[string]any{
		"Values": u.values,
		// Rendering for discovery installs nothing: any name will do.
		"Release": map[string]any{"Name": "ferry", "Namespace": "default", "Service": "Helm", "IsInstall": true, "IsUpgrade": false, "Revision": 1},
		"Chart":   map[string]any{"Name": u.chart.Name, "Version": u.chart.Version, "AppVersion": u.chart.AppVersion, "Type": u.chart.Type},
		"Capabilities": capabilities{
			KubeVersion: kubeVersion{Version: "v1.31.0", Major: "1", Minor: "31", GitVersion: "v1.31.0"},
			APIVersions: apiVersions{"v1", "apps/v1", "batch/v1", "policy/v1", "networking.k8s.io/v1", "rbac.authorization.k8s.io/v1", "autoscaling/v2"},
			HelmVersion: map[string]any{"Version": "v3.16.0"},
		},
		"Template": map[string]any{"Name": name, "BasePath": u.prefix + "templates"},
		"Files":    chartFiles(u.chart.Files),
	}
}

type capabilities struct {
	KubeVersion kubeVersion
	APIVersions apiVersions
	HelmVersion map[string]any
}

type kubeVersion struct{ Version, Major, Minor, GitVersion string }

func (k kubeVersion) String() string { return k.Version }

type apiVersions []string

// Has reports whether the simulated cluster serves an API version.
func (a apiVersions) Has(v string) bool {
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}

type chartFiles map[string][]byte

// Get returns a file of the chart as a string ("" when absent).
func (f chartFiles) Get(name string) string { return string(f[name]) }

// GetBytes returns a file of the chart.
func (f chartFiles) GetBytes(name string) []byte { return f[name] }

// Lines returns a file of the chart line by line.
func (f chartFiles) Lines(name string) []string {
	if len(f[name]) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(f[name]), "\n"), "\n")
}

// lookup follows a dotted path ("a.b.c") through nested maps.
func lookup(v any, dotted string) (any, bool) {
	for _, k := range strings.Split(dotted, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}
