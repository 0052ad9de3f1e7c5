package testenv

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// kubeObject is what every Kubernetes object has, and what a List holds.
type kubeObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Items []kubeObject `yaml:"items"`
}

// AssertKubernetesObjects checks what `oc apply -f dir` needs: every file in
// dir is a .yaml, .yml or .json file of Kubernetes objects (YAML documents,
// or a JSON object or List), each with apiVersion, kind and metadata.name.
// It returns the "Kind/name" of every object. When kubectl is installed it
// also has kubectl read the folder offline and checks it finds as many.
func AssertKubernetesObjects(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("cluster resources: %v", err)
	}
	var objects []string
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		switch filepath.Ext(e.Name()) {
		case ".yaml", ".yml", ".json":
		default:
			t.Errorf("%s is not a .yaml, .yml or .json file of Kubernetes objects; oc apply -f %s would not apply it", path, dir)
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		dec := yaml.NewDecoder(bytes.NewReader(data)) // JSON is YAML too
		for {
			var o kubeObject
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Errorf("%s: not YAML or JSON: %v", path, err)
				break
			}
			items := []kubeObject{o}
			if o.Kind == "List" && o.APIVersion == "v1" {
				items = o.Items
			}
			for _, it := range items {
				if it.APIVersion == "" || it.Kind == "" || it.Metadata.Name == "" {
					t.Errorf("%s: document %d is not a Kubernetes object (apiVersion %q, kind %q, metadata.name %q)", path, n, it.APIVersion, it.Kind, it.Metadata.Name)
				}
				objects = append(objects, it.Kind+"/"+it.Metadata.Name)
			}
			n++
		}
		if n == 0 {
			t.Errorf("%s holds no object", path)
		}
	}
	kubectl, err := LookTool("kubectl")
	if err != nil {
		t.Logf("kubectl is not installed; the folder was checked without it")
		return objects
	}
	// --local reads and prints the objects without a cluster.
	cmd := exec.Command(kubectl, "annotate", "--local", "-f", dir, "-o", "name", "ferry.test/checked=true")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(t.TempDir(), "none"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Errorf("kubectl reading %s: %v\n%s", dir, err, stderr.String())
		return objects
	}
	if got := strings.Fields(string(out)); len(got) != len(objects) {
		t.Errorf("kubectl reads %d objects in %s, want %d:\n%s", len(got), dir, len(objects), out)
	}
	return objects
}
