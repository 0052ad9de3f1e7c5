// Package catalog_test mirrors operator catalogs end to end: the real
// ferry binary, Debian's docker-registry as the upstream and `ferry serve`
// as the mirror, and the rebuilt catalog read back from the mirror.
package catalog_test

import (
	"archive/tar"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ferry-mirror/ferry/internal/catalog"
	"github.com/ferry-mirror/ferry/internal/testenv"
)

func ferry(t *testing.T, args ...string) (string, int) {
	t.Helper()
	return testenv.RunFerry(t, nil, args...)
}

func writeConfig(t *testing.T, operators string) string {
	t.Helper()
	return testenv.WriteImageSetConfig(t, "  operators:\n"+operators)
}

// readBack reads the catalog image at ref from the mirror and returns its
// bundle names, sorted, and whether any layer leaves /tmp/cache in it.
func readBack(t *testing.T, ref string) ([]string, bool) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	must(t, err)
	img, err := remote.Image(r)
	if err != nil {
		t.Fatalf("read rebuilt catalog %s from the mirror: %v", ref, err)
	}
	cat, err := catalog.ReadImage(context.Background(), ref, img)
	must(t, err)
	var names []string
	for _, b := range cat.Bundles {
		names = append(names, b.Name)
	}
	sort.Strings(names)
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	cache := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		if p := strings.TrimPrefix(h.Name, "/"); p == "tmp/cache" || strings.HasPrefix(p, "tmp/cache/") {
			cache = true
		}
	}
	return names, cache
}

