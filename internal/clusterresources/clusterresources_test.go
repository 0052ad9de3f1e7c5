package clusterresources

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"sigs.k8s.io/yaml"
)

const (
	d1 = "@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	d2 = "@sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

var mappings = []Mapping{
	{Source: "quay.io/openshift-release-dev/ocp-release" + d1, Destination: "mirror.lan:8443/ocp/openshift/release-images:4.16.3-x86_64", Section: SectionRelease},
	{Source: "quay.io/openshift-release-dev/ocp-v4.0-art-dev" + d1, Destination: "mirror.lan:8443/ocp/openshift/release:4.16.3-x86_64-etcd", Section: SectionRelease},
	{Source: "quay.io/openshift-release-dev/ocp-v4.0-art-dev" + d2, Destination: "mirror.lan:8443/ocp/openshift/release:4.16.3-x86_64-cli", Section: SectionRelease},
	{Source: "registry.redhat.io/redhat/redhat-operator-index:v4.16", Destination: "mirror.lan:8443/ocp/redhat/redhat-operator-index:v4.16", Section: SectionOperator},
	{Source: "registry.redhat.io/rhel9/bundle" + d1, Destination: "mirror.lan:8443/ocp/rhel9/bundle:sha256-1111", Section: SectionOperator},
	{Source: "registry.example.com:5000/team/app" + d2, Destination: "mirror.lan:8443/ocp/team/app:sha256-2222", Section: SectionAdditional},
	{Source: "registry.example.com:5000/team/app:v1", Destination: "mirror.lan:8443/ocp/team/app:v1", Section: SectionAdditional},
	{Source: "registry.example.com:5000/team/app:v1", Destination: "mirror.lan:8443/ocp/team/app:v1", Section: SectionAdditional}, // duplicate
	{Source: "ubuntu:22.04", Destination: "mirror.lan:8443/ocp/library/ubuntu:22.04", Section: SectionAdditional},
	{Source: "quay.io/charts/nginx" + d1, Destination: "mirror.lan:8443/ocp/charts/nginx:sha256-1111", Section: SectionHelm},
	{Source: "quay.io/team/tool" + d1, Destination: "mirror.lan:8443/other/team/tool:sha256-1111", Section: SectionAdditional},
	{Source: "quay.io/team/tool" + d1, Destination: "mirror.lan:8443/ocp/team/tool:sha256-1111", Section: SectionAdditional},
}

var docSeparator = regexp.MustCompile(`(?m)^---\n`)

// docs splits a multi-document YAML file and decodes each into a T.
func docs[T any](t *testing.T, path string) []T {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	for _, d := range docSeparator.Split(string(data), -1) {
		var v T
		if err := yaml.UnmarshalStrict([]byte(d), &v); err != nil {
			t.Fatalf("%s: %v\n%s", path, err, d)
		}
		out = append(out, v)
	}
	return out
}

func TestWrite(t *testing.T) {
	wd := filepath.Join(t.TempDir(), "working-dir")
	dir, host := filepath.Join(wd, ClusterResourcesDir), filepath.Join(wd, HostConfigDir)
	// What an earlier version left in cluster-resources/ goes away.
	os.MkdirAll(dir, 0o755)
	for _, f := range legacyFiles {
		os.WriteFile(filepath.Join(dir, f), []byte("old"), 0o644)
	}
	paths, err := Write(dir, host, mappings, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "idms-oc-mirror.yaml"), filepath.Join(dir, "itms-oc-mirror.yaml"), filepath.Join(host, "registries.conf"), filepath.Join(host, "install-config-snippet.yaml")}
	if !reflect.DeepEqual(paths, want) {
		t.Errorf("paths = %v, want %v", paths, want)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("cluster-resources holds %v, want only the two mirror set files", ents)
	}

	idms := docs[ImageDigestMirrorSet](t, filepath.Join(dir, IDMSFile))
	wantIDMS := map[string][]ImageMirrors{
		"idms-generic-0": {
			{Source: "quay.io/charts", Mirrors: []string{"mirror.lan:8443/ocp/charts"}},
			{Source: "quay.io/team", Mirrors: []string{"mirror.lan:8443/ocp/team", "mirror.lan:8443/other/team"}},
			{Source: "registry.example.com:5000/team", Mirrors: []string{"mirror.lan:8443/ocp/team"}},
		},
		"idms-operator-0": {
			{Source: "registry.redhat.io/rhel9", Mirrors: []string{"mirror.lan:8443/ocp/rhel9"}},
		},
		"idms-release-0": {
			{Source: "quay.io/openshift-release-dev/ocp-release", Mirrors: []string{"mirror.lan:8443/ocp/openshift/release-images"}},
			{Source: "quay.io/openshift-release-dev/ocp-v4.0-art-dev", Mirrors: []string{"mirror.lan:8443/ocp/openshift/release"}},
		},
	}
	if len(idms) != len(wantIDMS) {
		t.Fatalf("%d IDMS objects, want %d", len(idms), len(wantIDMS))
	}
	for i, o := range idms {
		if o.APIVersion != "config.openshift.io/v1" || o.Kind != "ImageDigestMirrorSet" {
			t.Errorf("IDMS %d is %s %s", i, o.APIVersion, o.Kind)
		}
		if !reflect.DeepEqual(o.Spec.ImageDigestMirrors, wantIDMS[o.Metadata.Name]) {
			t.Errorf("%s = %+v\nwant %+v", o.Metadata.Name, o.Spec.ImageDigestMirrors, wantIDMS[o.Metadata.Name])
		}
	}
	if idms[0].Metadata.Name != "idms-generic-0" || idms[2].Metadata.Name != "idms-release-0" {
		t.Errorf("IDMS objects not sorted by name: %s, %s, %s", idms[0].Metadata.Name, idms[1].Metadata.Name, idms[2].Metadata.Name)
	}

	itms := docs[ImageTagMirrorSet](t, filepath.Join(dir, ITMSFile))
	wantITMS := map[string][]ImageMirrors{
		"itms-generic-0": {
			{Source: "docker.io/library", Mirrors: []string{"mirror.lan:8443/ocp/library"}},
			{Source: "registry.example.com:5000/team", Mirrors: []string{"mirror.lan:8443/ocp/team"}},
		},
		"itms-operator-0": {
			{Source: "registry.redhat.io/redhat", Mirrors: []string{"mirror.lan:8443/ocp/redhat"}},
		},
	}
	if len(itms) != len(wantITMS) {
		t.Fatalf("%d ITMS objects, want %d", len(itms), len(wantITMS))
	}
	for _, o := range itms {
		if o.Kind != "ImageTagMirrorSet" || !reflect.DeepEqual(o.Spec.ImageTagMirrors, wantITMS[o.Metadata.Name]) {
			t.Errorf("%s %s = %+v\nwant %+v", o.Kind, o.Metadata.Name, o.Spec.ImageTagMirrors, wantITMS[o.Metadata.Name])
		}
	}

	ic := docs[InstallConfigSnippet](t, filepath.Join(host, InstallConfigFile))[0]
	if len(ic.ImageDigestSources) != 8 || ic.AdditionalTrustBundle != "" || ic.AdditionalTrustBundlePolicy != "" {
		t.Errorf("install-config snippet = %+v", ic)
	}
	if got := ic.ImageDigestSources[0]; got.Source != "docker.io/library" {
		t.Errorf("first imageDigestSource = %+v, want sorted by source and widened", got)
	}
}

