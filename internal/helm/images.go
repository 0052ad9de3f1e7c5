package helm

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"gopkg.in/yaml.v3"
)

// DefaultImagePaths are where oc-mirror v2 looks for images in rendered
// manifests; configured imagePaths are added to them.
var DefaultImagePaths = []string{
	"{.spec.template.spec.initContainers[*].image}",
	"{.spec.template.spec.containers[*].image}",
	"{.spec.initContainers[*].image}",
	"{.spec.containers[*].image}",
}

// Image is one image reference found in a chart and where it was found.
type Image struct {
	Ref   string // normalized: host/path:tag or host/path@digest
	Where string // chart file and how, for logs
}

// Images lists the distinct images chart c references, rendered with
// values merged over its defaults, looked up at DefaultImagePaths and
// imagePaths (see the package documentation for what is found). Only a
// malformed image path is an error.
func Images(c *Chart, values map[string]any, imagePaths []string) ([]Image, error) {
	paths := make([]imagePath, 0, len(DefaultImagePaths)+len(imagePaths))
	for _, p := range append(append([]string{}, DefaultImagePaths...), imagePaths...) {
		pp, err := parsePath(p)
		if err != nil {
			return nil, err
		}
		paths = append(paths, pp)
	}
	f := finder{seen: map[string]bool{}}
	for _, rd := range render(c, values) {
		if rd.err != nil {
			for _, ref := range scanTemplate(rd.src, rd.values, rd.chart) {
				f.add(ref, rd.name+" (image: line; the template does not render: "+firstLine(rd.err)+")")
			}
			continue
		}
		dec := yaml.NewDecoder(strings.NewReader(rd.out))
		for {
			var doc any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				// Not YAML after rendering: fall back to its image: lines.
				for _, ref := range scanTemplate(rd.out, nil, rd.chart) {
					f.add(ref, rd.name+" (image: line)")
				}
				break
			}
			for _, p := range paths {
				for _, v := range p.eval(doc) {
					if s, ok := v.(string); ok {
						f.add(s, rd.name+" at "+p.text)
					}
				}
			}
		}
	}
	for _, u := range units(c, mergeInto(deepCopy(c.Values).(map[string]any), []map[string]any{values}, true), c.Name+"/") {
		walkValues(u.values, u.chart.AppVersion, "", func(ref, at string) {
			f.add(ref, u.prefix+"values.yaml at "+at)
		})
	}
	sort.Slice(f.out, func(i, j int) bool { return f.out[i].Ref < f.out[j].Ref })
	return f.out, nil
}

type finder struct {
	seen map[string]bool
	out  []Image
}

// add keeps s when it is a valid image reference; rendering leaves empty
// strings and half-filled references where values are unset.
func (f *finder) add(s, where string) {
	s = strings.Trim(strings.TrimSpace(s), `"'`)
	if s == "" || strings.ContainsAny(s, "{} ") {
		return
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return
	}
	ref := reference.TagNameOnly(named).String()
	if f.seen[ref] {
		return
	}
	f.seen[ref] = true
	f.out = append(f.out, Image{Ref: ref, Where: where})
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// imagePath is a parsed image path: fields, each maybe indexed.
type imagePath struct {
	text  string
	steps []step
}

type step struct {
	field string
	index int // -1: no index; -2: [*]
}

// parsePath reads the subset of Kubernetes JSONPath oc-mirror users write:
// {.a.b[*].c}, with or without braces, [*] or [N] after any field.
func parsePath(s string) (imagePath, error) {
	p := imagePath{text: s}
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(strings.TrimPrefix(t, "{"), "}")
	bad := func(why string) (imagePath, error) {
		return imagePath{}, fmt.Errorf("image path %q: %s; write a field path like {.spec.template.spec.containers[*].image}", s, why)
	}
	if !strings.HasPrefix(t, ".") || len(t) < 2 {
		return bad("it must start with a dot")
	}
	if strings.Contains(t, "..") || strings.ContainsAny(t, "?,()@$ ") {
		return bad("filters, unions and recursive descent are not supported")
	}
	for _, part := range strings.Split(t[1:], ".") {
		st := step{index: -1}
		name, idx, hasIdx := strings.Cut(part, "[")
		st.field = name
		if name == "" && !hasIdx {
			return bad("empty field name")
		}
		if hasIdx {
			if !strings.HasSuffix(idx, "]") || strings.Contains(idx, "[") {
				return bad("an index must be [*] or [N], once per field")
			}
			idx = strings.TrimSuffix(idx, "]")
			if idx == "*" {
				st.index = -2
			} else if n, err := strconv.Atoi(idx); err == nil && n >= 0 {
				st.index = n
			} else {
				return bad("index [" + idx + "] is neither * nor a number")
			}
		}
		p.steps = append(p.steps, st)
	}
	return p, nil
}

// eval returns every value at p in doc; missing fields give nothing.
func (p imagePath) eval(doc any) []any {
	cur := []any{doc}
	for _, st := range p.steps {
		var next []any
		for _, v := range cur {
			if st.field != "" {
				m, ok := v.(map[string]any)
				if !ok {
					continue
				}
				if v, ok = m[st.field]; !ok {
					continue
				}
			}
			switch st.index {
			case -1:
				next = append(next, v)
			case -2:
				if l, ok := v.([]any); ok {
					next = append(next, l...)
				}
			default:
				if l, ok := v.([]any); ok && st.index < len(l) {
					next = append(next, l[st.index])
				}
			}
		}
		cur = next
	}
	return cur
}

// walkValues calls found for every `image` key of values shaped like an
// image: a "repo:tag" or "repo@digest" string, or a map with repository
// and optionally registry, tag and digest. An image without tag or digest
// takes appVersion, the convention of `helm create` charts.
func walkValues(v any, appVersion, at string, found func(ref, at string)) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			here := at + "." + k
			if k == "image" {
				if ref := valuesImage(x[k], appVersion); ref != "" && hasDomain(ref) {
					found(ref, here)
					continue
				}
			}
			walkValues(x[k], appVersion, here, found)
		}
	case []any:
		for i, e := range x {
			walkValues(e, appVersion, fmt.Sprintf("%s[%d]", at, i), found)
		}
	}
}

