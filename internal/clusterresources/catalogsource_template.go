package clusterresources

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"

	"sigs.k8s.io/yaml"
)

// CatalogSourceTemplate is a CatalogSource read from an operators entry's
// targetCatalogSourceTemplate. As oc-mirror does, the CatalogSource written
// for the mirrored catalog is the template with its name, namespace
// (openshift-marketplace), spec.sourceType (grpc) and spec.image set by
// Ferry; every other field (labels, annotations, spec.displayName,
// publisher, priority, updateStrategy, grpcPodConfig, secrets, ...) is
// kept as written.
type CatalogSourceTemplate struct {
	path string
	obj  map[string]any
}

// ReadCatalogSourceTemplate reads and checks a targetCatalogSourceTemplate
// file.
func ReadCatalogSourceTemplate(path string) (*CatalogSourceTemplate, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("targetCatalogSourceTemplate %s does not exist; fix the path (it is read relative to the current folder)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("targetCatalogSourceTemplate: %w", err)
	}
	var obj map[string]any
	if err := yaml.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("targetCatalogSourceTemplate %s is not valid YAML: %w", path, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("targetCatalogSourceTemplate %s: "+format, append([]any{path}, args...)...)
	}
	if obj == nil {
		return nil, bad("the file is empty; write a CatalogSource (apiVersion operators.coreos.com/v1alpha1)")
	}
	if v, _ := obj["apiVersion"].(string); v != "operators.coreos.com/v1alpha1" {
		return nil, bad("apiVersion is %q; a CatalogSource template must have apiVersion operators.coreos.com/v1alpha1", v)
	}
	if k, _ := obj["kind"].(string); k != "CatalogSource" {
		return nil, bad("kind is %q; the template must be a CatalogSource", k)
	}
	if _, ok := obj["metadata"].(map[string]any); !ok && obj["metadata"] != nil {
		return nil, bad("metadata is not a mapping")
	}
	spec, ok := obj["spec"].(map[string]any)
	if !ok && obj["spec"] != nil {
		return nil, bad("spec is not a mapping")
	}
	if st, _ := spec["sourceType"].(string); spec["sourceType"] != nil && st != "grpc" {
		return nil, bad("spec.sourceType is %v; the mirrored catalog is served over grpc, so leave it out or set grpc", spec["sourceType"])
	}
	// Either would make the cluster read its catalog elsewhere than from
	// the mirrored image.
	for _, f := range []string{"configMap", "address"} {
		if v, ok := spec[f]; ok && v != "" && v != nil {
			return nil, bad("spec.%s is set; the CatalogSource must serve the mirrored image, so remove spec.%s", f, f)
		}
	}
	return &CatalogSourceTemplate{path: path, obj: obj}, nil
}

// catalogSource returns the CatalogSource to write: the template (nil for
// none) with Ferry's name, namespace, source type and image.
func catalogSource(name, image string, tmpl *CatalogSourceTemplate) any {
	if tmpl == nil {
		cs := CatalogSource{APIVersion: "operators.coreos.com/v1alpha1", Kind: "CatalogSource",
			Metadata: objectMeta{Name: name, Namespace: "openshift-marketplace"}}
		cs.Spec.SourceType, cs.Spec.Image = "grpc", image
		return cs
	}
	obj := deepCopy(tmpl.obj).(map[string]any)
	meta, _ := obj["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
	}
	// Fields a cluster sets: a template exported with `oc get -o yaml`
	// would otherwise not apply.
	for _, f := range []string{"creationTimestamp", "resourceVersion", "uid", "generation", "managedFields", "selfLink"} {
		delete(meta, f)
	}
	meta["name"], meta["namespace"] = name, "openshift-marketplace"
	spec, _ := obj["spec"].(map[string]any)
	if spec == nil {
		spec = map[string]any{}
	}
	spec["sourceType"], spec["image"] = "grpc", image
	obj["metadata"], obj["spec"] = meta, spec
	delete(obj, "status")
	return obj
}

func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := maps.Clone(v)
		for k, e := range m {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, e := range v {
			s[i] = deepCopy(e)
		}
		return s
	}
	return v
}