func TestWiden(t *testing.T) {
	for _, tc := range []struct{ src, dst, wantSrc, wantDst string }{
		{"registry.redhat.io/rhel9/bundle", "m.lan:8443/ocp/rhel9/bundle", "registry.redhat.io/rhel9", "m.lan:8443/ocp/rhel9"},
		{"registry.redhat.io/rhel9/bundle", "m.lan:8443/rhel9/bundle", "registry.redhat.io/rhel9", "m.lan:8443/rhel9"},
		{"quay.io/app", "m.lan/ocp/app", "quay.io", "m.lan/ocp"},
		// a release, a targetRepo or a folded path: the names differ, so nothing is widened
		{"quay.io/openshift-release-dev/ocp-v4.0-art-dev", "m.lan/ocp/openshift/release", "quay.io/openshift-release-dev/ocp-v4.0-art-dev", "m.lan/ocp/openshift/release"},
		{"quay.io/rhel9/bundle", "m.lan/ocp/xrhel9/bundle", "quay.io/rhel9/bundle", "m.lan/ocp/xrhel9/bundle"},
		{"quay.io/a/b/c", "m.lan/ocp/a-b-c", "quay.io/a/b/c", "m.lan/ocp/a-b-c"},
	} {
		s, d := widen(tc.src, tc.dst)
		if s != tc.wantSrc || d != tc.wantDst {
			t.Errorf("widen(%s, %s) = %s, %s; want %s, %s", tc.src, tc.dst, s, d, tc.wantSrc, tc.wantDst)
		}
	}
}

