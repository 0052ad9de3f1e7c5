package catalog_test

// oc-mirror v2 fidelity of the operator catalog filter (issue #10), end to
// end on the synthetic upstream of internal/fixtures: its v4.17 catalog,
// pushed to Debian's docker-registry, mirrored by the ferry binary into a
// real `ferry serve`, and read back from there.
//
// The catalog (tiny size) holds:
//
//	aws-load-balancer-operator (default stable-v1)
//	  stable-v1.0: 1.0.0 <- 1.0.1
//	  stable-v1:   1.0.0 <- 1.0.1 <- 1.1.0 <- 1.1.1
//	local-storage-operator (default stable; operator and operand are manifest lists)
//	  stable: 4.16.0 <- 4.16.1 <- 4.16.2 <- 4.17.0
//	devworkspace-operator (default fast)
//	  fast:      0.29.0 <- 0.30.0 <- 0.31.0
//	  candidate: 0.31.0 <- 0.32.0

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ferry-mirror/ferry/internal/catalog"
	"github.com/ferry-mirror/ferry/internal/fixtures"
	"github.com/ferry-mirror/ferry/internal/testenv"
)

// fidelityEnv is the pushed upstream and the mirror the cases share;
// each case mirrors under its own root.
type fidelityEnv struct {
	u      *fixtures.Upstream
	cat    fixtures.Catalog
	mirror *testenv.Server
}

func startFidelity(t *testing.T) *fidelityEnv {
	t.Helper()
	up := testenv.StartDockerRegistry(t)
	ctx := context.Background()
	u, err := fixtures.Generate(ctx, fixtures.Options{Host: up.Host, Seed: 1, Size: fixtures.SizeTiny})
	must(t, err)
	must(t, u.Push(ctx, fixtures.PushOptions{}))
	return &fidelityEnv{u: u, cat: u.Catalogs[1], mirror: testenv.StartFerry(t, testenv.FerryOptions{})}
}

// run mirrors the v4.17 catalog with the given operators entry fields
// (indented under "- catalog: ...") to root, and returns the output, the
// exit code and the workspace.
func (e *fidelityEnv) run(t *testing.T, root, entry string) (string, int, string) {
	t.Helper()
	isc := writeConfig(t, "  - catalog: "+e.cat.Image.ByTag()+"\n"+entry)
	ws := t.TempDir()
	out, code := ferry(t, "mirror", "-c", isc, "--workspace", "file://"+ws, "docker://"+e.mirror.Host+"/"+root, "--src-tls-verify=false", "--dest-tls-verify=false")
	return out, code, ws
}

// mirroredCatalog is the catalog at root read back from the mirror: its
// digest, bundles (sorted) and channels (package/channel -> entries).
type mirroredCatalog struct {
	digest   string
	bundles  []string
	channels map[string][]string
	defaults map[string]string
}

func (e *fidelityEnv) readCatalog(t *testing.T, root string) mirroredCatalog {
	t.Helper()
	_, rest, _ := strings.Cut(e.cat.Image.ByTag(), "/")
	ref := e.mirror.Host + "/" + root + "/" + rest
	r, err := name.ParseReference(ref, name.Insecure)
	must(t, err)
	desc, err := remote.Head(r)
	if err != nil {
		t.Fatalf("catalog %s is not on the mirror: %v", ref, err)
	}
	img, err := remote.Image(r) // linux/amd64 of the list
	must(t, err)
	cat, err := catalog.ReadImage(context.Background(), ref, img)
	must(t, err)
	mc := mirroredCatalog{digest: desc.Digest.String(), channels: map[string][]string{}, defaults: map[string]string{}}
	for _, b := range cat.Bundles {
		mc.bundles = append(mc.bundles, b.Name)
	}
	sort.Strings(mc.bundles)
	for _, ch := range cat.Channels {
		var names []string
		for _, en := range ch.Entries {
			names = append(names, en.Name)
		}
		mc.channels[ch.Package+"/"+ch.Name] = names
	}
	for _, p := range cat.Packages {
		mc.defaults[p.Name] = p.DefaultChannel
	}
	return mc
}

