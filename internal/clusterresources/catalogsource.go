package clusterresources

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/distribution/reference"
	"sigs.k8s.io/yaml"
)

// CatalogSource is operators.coreos.com/v1alpha1 CatalogSource, reduced to
// what is written.
type CatalogSource struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		SourceType string `json:"sourceType"`
		Image      string `json:"image"`
	} `json:"spec"`
}

// ClusterCatalog is olm.operatorframework.io/v1 ClusterCatalog, reduced to
// what is written.
type ClusterCatalog struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		Source struct {
			Type  string `json:"type"`
			Image struct {
				Ref string `json:"ref"`
			} `json:"image"`
		} `json:"source"`
	} `json:"spec"`
}

var notDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// CatalogName turns a catalog image reference into the object name oc-mirror
// would give it: the last path component and tag, as a DNS label
// (registry.redhat.io/redhat/redhat-operator-index:v4.16 gives
// redhat-operator-index-v4-16).
func CatalogName(image string) (string, error) {
	ref, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", fmt.Errorf("catalog image %q: %w", image, err)
	}
	path := reference.Path(ref)
	name := path[strings.LastIndex(path, "/")+1:]
	if t, ok := ref.(reference.Tagged); ok {
		name += "-" + t.Tag()
	}
	name = strings.Trim(notDNS.ReplaceAllString(strings.ToLower(name), "-"), "-")
	return name[:min(len(name), 60)], nil
}

// WriteCatalogSource writes cs-<name>.yaml (a CatalogSource in
// openshift-marketplace, made from tmpl when not nil) and cc-<name>.yaml
// (a ClusterCatalog) for a mirrored catalog image, and returns their paths.
func WriteCatalogSource(dir, name, image string, tmpl *CatalogSourceTemplate) ([]string, error) {
	if name == "" || notDNS.MatchString(name) || strings.HasPrefix(name, "-") || len(name) > 60 {
		return nil, fmt.Errorf("catalog source name %q is not valid: use up to 60 lowercase letters, digits and -", name)
	}
	if _, err := reference.ParseNormalizedNamed(image); err != nil {
		return nil, fmt.Errorf("catalog source %s: image %q: %w", name, image, err)
	}
	cs := catalogSource("cs-"+name, image, tmpl)
	cc := ClusterCatalog{APIVersion: "olm.operatorframework.io/v1", Kind: "ClusterCatalog",
		Metadata: objectMeta{Name: "cc-" + name}}
	cc.Spec.Source.Type, cc.Spec.Source.Image.Ref = "Image", image
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("catalog source %s: %w", name, err)
	}
	var paths []string
	for _, f := range []struct {
		file string
		obj  any
	}{{"cs-" + name + ".yaml", cs}, {"cc-" + name + ".yaml", cc}} {
		data, err := yaml.Marshal(f.obj)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, f.file)
		if err := writeFile(path, data); err != nil {
			return nil, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}
