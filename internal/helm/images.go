package helm

import (
	"errors"
	"fmt"
	"io"
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

// podPaths add the pod templates oc-mirror misses: ephemeral containers,
// and CronJobs, whose pod template sits under jobTemplate. With
// DefaultImagePaths they cover every pod template Kubernetes has (Pod,
// Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob).
var podPaths = []string{
	"{.spec.template.spec.ephemeralContainers[*].image}",
	"{.spec.ephemeralContainers[*].image}",
	"{.spec.jobTemplate.spec.template.spec.initContainers[*].image}",
	"{.spec.jobTemplate.spec.template.spec.containers[*].image}",
	"{.spec.jobTemplate.spec.template.spec.ephemeralContainers[*].image}",
}

// Image is one image reference found in a chart and where it was found.
type Image struct {
	Ref   string // normalized: host/path:tag or host/path@digest
	Where string // template and path, for logs
}

// Found is what Images read from a chart's manifests.
type Found struct {
	Images []Image
	// Invalid lists values at an image path that are not image
	// references (an unset value rendered as "repo:"), with where.
	Invalid []string
	// PerTemplate counts the images each template holds, in order.
	PerTemplate []TemplateCount
}

// TemplateCount is the number of image references in one template.
type TemplateCount struct {
	Template string
	Images   int
}

// Images lists the distinct images in rendered manifests, at the image
// paths: DefaultImagePaths, every other pod template, and imagePaths.
// A malformed image path is an error; a manifest that is not YAML is a
// *ChartError.
func Images(manifests []Manifest, imagePaths []string) (*Found, error) {
	all := append(append(append([]string{}, DefaultImagePaths...), podPaths...), imagePaths...)
	paths := make([]imagePath, 0, len(all))
	for _, p := range all {
		pp, err := parsePath(p)
		if err != nil {
			return nil, err
		}
		paths = append(paths, pp)
	}
	res := &Found{}
	seen := map[string]bool{}
	for _, m := range manifests {
		n := 0
		dec := yaml.NewDecoder(strings.NewReader(m.Content))
		for {
			var doc any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				// helm template refuses it too.
				return nil, &ChartError{Msg: fmt.Sprintf("YAML parse error on %s: %v", m.Template, err)}
			}
			for _, p := range paths {
				for _, v := range p.eval(doc) {
					s, ok := v.(string)
					if !ok {
						continue
					}
					ref, err := normalize(s)
					if err != nil {
						res.Invalid = append(res.Invalid, fmt.Sprintf("%s at %s: %q is not an image reference", m.Template, p.text, s))
						continue
					}
					n++
					if !seen[ref] {
						seen[ref] = true
						res.Images = append(res.Images, Image{Ref: ref, Where: m.Template + " at " + p.text})
					}
				}
			}
		}
		res.PerTemplate = append(res.PerTemplate, TemplateCount{Template: m.Template, Images: n})
	}
	sort.Slice(res.Images, func(i, j int) bool { return res.Images[i].Ref < res.Images[j].Ref })
	return res, nil
}

// normalize reads an image reference as the kubelet does: a bare name is
// on docker.io, no tag means latest.
func normalize(s string) (string, error) {
	named, err := reference.ParseNormalizedNamed(strings.TrimSpace(s))
	if err != nil {
		return "", err
	}
	return reference.TagNameOnly(named).String(), nil
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