// registriesConfFile is containers-registries.conf v2, as far as Ferry writes it.
type registriesConfFile struct {
	UnqualifiedSearchRegistries []string `toml:"unqualified-search-registries"`
	Registry                    []struct {
		Prefix   string
		Location string
		Mirror   []struct {
			Location       string
			PullFromMirror string `toml:"pull-from-mirror"`
			Insecure       bool
		}
	}
}

func TestRegistriesConf(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(dir, dir, mappings, Options{InsecureMirrors: true}); err != nil {
		t.Fatal(err)
	}
	var conf registriesConfFile
	md, err := toml.DecodeFile(filepath.Join(dir, RegistriesConfFile), &conf)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Errorf("unexpected keys: %v", u)
	}
	if conf.UnqualifiedSearchRegistries == nil || len(conf.UnqualifiedSearchRegistries) != 0 {
		t.Errorf("unqualified-search-registries = %v, want []", conf.UnqualifiedSearchRegistries)
	}
	got := map[string][]string{}
	for _, r := range conf.Registry {
		if r.Prefix != r.Location {
			t.Errorf("registry %s has location %s; the source location must stay as is", r.Prefix, r.Location)
		}
		if _, dup := got[r.Prefix]; dup {
			t.Errorf("registry %s listed twice; containers/image refuses that", r.Prefix)
		}
		for _, m := range r.Mirror {
			if !m.Insecure {
				t.Errorf("mirror %s not insecure with InsecureMirrors", m.Location)
			}
			got[r.Prefix] = append(got[r.Prefix], m.Location+" "+m.PullFromMirror)
		}
	}
	want := map[string][]string{
		"docker.io/library/ubuntu":                        {"mirror.lan:8443/ocp/library/ubuntu all"},
		"quay.io/charts/nginx":                            {"mirror.lan:8443/ocp/charts/nginx digest-only"},
		"quay.io/openshift-release-dev/ocp-release":       {"mirror.lan:8443/ocp/openshift/release-images digest-only"},
		"quay.io/openshift-release-dev/ocp-v4.0-art-dev":  {"mirror.lan:8443/ocp/openshift/release digest-only"},
		"quay.io/team/tool":                               {"mirror.lan:8443/ocp/team/tool digest-only", "mirror.lan:8443/other/team/tool digest-only"},
		"registry.example.com:5000/team/app":              {"mirror.lan:8443/ocp/team/app all"},
		"registry.redhat.io/redhat/redhat-operator-index": {"mirror.lan:8443/ocp/redhat/redhat-operator-index all"},
		"registry.redhat.io/rhel9/bundle":                 {"mirror.lan:8443/ocp/rhel9/bundle digest-only"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("registries.conf mirrors:\n%v\nwant\n%v", got, want)
	}
}

func TestWriteIsDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	if _, err := Write(a, a, mappings, Options{}); err != nil {
		t.Fatal(err)
	}
	rev := make([]Mapping, len(mappings))
	for i, m := range mappings {
		rev[len(mappings)-1-i] = m
	}
	if _, err := Write(b, b, rev, Options{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{IDMSFile, ITMSFile, RegistriesConfFile, InstallConfigFile} {
		x, _ := os.ReadFile(filepath.Join(a, f))
		y, _ := os.ReadFile(filepath.Join(b, f))
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs when the mappings come in another order", f)
		}
	}
}

func TestNoTagsNoITMS(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(dir, dir, mappings, Options{}); err != nil {
		t.Fatal(err)
	}
	digestOnly := []Mapping{mappings[0], mappings[1]}
	paths, err := Write(dir, dir, digestOnly, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 3 {
		t.Errorf("paths = %v, want idms, registries.conf and the install-config snippet", paths)
	}
	if _, err := os.Stat(filepath.Join(dir, ITMSFile)); !os.IsNotExist(err) {
		t.Errorf("a stale %s is left from the previous run: %v", ITMSFile, err)
	}
	paths, err = Write(dir, dir, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, IDMSFile)); !os.IsNotExist(err) || len(paths) != 2 {
		t.Errorf("with no mappings: paths %v, idms %v", paths, err)
	}
}

