package release_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestReleaseWorkflows mirrors a range of releases with the KubeVirt
// container and the update graph, registry to registry and through an
// archive whose d2m runs with the graph, signature and upstream servers
// all stopped, and checks what a cluster administrator would: every
// release and component by digest, signatures gpg accepts, the
// UpdateService and its graph image, and the release mirror set.
func TestReleaseWorkflows(t *testing.T) {
	up := startUpstream(t)
	gpg := testenv.Tool(t, "gpg")
	versions := up.graph(t, "stable-4.16").inRange("4.16.3", "4.16.5")
	cfg := testenv.WriteImageSetConfig(t, `  platform:
    graph: true
    kubeVirtContainer: true
    channels:
    - name: stable-4.16
      minVersion: 4.16.3
      maxVersion: 4.16.5
`)
	base := up.u.Additional[0].ByTag() // a manifest list, as ubi9 is
	common := []string{"--src-tls-verify=false", "--dest-tls-verify=false", "--graph-base-image", base}

	m2m := testenv.StartFerry(t, testenv.FerryOptions{})
	ws := t.TempDir()
	out, code := ferry(t, up.env(), append([]string{"mirror", "-c", cfg, "--workspace", "file://" + ws, "docker://" + m2m.Host + "/ocp"}, common...)...)
	if code != 0 {
		t.Fatalf("m2m exit %d:\n%s", code, out)
	}
	t.Run("m2m", func(t *testing.T) {
		up.assertReleases(t, m2m.Host, "ocp", versions, true)
		assertBlobsOnce(t, out, filepath.Join(ws, "working-dir", "plan.json"))
		checkResources(t, gpg, up, filepath.Join(ws, "working-dir", "cluster-resources"), m2m.Host, "ocp", versions)
	})

	archive := t.TempDir()
	out, code = ferry(t, up.env(), append([]string{"mirror", "-c", cfg, "file://" + archive}, common...)...)
	if code != 0 {
		t.Fatalf("m2d exit %d:\n%s", code, out)
	}
	// Nothing upstream answers any more: d2m must need only the archive.
	up.srv.Close()
	up.reg.Stop()
	d2m := testenv.StartFerry(t, testenv.FerryOptions{})
	out, code = ferry(t, []string{"UPDATE_URL_OVERRIDE=http://127.0.0.1:1/graph", "OCP_SIGNATURE_URL=http://127.0.0.1:1/"},
		"mirror", "-c", cfg, "--from", "file://"+archive, "docker://"+d2m.Host+"/ocp", "--dest-tls-verify=false")
	if code != 0 {
		t.Fatalf("d2m exit %d:\n%s", code, out)
	}
	t.Run("m2d-d2m", func(t *testing.T) {
		up.assertReleases(t, d2m.Host, "ocp", versions, true)
		checkResources(t, gpg, up, filepath.Join(archive, "working-dir", "cluster-resources"), d2m.Host, "ocp", versions)
	})
	// A registry that expires untagged manifests keeps every release:
	// the components, pinned by digest, are tagged <version>-<arch>-<name>.
	t.Run("untagged-cleanup", func(t *testing.T) {
		if deleted := testenv.DeleteUntagged(t, d2m.Host, testenv.PlanManifests(t, filepath.Join(archive, "working-dir", "plan.json"))); len(deleted) > 0 {
			t.Errorf("untagged manifests after d2m: %v", deleted)
		}
		up.assertReleases(t, d2m.Host, "ocp", versions, true)
	})
}