// present says whether host holds the manifest ref names (host/repo@digest
// of the upstream) under root.
func present(t *testing.T, mirror, root, upstreamRef string) bool {
	t.Helper()
	_, rest, _ := strings.Cut(upstreamRef, "/")
	repo, dg, _ := strings.Cut(rest, "@")
	req, _ := http.NewRequest(http.MethodHead, "http://"+mirror+"/v2/"+root+"/"+repo+"/manifests/"+dg, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// checkMirrored asserts the rebuilt catalog under root keeps exactly want
// and that exactly the kept bundles' images reached the mirror.
// A catalog mirrored unchanged (full: true, no packages) keeps its cache,
// which matches its configs.
func checkMirrored(t *testing.T, u *upstreamCatalog, mirror, root string, want []string, unchanged bool) {
	t.Helper()
	got, cache := readBack(t, mirror+"/"+root+"/ops/catalog:v1")
	if !slices.Equal(got, want) {
		t.Errorf("rebuilt catalog keeps bundles %v, want %v", got, want)
	}
	if cache && !unchanged {
		t.Errorf("rebuilt catalog still has /tmp/cache: a stale serving cache crashes the catalog pod")
	}
	for _, b := range bundles {
		kept := slices.Contains(want, b.name)
		for _, ref := range u.images[b.name] {
			if has := present(t, mirror, root, ref); has != kept {
				t.Errorf("%s (bundle %s, kept %v): present on the mirror = %v", ref, b.name, kept, has)
			}
		}
	}
}

// digestOf is the digest ref names.
func digestOf(t *testing.T, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	must(t, err)
	d, err := remote.Head(r)
	must(t, err)
	return d.Digest.String()
}

func TestFilterModes(t *testing.T) {
	up := testenv.StartDockerRegistry(t)
	u := pushUpstream(t, up.Host)
	mirror := testenv.StartFerry(t, testenv.FerryOptions{})
	cases := []struct {
		name, packages string
		want           []string
	}{
		{"no-packages", "", []string{"alpha.v1.2.0", "alpha.v2.0.0", "beta.v0.2.0"}},
		{"package-no-channels", "    packages:\n    - name: alpha\n", []string{"alpha.v1.2.0", "alpha.v2.0.0"}},
		{"channel-head", "    packages:\n    - name: alpha\n      defaultChannel: fast\n      channels:\n      - name: fast\n", []string{"alpha.v2.0.0"}},
		{"channel-range", "    packages:\n    - name: alpha\n      channels:\n      - name: stable\n        minVersion: 1.0.0\n        maxVersion: 1.1.0\n", []string{"alpha.v1.0.0", "alpha.v1.1.0"}},
		{"min-equals-max", "    packages:\n    - name: alpha\n      minVersion: 1.1.0\n      maxVersion: 1.1.0\n", []string{"alpha.v1.1.0"}},
		{"full", "    full: true\n", []string{"alpha.v1.0.0", "alpha.v1.1.0", "alpha.v1.2.0", "alpha.v2.0.0", "beta.v0.1.0", "beta.v0.2.0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			isc := writeConfig(t, "  - catalog: "+u.catalogRef()+"\n"+tc.packages)
			ws := t.TempDir()
			args := []string{"mirror", "-c", isc, "--workspace", "file://" + ws, "docker://" + mirror.Host + "/" + tc.name, "--src-tls-verify=false", "--dest-tls-verify=false"}
			if _, code := ferry(t, args...); code != 0 {
				t.Fatalf("m2m exited %d", code)
			}
			checkMirrored(t, u, mirror.Host, tc.name, tc.want, tc.name == "full")
			// full: true with no packages mirrors the catalog as it is; any
			// other filter rebuilds it.
			if same := digestOf(t, mirror.Host+"/"+tc.name+"/ops/catalog:v1") == digestOf(t, u.catalogRef()); same != (tc.name == "full") {
				t.Errorf("mirrored catalog has the upstream digest = %v, want %v", same, tc.name == "full")
			}
			cs, err := os.ReadFile(filepath.Join(ws, "working-dir", "cluster-resources", "cs-catalog-v1.yaml"))
			if err != nil {
				t.Fatalf("no CatalogSource: %v", err)
			}
			for _, s := range []string{"operators.coreos.com/v1alpha1", "openshift-marketplace", "sourceType: grpc", mirror.Host + "/" + tc.name + "/ops/catalog@sha256:"} {
				if !strings.Contains(string(cs), s) {
					t.Errorf("cs-catalog-v1.yaml lacks %q:\n%s", s, cs)
				}
			}
			if _, err := os.Stat(filepath.Join(ws, "working-dir", "cluster-resources", "cc-catalog-v1.yaml")); err != nil {
				t.Errorf("no ClusterCatalog: %v", err)
			}
			testenv.AssertKubernetesObjects(t, filepath.Join(ws, "working-dir", "cluster-resources"))
			if tc.name == "no-packages" { // rebuilt reproducibly: a rerun copies nothing
				out, code := ferry(t, args...)
				if code != 0 {
					t.Fatalf("rerun exited %d", code)
				}
				if !strings.Contains(out, "images: 0 copied") || !strings.Contains(out, "blobs: 0 copied") {
					t.Errorf("rerun copied something; the rebuilt catalog must be reproducible:\n%s", out)
				}
				checkMirrored(t, u, mirror.Host, tc.name, tc.want, tc.name == "full")
			}
		})
	}
}

func TestMirrorToDiskToMirror(t *testing.T) {
	up := testenv.StartDockerRegistry(t)
	u := pushUpstream(t, up.Host)
	isc := writeConfig(t, "  - catalog: "+u.catalogRef()+"\n    packages:\n    - name: alpha\n")
	arch := t.TempDir()
	if _, code := ferry(t, "mirror", "-c", isc, "file://"+arch, "--src-tls-verify=false"); code != 0 {
		t.Fatalf("m2d exited %d", code)
	}
	up.Kill() // d2m must need nothing upstream
	mirror := testenv.StartFerry(t, testenv.FerryOptions{})
	out, code := ferry(t, "mirror", "-c", isc, "--from", "file://"+arch, "docker://"+mirror.Host+"/disk", "--dest-tls-verify=false")
	if code != 0 {
		t.Fatalf("d2m exited %d", code)
	}
	checkMirrored(t, u, mirror.Host, "disk", []string{"alpha.v1.2.0", "alpha.v2.0.0"}, false)
	// Bundles and operands are pinned by digest; each keeps a tag, so a
	// registry that expires untagged manifests keeps them all.
	if deleted := testenv.DeleteUntagged(t, mirror.Host, testenv.PlanManifests(t, filepath.Join(arch, "working-dir", "plan.json"))); len(deleted) > 0 {
		t.Errorf("untagged manifests after d2m: %v", deleted)
	}
	checkMirrored(t, u, mirror.Host, "disk", []string{"alpha.v1.2.0", "alpha.v2.0.0"}, false)
	idms, err := os.ReadFile(filepath.Join(arch, "working-dir", "cluster-resources", "idms-oc-mirror.yaml"))
	if err != nil {
		t.Fatalf("d2m wrote no IDMS: %v\n%s", err, out)
	}
	// One entry, widened to the namespace as oc-mirror does, covers the
	// bundles and operands under ops/.
	for _, s := range []string{"name: idms-operator-0\n", "source: " + up.Host + "/ops\n", "- " + mirror.Host + "/disk/ops\n"} {
		if !strings.Contains(string(idms), s) {
			t.Errorf("idms-oc-mirror.yaml lacks %q:\n%s", s, idms)
		}
	}
	testenv.AssertKubernetesObjects(t, filepath.Join(arch, "working-dir", "cluster-resources"))
	if _, err := os.Stat(filepath.Join(arch, "working-dir", "cluster-resources", "cs-catalog-v1.yaml")); err != nil {
		t.Errorf("d2m wrote no CatalogSource: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	up := testenv.StartDockerRegistry(t)
	u := pushUpstream(t, up.Host)
	mirror := testenv.StartFerry(t, testenv.FerryOptions{})
	cases := []struct {
		name, operators string
		want            []string
	}{
		{"min-above-max", "  - catalog: " + u.catalogRef() + "\n    packages:\n    - name: alpha\n      minVersion: 1.2.0\n      maxVersion: 1.0.0\n", []string{"1.2.0", "1.0.0"}},
		{"no-label", "  - catalog: " + up.Host + "/ops/bad:nolabel\n", []string{catalog.ConfigsLabel}},
		{"invalid-fbc", "  - catalog: " + up.Host + "/ops/bad:invalid\n", []string{"broken/catalog.json:3"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			isc := writeConfig(t, tc.operators)
			out, code := ferry(t, "mirror", "-c", isc, "--workspace", "file://"+t.TempDir(), "docker://"+mirror.Host+"/bad", "--src-tls-verify=false", "--dest-tls-verify=false")
			if code == 0 {
				t.Fatalf("exit 0 for bad input")
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not name %q", w)
				}
			}
			if strings.Contains(out, "panic") {
				t.Errorf("ferry crashed")
			}
		})
	}
}

func TestRelatedImageMissing(t *testing.T) {
	up := testenv.StartDockerRegistry(t)
	u := pushUpstream(t, up.Host)
	mirror := testenv.StartFerry(t, testenv.FerryOptions{})
	isc := writeConfig(t, "  - catalog: "+up.Host+"/ops/bad:missing\n")
	ws := t.TempDir()
	out, code := ferry(t, "mirror", "-c", isc, "--workspace", "file://"+ws, "docker://"+mirror.Host+"/m", "--src-tls-verify=false", "--dest-tls-verify=false")
	if code&4 == 0 {
		t.Fatalf("exit %d, want the operator bit 4 set", code)
	}
	reports, _ := filepath.Glob(filepath.Join(ws, "working-dir", "logs", "mirroring_errors_*.txt"))
	if len(reports) != 1 {
		t.Fatalf("want one failure report, have %v\n%s", reports, out)
	}
	rep, err := os.ReadFile(reports[0])
	must(t, err)
	if !strings.Contains(string(rep), "beta.v0.2.0") || strings.Contains(string(rep), "alpha.v1.2.0") {
		t.Errorf("failure report must name bundle beta.v0.2.0 and only it:\n%s", rep)
	}
	for _, ref := range append(u.images["alpha.v1.2.0"], u.images["beta.v0.2.0"][:2]...) {
		_, rest, _ := strings.Cut(ref, "/")
		repo, dg, _ := strings.Cut(rest, "@")
		if !present(t, mirror.Host, "m", up.Host+"/"+repo+"@"+dg) {
			t.Errorf("%s was not mirrored though only another image failed", ref)
		}
	}
}

func TestListOperators(t *testing.T) {
	up := testenv.StartDockerRegistry(t)
	u := pushUpstream(t, up.Host)
	out, code := ferry(t, "list", "operators", "--catalog", u.catalogRef(), "--src-tls-verify=false")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, w := range []string{"alpha", "beta", "fast", "alpha.v2.0.0", "1.0.0, 1.1.0, 1.2.0"} {
		if !strings.Contains(out, w) {
			t.Errorf("list lacks %q", w)
		}
	}
	out, code = ferry(t, "list", "operators", "--catalog", u.catalogRef(), "--package", "gamma", "--src-tls-verify=false")
	if code == 0 || !strings.Contains(out, "alpha, beta") {
		t.Errorf("unknown package: exit %d, want an error listing alpha, beta", code)
	}
}

// bundlesOf parses the configs of a rebuilt catalog image and returns its
// bundle names, sorted, failing when a serving cache is left in it.
func bundlesOf(t *testing.T, ref string, img v1.Image) []string {
	t.Helper()
	cat, err := catalog.ReadImage(context.Background(), ref, img)
	must(t, err)
	var names []string
	for _, b := range cat.Bundles {
		names = append(names, b.Name)
	}
	sort.Strings(names)
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		if strings.HasPrefix(strings.TrimPrefix(h.Name, "/"), "tmp/cache") {
			t.Errorf("%s still has %s", ref, h.Name)
		}
	}
	return names
}

// TestMultiArchLayoutAndDigest mirrors, through an archive with the
// upstream gone for d2m, a multi-architecture catalog (rebuilt as a list),
// a catalog from an oci:// layout folder with targetCatalog/targetTag, and
// a catalog named by digest (tagged from its rebuilt digest).
func TestMultiArchLayoutAndDigest(t *testing.T) {
	up := testenv.StartDockerRegistry(t)
	u := pushUpstream(t, up.Host)
	u.multiArch(t)
	dir := u.layoutCatalog(t)
	r, err := name.ParseReference(u.catalogRef(), name.Insecure)
	must(t, err)
	desc, err := remote.Head(r)
	must(t, err)
	byDigest := up.Host + "/ops/catalog@" + desc.Digest.String()
	isc := writeConfig(t, "  - catalog: "+up.Host+"/ops/multi:v1\n    packages:\n    - name: beta\n"+
		"  - catalog: oci://"+dir+"\n    targetCatalog: ops/from-layout\n    targetTag: v9\n    packages:\n    - name: alpha\n      defaultChannel: fast\n      channels:\n      - name: fast\n"+
		"  - catalog: "+byDigest+"\n    packages:\n    - name: alpha\n      minVersion: 1.0.0\n      maxVersion: 1.0.0\n")
	arch := t.TempDir()
	if _, code := ferry(t, "mirror", "-c", isc, "file://"+arch, "--src-tls-verify=false"); code != 0 {
		t.Fatalf("m2d exited %d", code)
	}
	up.Kill()
	mirror := testenv.StartFerry(t, testenv.FerryOptions{})
	if _, code := ferry(t, "mirror", "-c", isc, "--from", "file://"+arch, "docker://"+mirror.Host+"/x", "--dest-tls-verify=false"); code != 0 {
		t.Fatalf("d2m exited %d", code)
	}

	ref := mirror.Host + "/x/ops/multi:v1"
	mr, err := name.ParseReference(ref, name.Insecure)
	must(t, err)
	idx, err := remote.Index(mr)
	if err != nil {
		t.Fatalf("rebuilt multi-arch catalog %s: %v", ref, err)
	}
	im, err := idx.IndexManifest()
	must(t, err)
	var arches []string
	for _, d := range im.Manifests {
		arches = append(arches, d.Platform.Architecture)
		img, err := idx.Image(d.Digest)
		must(t, err)
		if got := bundlesOf(t, ref+"@"+d.Digest.String(), img); !slices.Equal(got, []string{"beta.v0.2.0"}) {
			t.Errorf("%s image keeps %v, want [beta.v0.2.0]", d.Platform.Architecture, got)
		}
	}
	if !slices.Equal(arches, []string{"amd64", "arm64"}) {
		t.Errorf("rebuilt list has platforms %v, want amd64 and arm64", arches)
	}

	if got, _ := readBack(t, mirror.Host+"/x/ops/from-layout:v9"); !slices.Equal(got, []string{"alpha.v2.0.0"}) {
		t.Errorf("catalog from the OCI layout keeps %v, want [alpha.v2.0.0]", got)
	}

	repo, err := name.NewRepository(mirror.Host+"/x/ops/catalog", name.Insecure)
	must(t, err)
	tags, err := remote.List(repo)
	must(t, err)
	found := false
	for _, tag := range tags {
		if len(tag) != 64 {
			continue
		}
		found = true
		d, err := remote.Head(repo.Tag(tag))
		must(t, err)
		if d.Digest.Hex != tag {
			t.Errorf("digest source tagged %s, but that tag holds %s", tag, d.Digest)
		}
		if got, _ := readBack(t, repo.Tag(tag).String()); !slices.Equal(got, []string{"alpha.v1.0.0"}) {
			t.Errorf("digest-source catalog keeps %v, want [alpha.v1.0.0]", got)
		}
	}
	if !found {
		t.Errorf("digest source: no tag from the rebuilt digest in %v", tags)
	}
	for _, f := range []string{"cs-multi-v1.yaml", "cs-from-layout-v9.yaml"} {
		if _, err := os.Stat(filepath.Join(arch, "working-dir", "cluster-resources", f)); err != nil {
			t.Errorf("d2m wrote no %s: %v", f, err)
		}
	}
}

// TestFullFromLayoutUnchanged: full: true with no packages mirrors a
// catalog from an oci:// layout as it is, with the layout's digest.
func TestFullFromLayoutUnchanged(t *testing.T) {
	up := testenv.StartDockerRegistry(t)
	u := pushUpstream(t, up.Host)
	dir := u.layoutCatalog(t)
	p, err := layout.FromPath(dir)
	must(t, err)
	idx, err := p.ImageIndex()
	must(t, err)
	im, err := idx.IndexManifest()
	must(t, err)
	want := im.Manifests[0].Digest.String()
	mirror := testenv.StartFerry(t, testenv.FerryOptions{})
	isc := writeConfig(t, "  - catalog: oci://"+dir+"\n    full: true\n")
	if out, code := ferry(t, "mirror", "-c", isc, "--workspace", "file://"+t.TempDir(), "docker://"+mirror.Host+"/lay", "--src-tls-verify=false", "--dest-tls-verify=false"); code != 0 {
		t.Fatalf("m2m exited %d\n%s", code, out)
	}
	if got := digestOf(t, mirror.Host+"/lay/my-catalog:latest"); got != want {
		t.Errorf("catalog from the layout has digest %s on the mirror, want the layout's %s", got, want)
	}
	got, _ := readBack(t, mirror.Host+"/lay/my-catalog:latest")
	if len(got) != len(bundles) {
		t.Errorf("catalog keeps %v, want all %d bundles", got, len(bundles))
	}
}