func TestManyRepositoriesSplitObjects(t *testing.T) {
	var many []Mapping
	for i := 0; i < maxMirrorsPerObject+5; i++ {
		many = append(many, Mapping{Source: "quay.io/ns/repo" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + "-" + itoa(i) + d1, Destination: "mirror.lan/ns/repo-" + itoa(i) + ":t", Section: SectionOperator})
	}
	dir := t.TempDir()
	if _, err := Write(dir, dir, many, Options{}); err != nil {
		t.Fatal(err)
	}
	idms := docs[ImageDigestMirrorSet](t, filepath.Join(dir, IDMSFile))
	if len(idms) != 2 || idms[0].Metadata.Name != "idms-operator-0" || idms[1].Metadata.Name != "idms-operator-1" || len(idms[0].Spec.ImageDigestMirrors)+len(idms[1].Spec.ImageDigestMirrors) != len(many) {
		t.Errorf("got %d objects", len(idms))
	}
}

func itoa(i int) string { return big.NewInt(int64(i)).String() }

func TestCABundle(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	certPEM := selfSigned(t)
	if err := os.WriteFile(ca, append([]byte("# mirror CA\n"), certPEM...), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if _, err := Write(out, out, mappings[:1], Options{CABundleFile: ca}); err != nil {
		t.Fatal(err)
	}
	ic := docs[InstallConfigSnippet](t, filepath.Join(out, InstallConfigFile))[0]
	if ic.AdditionalTrustBundle != string(certPEM) || ic.AdditionalTrustBundlePolicy != "Always" {
		t.Errorf("trust bundle = %q (policy %q), want the certificate", ic.AdditionalTrustBundle, ic.AdditionalTrustBundlePolicy)
	}
	raw, _ := os.ReadFile(filepath.Join(out, InstallConfigFile))
	if !strings.Contains(string(raw), "additionalTrustBundle: |") {
		t.Errorf("trust bundle is not a literal block:\n%s", raw)
	}

	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o644)
	if _, err := Write(out, out, mappings, Options{CABundleFile: bad}); err == nil || !strings.Contains(err.Error(), bad+" holds no PEM certificate") {
		t.Errorf("Write with a bad CA bundle = %v", err)
	}
	if _, err := Write(out, out, mappings, Options{CABundleFile: filepath.Join(dir, "missing.pem")}); err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Errorf("Write with a missing CA bundle = %v", err)
	}
}

func selfSigned(t *testing.T) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mirror CA"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestWriteErrors(t *testing.T) {
	for _, tc := range []struct {
		m    Mapping
		want string
	}{
		{Mapping{Source: "quay.io/a/b:1", Destination: "m.lan/a/b:1", Section: "platform"}, `section "platform" is not one of`},
		{Mapping{Source: "quay.io/A/b:1", Destination: "m.lan/a/b:1", Section: SectionAdditional}, `source "quay.io/A/b:1"`},
		{Mapping{Source: "quay.io/a/b:1", Destination: "m.lan/a/b::1", Section: SectionAdditional}, `destination "m.lan/a/b::1"`},
	} {
		if _, err := Write(t.TempDir(), t.TempDir(), []Mapping{tc.m}, Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Write(%+v) = %v, want %q", tc.m, err, tc.want)
		}
	}
}

func TestWriteCatalogSource(t *testing.T) {
	name, err := CatalogName("registry.redhat.io/redhat/redhat-operator-index:v4.16")
	if err != nil || name != "redhat-operator-index-v4-16" {
		t.Fatalf("CatalogName = %q, %v", name, err)
	}
	dir := filepath.Join(t.TempDir(), "cr")
	image := "mirror.lan:8443/ocp/redhat/redhat-operator-index:v4.16"
	paths, err := WriteCatalogSource(dir, name, image, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 2 || filepath.Base(paths[0]) != "cs-"+name+".yaml" || filepath.Base(paths[1]) != "cc-"+name+".yaml" {
		t.Fatalf("paths = %v", paths)
	}
	cs := docs[CatalogSource](t, paths[0])[0]
	if cs.APIVersion != "operators.coreos.com/v1alpha1" || cs.Kind != "CatalogSource" || cs.Metadata.Name != "cs-"+name || cs.Metadata.Namespace != "openshift-marketplace" || cs.Spec.SourceType != "grpc" || cs.Spec.Image != image {
		t.Errorf("CatalogSource = %+v", cs)
	}
	cc := docs[ClusterCatalog](t, paths[1])[0]
	if cc.APIVersion != "olm.operatorframework.io/v1" || cc.Kind != "ClusterCatalog" || cc.Metadata.Name != "cc-"+name || cc.Spec.Source.Type != "Image" || cc.Spec.Source.Image.Ref != image {
		t.Errorf("ClusterCatalog = %+v", cc)
	}
	if _, err := WriteCatalogSource(dir, "Bad_Name", image, nil); err == nil || !strings.Contains(err.Error(), "not valid") {
		t.Errorf("WriteCatalogSource with a bad name = %v", err)
	}
}
