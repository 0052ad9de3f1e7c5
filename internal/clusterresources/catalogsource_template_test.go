package clusterresources

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestCatalogSourceFromTemplate(t *testing.T) {
	tmplPath := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(tmplPath, []byte(`apiVersion: operators.coreos.com/v1alpha1
kind: CatalogSource
metadata:
  name: from-template
  namespace: somewhere
  uid: 0b3c1f1e-1111-2222-3333-444455556666
  resourceVersion: "12345"
  creationTimestamp: "2024-01-01T00:00:00Z"
  labels:
    team: storage
spec:
  image: registry.redhat.io/redhat/redhat-operator-index:v4.16
  displayName: Lab operators
  updateStrategy:
    registryPoll:
      interval: 10m
  grpcPodConfig:
    extractContent:
      cacheDir: /tmp/cache
      catalogDir: /configs
status:
  connectionState:
    lastObservedState: READY
`), 0o644); err != nil {
		t.Fatal(err)
	}
	tmpl, err := ReadCatalogSourceTemplate(tmplPath)
	if err != nil {
		t.Fatal(err)
	}
	image := "mirror.lan:8443/ocp/redhat/redhat-operator-index@sha256:" + strings.Repeat("a", 64)
	dir := t.TempDir()
	paths, err := WriteCatalogSource(dir, "redhat-operator-index-v4-16", image, tmpl)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := yaml.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	meta := got["metadata"].(map[string]any)
	spec := got["spec"].(map[string]any)
	checks := []struct {
		what string
		have any
		want any
	}{
		{"name", meta["name"], "cs-redhat-operator-index-v4-16"},
		{"namespace", meta["namespace"], "openshift-marketplace"},
		{"label", meta["labels"].(map[string]any)["team"], "storage"},
		{"sourceType", spec["sourceType"], "grpc"},
		{"image", spec["image"], image},
		{"displayName", spec["displayName"], "Lab operators"},
		{"poll interval", spec["updateStrategy"].(map[string]any)["registryPoll"].(map[string]any)["interval"], "10m"},
		{"grpcPodConfig", spec["grpcPodConfig"].(map[string]any)["extractContent"].(map[string]any)["catalogDir"], "/configs"},
	}
	for _, c := range checks {
		if c.have != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.have, c.want)
		}
	}
	for _, f := range []string{"uid", "resourceVersion", "creationTimestamp"} {
		if _, ok := meta[f]; ok {
			t.Errorf("metadata.%s from the template was kept; a cluster sets it", f)
		}
	}
	if _, ok := got["status"]; ok {
		t.Error("status from the template was kept")
	}
	// The template itself is not changed by writing from it.
	again := catalogSource("cs-other", "example.com/other@sha256:"+strings.Repeat("b", 64), tmpl).(map[string]any)
	if again["metadata"].(map[string]any)["name"] != "cs-other" || tmpl.obj["metadata"].(map[string]any)["name"] != "from-template" {
		t.Error("writing a CatalogSource changed the template")
	}
}

func TestReadCatalogSourceTemplateErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, body string
		want       []string
	}{
		{"configmap.yaml", "apiVersion: v1\nkind: ConfigMap\n", []string{"apiVersion is \"v1\"", "operators.coreos.com/v1alpha1"}},
		{"kind.yaml", "apiVersion: operators.coreos.com/v1alpha1\nkind: Subscription\n", []string{"kind is \"Subscription\"", "CatalogSource"}},
		{"internal.yaml", "apiVersion: operators.coreos.com/v1alpha1\nkind: CatalogSource\nspec:\n  sourceType: internal\n", []string{"spec.sourceType is internal", "grpc"}},
		{"cm-source.yaml", "apiVersion: operators.coreos.com/v1alpha1\nkind: CatalogSource\nspec:\n  configMap: my-catalog\n", []string{"spec.configMap is set", "remove spec.configMap"}},
		{"address.yaml", "apiVersion: operators.coreos.com/v1alpha1\nkind: CatalogSource\nspec:\n  address: 10.0.0.1:50051\n", []string{"spec.address is set"}},
		{"broken.yaml", "apiVersion: operators.coreos.com/v1alpha1\nkind: [\n", []string{"not valid YAML"}},
		{"empty.yaml", "", []string{"the file is empty"}},
	}
	for _, c := range cases {
		p := filepath.Join(dir, c.name)
		if err := os.WriteFile(p, []byte(c.body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadCatalogSourceTemplate(p)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range append(c.want, p) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", c.name, err, w)
			}
		}
	}
	missing := filepath.Join(dir, "missing.yaml")
	if _, err := ReadCatalogSourceTemplate(missing); err == nil || !strings.Contains(err.Error(), missing+" does not exist") {
		t.Errorf("missing file: %v", err)
	}
}