// checkResources checks signature-configmap.yaml with gpg, updateService.yaml
// and the graph image it names, and the release IDMS.
func checkResources(t *testing.T, gpg string, up *upstream, dir, host, prefix string, versions []string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "signature-configmap.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	run := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(gpg, append([]string{"--homedir", home, "--batch"}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	if out, err := run("", "--import", up.keyFile); err != nil {
		t.Fatalf("gpg --import: %v\n%s", err, out)
	}
	docs := strings.Split(string(data), "\n---\n")
	if len(docs) != len(versions) {
		t.Errorf("signature-configmap.yaml has %d ConfigMaps, want one per release (%d)", len(docs), len(versions))
	}
	verified := map[string]bool{}
	for _, doc := range docs {
		var cm struct {
			Metadata struct {
				Name      string            `json:"name"`
				Namespace string            `json:"namespace"`
				Labels    map[string]string `json:"labels"`
			} `json:"metadata"`
			BinaryData map[string]string `json:"binaryData"`
		}
		if err := yaml.Unmarshal([]byte(doc), &cm); err != nil {
			t.Fatalf("signature ConfigMap: %v", err)
		}
		if _, ok := cm.Metadata.Labels["release.openshift.io/verification-signatures"]; !ok || cm.Metadata.Namespace != "openshift-config-managed" {
			t.Errorf("ConfigMap %s: namespace %q labels %v", cm.Metadata.Name, cm.Metadata.Namespace, cm.Metadata.Labels)
		}
		sig, err := base64.StdEncoding.DecodeString(cm.BinaryData[cm.Metadata.Name+"-1"])
		if err != nil || len(sig) == 0 {
			t.Fatalf("ConfigMap %s: no %s-1 signature (%v)", cm.Metadata.Name, cm.Metadata.Name, err)
		}
		f := filepath.Join(t.TempDir(), "sig")
		os.WriteFile(f, sig, 0o644)
		if out, err := run("", "--verify", f); err != nil {
			t.Errorf("gpg --verify of %s: %v\n%s", cm.Metadata.Name, err, out)
		}
		out, err := run("", "--decrypt", f)
		if err != nil || !strings.Contains(out, strings.Replace(cm.Metadata.Name, "sha256-", "sha256:", 1)) {
			t.Errorf("signature %s does not sign its digest: %v\n%s", cm.Metadata.Name, err, out)
		}
		verified[cm.Metadata.Name] = true
	}
	for _, v := range versions {
		r, _ := up.u.ReleaseFor(v, "x86_64")
		if !verified[strings.Replace(r.Image.Digest, ":", "-", 1)] {
			t.Errorf("release %s (%s) has no verified signature ConfigMap", v, r.Image.Digest)
		}
	}

	data, err = os.ReadFile(filepath.Join(dir, "updateService.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var us struct {
		Kind string `json:"kind"`
		Spec struct {
			Releases       string `json:"releases"`
			GraphDataImage string `json:"graphDataImage"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &us); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%s/%s/openshift/release-images", host, prefix); us.Kind != "UpdateService" || us.Spec.Releases != want {
		t.Errorf("updateService.yaml: kind %q releases %q, want %s", us.Kind, us.Spec.Releases, want)
	}
	repo, d, ok := strings.Cut(strings.TrimPrefix(us.Spec.GraphDataImage, host+"/"), "@")
	if !ok || repo != prefix+"/openshift/graph-image" || headDigest(t, host, repo, d) != d {
		t.Errorf("graph image %q is not present at the mirror", us.Spec.GraphDataImage)
	}

	jsonData, err := os.ReadFile(filepath.Join(dir, "signature-configmap.json"))
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Kind  string `json:"kind"`
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		} `json:"items"`
	}
	if err := json.Unmarshal(jsonData, &list); err != nil {
		t.Fatalf("signature-configmap.json: %v", err)
	}
	if len(versions) > 1 && (list.Kind != "List" || len(list.Items) != len(versions)) {
		t.Errorf("signature-configmap.json is a %s of %d, want a List of one ConfigMap per release (%d)", list.Kind, len(list.Items), len(versions))
	}
	for _, it := range list.Items {
		if !verified[it.Metadata.Name] {
			t.Errorf("signature-configmap.json holds %s, which signature-configmap.yaml does not", it.Metadata.Name)
		}
	}
	testenv.AssertKubernetesObjects(t, dir)

	data, err = os.ReadFile(filepath.Join(dir, "idms-oc-mirror.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	idms := string(data)
	for _, want := range []string{
		"name: idms-release-0",
		"source: " + up.reg.Host + "/openshift-release-dev/ocp-release\n",
		"- " + host + "/" + prefix + "/openshift/release-images\n",
		"source: " + up.reg.Host + "/openshift-release-dev/ocp-v4.0-art-dev\n",
		"- " + host + "/" + prefix + "/openshift/release\n",
	} {
		if !strings.Contains(idms, want) {
			t.Errorf("idms-oc-mirror.yaml lacks %q:\n%s", want, idms)
		}
	}
}

// assertBlobsOnce checks that the run uploaded each unique blob of its plan
// exactly once, although consecutive releases share most of them.
func assertBlobsOnce(t *testing.T, out, planFile string) {
	t.Helper()
	data, err := os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Images []struct{ Source, DestTag string } `json:"images"`
		Blobs  []struct{ Digest string }          `json:"blobs"`
	}
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`blobs: (\d+) copied`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no blob summary in the output")
	}
	copied, _ := strconv.Atoi(m[1])
	if copied != len(p.Blobs) {
		t.Errorf("%d blobs uploaded for %d unique blobs in the plan; want each uploaded once", copied, len(p.Blobs))
	}
	sources := map[string]int{}
	for _, im := range p.Images {
		sources[im.Source]++
	}
	shared := 0
	for _, n := range sources {
		if n > 1 {
			shared++
		}
	}
	if shared == 0 {
		t.Errorf("no component is shared between the releases; the test shows no deduplication")
	}
	t.Logf("%d images, %d unique blobs uploaded once, %d components shared between releases", len(p.Images), copied, shared)
}