// onMirror says whether the mirror holds ref (host/repo@digest of the
// upstream) under root, as a manifest or a manifest list.
func (e *fidelityEnv) onMirror(t *testing.T, root, ref string) bool {
	t.Helper()
	_, rest, _ := strings.Cut(ref, "/")
	repo, dg, _ := strings.Cut(rest, "@")
	req, err := http.NewRequest(http.MethodHead, "http://"+e.mirror.Host+"/v2/"+root+"/"+repo+"/manifests/"+dg, nil)
	must(t, err)
	req.Header.Set("Accept", strings.Join([]string{
		"application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json",
		"application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"}, ", "))
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// checkImages asserts that exactly the images the bundles in keep need
// are on the mirror under root: every image of a kept bundle, and none
// that only dropped bundles use.
func (e *fidelityEnv) checkImages(t *testing.T, root string, keep []string) {
	t.Helper()
	need := map[string]bool{}
	all := map[string]bool{}
	for _, p := range e.cat.Packages {
		for _, b := range p.Bundles {
			for _, ref := range b.RelatedImages {
				all[ref] = true
				if slices.Contains(keep, b.Name) {
					need[ref] = true
				}
			}
		}
	}
	refs := make([]string, 0, len(all))
	for ref := range all {
		refs = append(refs, ref)
	}
	sort.Strings(refs)
	for _, ref := range refs {
		if has := e.onMirror(t, root, ref); has != need[ref] {
			t.Errorf("%s: on the mirror = %v, want %v", ref, has, need[ref])
		}
	}
}

// errorsFile returns the failure report of the run in workspace ws.
func errorsFile(t *testing.T, ws, out string) string {
	t.Helper()
	reports, _ := filepath.Glob(filepath.Join(ws, "working-dir", "logs", "mirroring_errors_*.txt"))
	if len(reports) != 1 {
		t.Fatalf("want one failure report, have %v\n%s", reports, out)
	}
	rep, err := os.ReadFile(reports[0])
	must(t, err)
	return string(rep)
}

func TestCatalogFidelity(t *testing.T) {
	e := startFidelity(t)
	t.Run("no-packages-keeps-every-channel-head", func(t *testing.T) {
		out, code, _ := e.run(t, "heads", "")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		mc := e.readCatalog(t, "heads")
		want := []string{"aws-load-balancer-operator.v1.0.1", "aws-load-balancer-operator.v1.1.1", "devworkspace-operator.v0.31.0", "devworkspace-operator.v0.32.0", "local-storage-operator.v4.17.0"}
		if !slices.Equal(mc.bundles, want) {
			t.Errorf("bundles %v, want %v", mc.bundles, want)
		}
		wantCh := map[string][]string{
			"aws-load-balancer-operator/stable-v1.0": {"aws-load-balancer-operator.v1.0.1"},
			"aws-load-balancer-operator/stable-v1":   {"aws-load-balancer-operator.v1.1.1"},
			"local-storage-operator/stable":          {"local-storage-operator.v4.17.0"},
			"devworkspace-operator/fast":             {"devworkspace-operator.v0.31.0"},
			"devworkspace-operator/candidate":        {"devworkspace-operator.v0.32.0"},
		}
		if !mapsEqualStr(mc.channels, wantCh) {
			t.Errorf("channels %v, want %v", mc.channels, wantCh)
		}
		if mc.digest == e.cat.Image.Digest {
			t.Errorf("the filtered catalog has the upstream digest: it was not rebuilt")
		}
		e.checkImages(t, "heads", want)
	})

	t.Run("full-is-the-catalog-unchanged", func(t *testing.T) {
		out, code, ws := e.run(t, "full", "    full: true\n")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		mc := e.readCatalog(t, "full")
		if mc.digest != e.cat.Image.Digest {
			t.Errorf("mirrored catalog digest %s, want the upstream's %s (mirrored unchanged)", mc.digest, e.cat.Image.Digest)
		}
		var every []string
		for _, p := range e.cat.Packages {
			for _, b := range p.Bundles {
				every = append(every, b.Name)
			}
		}
		sort.Strings(every)
		if !slices.Equal(mc.bundles, every) {
			t.Errorf("bundles %v, want all %v", mc.bundles, every)
		}
		e.checkImages(t, "full", every)
		cs, err := os.ReadFile(filepath.Join(ws, "working-dir", "cluster-resources", "cs-redhat-operator-index-v4-17.yaml"))
		if err != nil {
			t.Fatalf("no CatalogSource for the unchanged catalog: %v", err)
		}
		if !strings.Contains(string(cs), "/full/redhat/redhat-operator-index@"+e.cat.Image.Digest) {
			t.Errorf("CatalogSource does not name the catalog by its upstream digest:\n%s", cs)
		}
	})

	t.Run("full-unchanged-through-an-archive", func(t *testing.T) {
		isc := writeConfig(t, "  - catalog: "+e.cat.Image.ByTag()+"\n    full: true\n")
		arch := t.TempDir()
		if out, code := ferry(t, "mirror", "-c", isc, "file://"+arch, "--src-tls-verify=false"); code != 0 {
			t.Fatalf("m2d exited %d\n%s", code, out)
		}
		if out, code := ferry(t, "mirror", "-c", isc, "--from", "file://"+arch, "docker://"+e.mirror.Host+"/full-d2m", "--dest-tls-verify=false"); code != 0 {
			t.Fatalf("d2m exited %d\n%s", code, out)
		}
		if mc := e.readCatalog(t, "full-d2m"); mc.digest != e.cat.Image.Digest {
			t.Errorf("catalog pushed from the archive has digest %s, want the upstream's %s", mc.digest, e.cat.Image.Digest)
		}
		// Every platform's catalog image came along.
		for _, child := range e.children(t, e.cat.Image.ByDigest()) {
			if !e.onMirror(t, "full-d2m", e.cat.Image.Repository+"@"+child) {
				t.Errorf("catalog platform image %s is missing on the mirror", child)
			}
		}
		if _, err := os.Stat(filepath.Join(arch, "working-dir", "cluster-resources", "cs-redhat-operator-index-v4-17.yaml")); err != nil {
			t.Errorf("d2m wrote no CatalogSource for the unchanged catalog: %v", err)
		}
	})

	t.Run("min-equals-max-selects-one-bundle-across-channels", func(t *testing.T) {
		out, code, _ := e.run(t, "exact", "    packages:\n    - name: aws-load-balancer-operator\n      minVersion: 1.0.1\n      maxVersion: 1.0.1\n")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		mc := e.readCatalog(t, "exact")
		want := []string{"aws-load-balancer-operator.v1.0.1"}
		if !slices.Equal(mc.bundles, want) {
			t.Errorf("bundles %v, want %v", mc.bundles, want)
		}
		wantCh := map[string][]string{
			"aws-load-balancer-operator/stable-v1.0": want,
			"aws-load-balancer-operator/stable-v1":   want,
		}
		if !mapsEqualStr(mc.channels, wantCh) {
			t.Errorf("channels %v, want %v", mc.channels, wantCh)
		}
		e.checkImages(t, "exact", want)
	})

	t.Run("min-equals-max-on-a-missing-version-fails-that-package", func(t *testing.T) {
		out, code, ws := e.run(t, "exact-missing", "    packages:\n    - name: aws-load-balancer-operator\n      minVersion: 1.0.1\n      maxVersion: 1.0.1\n"+
			"    - name: devworkspace-operator\n      minVersion: 0.99.0\n      maxVersion: 0.99.0\n")
		if code&4 == 0 {
			t.Fatalf("exit %d, want the operator bit 4\n%s", code, out)
		}
		rep := errorsFile(t, ws, out)
		for _, w := range []string{"devworkspace-operator", "no bundle of version 0.99.0", "0.29.0, 0.30.0, 0.31.0, 0.32.0"} {
			if !strings.Contains(rep, w) {
				t.Errorf("failure report does not say %q:\n%s", w, rep)
			}
		}
		if mc := e.readCatalog(t, "exact-missing"); !slices.Equal(mc.bundles, []string{"aws-load-balancer-operator.v1.0.1"}) {
			t.Errorf("bundles %v, want the other package's aws-load-balancer-operator.v1.0.1", mc.bundles)
		}
		e.checkImages(t, "exact-missing", []string{"aws-load-balancer-operator.v1.0.1"})
	})

	t.Run("unknown-package-and-channel-fail-alone", func(t *testing.T) {
		out, code, ws := e.run(t, "unknown", "    packages:\n    - name: no-such-operator\n"+
			"    - name: devworkspace-operator\n      channels:\n      - name: beta\n"+
			"    - name: aws-load-balancer-operator\n")
		if code&4 == 0 || code&1 != 0 {
			t.Fatalf("exit %d, want the operator bit 4 alone\n%s", code, out)
		}
		rep := errorsFile(t, ws, out)
		for _, w := range []string{
			`package "no-such-operator" is not in the catalog; available packages: aws-load-balancer-operator, devworkspace-operator, local-storage-operator`,
			`channel "beta" is not in package devworkspace-operator; available channels: candidate, fast`,
		} {
			if !strings.Contains(rep, w) {
				t.Errorf("failure report does not say %q:\n%s", w, rep)
			}
		}
		mc := e.readCatalog(t, "unknown")
		want := []string{"aws-load-balancer-operator.v1.0.1", "aws-load-balancer-operator.v1.1.1"}
		if !slices.Equal(mc.bundles, want) {
			t.Errorf("bundles %v, want the listed package that exists, %v", mc.bundles, want)
		}
		e.checkImages(t, "unknown", want)
		if _, err := os.Stat(filepath.Join(ws, "working-dir", "cluster-resources", "cs-redhat-operator-index-v4-17.yaml")); err != nil {
			t.Errorf("no CatalogSource for the rest of the catalog: %v", err)
		}
	})

	t.Run("range-that-empties-a-non-default-channel-drops-it", func(t *testing.T) {
		out, code, _ := e.run(t, "empty-channel", "    packages:\n    - name: aws-load-balancer-operator\n      channels:\n"+
			"      - name: stable-v1\n        minVersion: 1.1.0\n      - name: stable-v1.0\n        minVersion: 1.1.0\n")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		if !strings.Contains(out, "channel stable-v1.0: the version range keeps no bundle of this channel, so the channel is left out") {
			t.Errorf("no warning about the dropped channel:\n%s", out)
		}
		mc := e.readCatalog(t, "empty-channel")
		want := []string{"aws-load-balancer-operator.v1.1.0", "aws-load-balancer-operator.v1.1.1"}
		if !slices.Equal(mc.bundles, want) {
			t.Errorf("bundles %v, want %v", mc.bundles, want)
		}
		wantCh := map[string][]string{"aws-load-balancer-operator/stable-v1": want}
		if !mapsEqualStr(mc.channels, wantCh) {
			t.Errorf("channels %v, want %v", mc.channels, wantCh)
		}
		e.checkImages(t, "empty-channel", want)
	})

	t.Run("platforms-keep-by-digest-lists-whole", func(t *testing.T) {
		out, code, _ := e.run(t, "platforms", "    platforms:\n    - os: linux\n      architecture: amd64\n"+
			"    packages:\n    - name: local-storage-operator\n")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		want := []string{"local-storage-operator.v4.17.0"}
		if mc := e.readCatalog(t, "platforms"); !slices.Equal(mc.bundles, want) {
			t.Errorf("bundles %v, want %v", mc.bundles, want)
		}
		// The bundle names its operator and operand lists by digest: both
		// must resolve on the mirror, with every platform's image.
		lists := 0
		for _, img := range e.u.Catalogs[1].Packages {
			for _, b := range img.Bundles {
				if b.Name != want[0] {
					continue
				}
				for _, ref := range b.RelatedImages {
					if !e.onMirror(t, "platforms", ref) {
						t.Errorf("%s, named by digest in bundle %s, does not resolve on the mirror", ref, b.Name)
					}
					repo, _, _ := strings.Cut(ref, "@")
					for _, child := range e.children(t, ref) {
						lists++
						if !e.onMirror(t, "platforms", repo+"@"+child) {
							t.Errorf("%s: platform image %s is missing on the mirror", ref, child)
						}
					}
				}
			}
		}
		if lists == 0 {
			t.Fatal("the bundle names no manifest list; the fixture should make local-storage-operator multi-arch")
		}
	})

	t.Run("target-catalog-source-template", func(t *testing.T) {
		tmpl := filepath.Join(t.TempDir(), "cs-template.yaml")
		must(t, os.WriteFile(tmpl, []byte(`apiVersion: operators.coreos.com/v1alpha1
kind: CatalogSource
metadata:
  name: ignored
  namespace: ignored-too
  labels:
    team: storage
  annotations:
    example.com/owner: platform
spec:
  sourceType: grpc
  image: example.com/ignored:v1
  displayName: Mirrored operators
  publisher: Lab
  priority: -100
  updateStrategy:
    registryPoll:
      interval: 30m
  grpcPodConfig:
    nodeSelector:
      node-role.kubernetes.io/infra: ""
    securityContextConfig: restricted
status:
  message: from a cluster
`), 0o644))
		out, code, ws := e.run(t, "template", "    targetCatalogSourceTemplate: "+tmpl+"\n    packages:\n    - name: devworkspace-operator\n")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		cs, err := os.ReadFile(filepath.Join(ws, "working-dir", "cluster-resources", "cs-redhat-operator-index-v4-17.yaml"))
		if err != nil {
			t.Fatalf("no CatalogSource: %v", err)
		}
		mc := e.readCatalog(t, "template")
		for _, w := range []string{
			"name: cs-redhat-operator-index-v4-17", "namespace: openshift-marketplace", "sourceType: grpc",
			"image: " + e.mirror.Host + "/template/redhat/redhat-operator-index@" + mc.digest,
			"team: storage", "example.com/owner: platform", "displayName: Mirrored operators", "publisher: Lab", "priority: -100",
			"interval: 30m", "node-role.kubernetes.io/infra: \"\"", "securityContextConfig: restricted",
		} {
			if !strings.Contains(string(cs), w) {
				t.Errorf("CatalogSource lacks %q:\n%s", w, cs)
			}
		}
		for _, w := range []string{"ignored", "status:", "from a cluster"} {
			if strings.Contains(string(cs), w) {
				t.Errorf("CatalogSource keeps %q from the template:\n%s", w, cs)
			}
		}
	})

	t.Run("bad-catalog-source-template-stops-the-run", func(t *testing.T) {
		tmpl := filepath.Join(t.TempDir(), "not-a-cs.yaml")
		must(t, os.WriteFile(tmpl, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"), 0o644))
		out, code, _ := e.run(t, "bad-template", "    targetCatalogSourceTemplate: "+tmpl+"\n    packages:\n    - name: devworkspace-operator\n")
		if code == 0 {
			t.Fatalf("exit 0 with a ConfigMap as CatalogSource template\n%s", out)
		}
		for _, w := range []string{tmpl, "operators.coreos.com/v1alpha1"} {
			if !strings.Contains(out, w) {
				t.Errorf("output does not name %q:\n%s", w, out)
			}
		}
		if e.onMirror(t, "bad-template", e.cat.Packages[2].Bundles[0].RelatedImages[0]) || strings.Contains(out, "images: 1") {
			t.Errorf("images were copied before the template was checked")
		}
	})
}

// children returns the digests of the images of the list ref names on
// the upstream; none for an image.
func (e *fidelityEnv) children(t *testing.T, ref string) []string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	must(t, err)
	desc, err := remote.Get(r)
	must(t, err)
	if !desc.MediaType.IsIndex() {
		return nil
	}
	idx, err := desc.ImageIndex()
	must(t, err)
	im, err := idx.IndexManifest()
	must(t, err)
	var out []string
	for _, d := range im.Manifests {
		out = append(out, d.Digest.String())
	}
	return out
}

func mapsEqualStr(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