// hasDomain reports whether ref names its registry. Values often keep the
// registry elsewhere (a global, a template constant): guessing docker.io
// for them would ask for images that do not exist.
func hasDomain(ref string) bool {
	first, _, ok := strings.Cut(ref, "/")
	return ok && (strings.ContainsAny(first, ".:") || first == "localhost")
}

func valuesImage(v any, appVersion string) string {
	switch x := v.(type) {
	case string:
		// A bare name ("nginx") is more often a fragment than an image.
		if strings.ContainsAny(x, ":@") {
			return x
		}
	case map[string]any:
		repo, _ := x["repository"].(string)
		if repo == "" {
			repo, _ = x["name"].(string)
		}
		if repo == "" {
			return ""
		}
		if reg := str(x["registry"]); reg != "" && !strings.HasPrefix(repo, reg+"/") {
			repo = reg + "/" + repo
		}
		if d := str(x["digest"]); d != "" {
			return repo + "@" + d
		}
		tag := str(x["tag"])
		if tag == "" {
			tag = appVersion
		}
		if tag == "" {
			return ""
		}
		return repo + ":" + tag
	}
	return ""
}

var (
	imageLine = regexp.MustCompile(`(?m)^[\s-]*image:\s*(.+?)\s*$`)
	action    = regexp.MustCompile(`\{\{-?\s*(.*?)\s*-?\}\}`)
)

// scanTemplate finds references on the `image:` lines of a template that
// does not render, resolving simple actions ({{ .Values.a.b }},
// {{ .Chart.AppVersion }}, with | default X and | quote) from values.
func scanTemplate(src string, values map[string]any, c *Chart) []string {
	var out []string
	for _, m := range imageLine.FindAllStringSubmatch(src, -1) {
		line := strings.Trim(m[1], `"'`)
		ok := true
		line = action.ReplaceAllStringFunc(line, func(a string) string {
			v, good := simpleAction(action.FindStringSubmatch(a)[1], values, c)
			ok = ok && good
			return v
		})
		if ok {
			out = append(out, strings.Trim(line, `"'`))
		}
	}
	return out
}

func simpleAction(expr string, values map[string]any, c *Chart) (string, bool) {
	stages := strings.Split(expr, "|")
	v, ok := operand(strings.TrimSpace(stages[0]), values, c)
	if !ok {
		return "", false
	}
	for _, st := range stages[1:] {
		fields := strings.Fields(st)
		switch {
		case len(fields) == 1 && (fields[0] == "quote" || fields[0] == "toString" || fields[0] == "trim"):
		case len(fields) == 2 && fields[0] == "default":
			if v == "" {
				if v, ok = operand(fields[1], values, c); !ok {
					return "", false
				}
			}
		default:
			return "", false
		}
	}
	return v, v != ""
}

func operand(s string, values map[string]any, c *Chart) (string, bool) {
	switch {
	case strings.HasPrefix(s, `"`):
		u, err := strconv.Unquote(s)
		return u, err == nil
	case s == ".Chart.AppVersion":
		return c.AppVersion, true
	case s == ".Chart.Version":
		return c.Version, true
	case strings.HasPrefix(s, ".Values."):
		v, found := lookup(values, strings.TrimPrefix(s, ".Values."))
		if !found {
			return "", true // unset: | default may fill it
		}
		if _, isMap := v.(map[string]any); isMap {
			return "", false
		}
		return str(v), true
	}
	return "", false
}
