package imageset

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const full = `apiVersion: mirror.openshift.io/v2alpha1
kind: ImageSetConfiguration
archiveSize: 4
mirror:
  platform:
    graph: true
    kubeVirtContainer: true
    architectures: [amd64, arm64]
    channels:
    - name: stable-4.16
      minVersion: 4.16.1
      maxVersion: 4.16.10
      shortestPath: true
    - name: stable-4.17
      type: okd
      full: true
  operators:
  - catalog: registry.redhat.io/redhat/redhat-operator-index:v4.16
    targetCatalog: my/redhat-catalog
    targetTag: v4.16
    packages:
    - name: aws-load-balancer-operator
      defaultChannel: stable-v1
      channels:
      - name: stable-v1
        minVersion: 1.0.0
        maxVersion: 1.1.0
    - name: node-observability-operator
      minVersion: 0.1.0
    - name: compliance-operator
      bundles:
      - name: compliance-operator.v1.4.0
  - catalog: oci:///home/user/catalogs/redhat
  additionalImages:
  - name: registry.redhat.io/ubi8/ubi:latest
  - name: quay.io/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    targetRepo: apps/app
    targetTag: v1
    platforms:
    - os: linux
      architecture: arm64
      variant: v8
  blockedImages:
  - name: ^registry\.redhat\.io/ubi8/ubi-minimal.*
  helm:
    repositories:
    - name: sbo
      url: https://redhat-developer.github.io/service-binding-operator-helm-chart/
      charts:
      - name: service-binding-operator
        version: 1.0.0
        imagePaths: ["{.spec.template.spec.containers[*].image}"]
        values:
          replicas: 2
    local:
    - name: podinfo
      path: /test/chartsource/podinfo-5.0.0.tgz
`

func TestParseFull(t *testing.T) {
	cfg, err := Parse([]byte(full), "isc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.ArchiveSizeBytes(); got != 4<<30 {
		t.Errorf("ArchiveSizeBytes = %d, want %d", got, int64(4)<<30)
	}
	p := cfg.Mirror.Platform
	if !p.Graph || !p.KubeVirtContainer || len(p.Architectures) != 2 || p.Architectures[1] != "arm64" {
		t.Errorf("platform = %+v", p)
	}
	if len(p.Channels) != 2 || p.Channels[0].Type != "ocp" || p.Channels[1].Type != "okd" || !p.Channels[0].ShortestPath || !p.Channels[1].Full {
		t.Errorf("channels = %+v", p.Channels)
	}
	if p.Channels[0].MinVersion != "4.16.1" || p.Channels[0].MaxVersion != "4.16.10" {
		t.Errorf("channel versions = %+v", p.Channels[0])
	}
	ops := cfg.Mirror.Operators
	if len(ops) != 2 || ops[0].TargetCatalog != "my/redhat-catalog" || ops[0].TargetTag != "v4.16" || ops[1].Catalog != "oci:///home/user/catalogs/redhat" {
		t.Fatalf("operators = %+v", ops)
	}
	pk := ops[0].Packages
	if len(pk) != 3 || pk[0].DefaultChannel != "stable-v1" || pk[0].Channels[0].MaxVersion != "1.1.0" || pk[1].MinVersion != "0.1.0" || pk[2].Bundles[0].Name != "compliance-operator.v1.4.0" {
		t.Errorf("packages = %+v", pk)
	}
	ai := cfg.Mirror.AdditionalImages
	if len(ai) != 2 || ai[1].TargetRepo != "apps/app" || ai[1].TargetTag != "v1" || ai[1].Platforms[0] != (PlatformSpec{OS: "linux", Architecture: "arm64", Variant: "v8"}) {
		t.Errorf("additionalImages = %+v", ai)
	}
	if re := cfg.Mirror.BlockedPatterns(); len(re) != 1 || !re[0].MatchString("registry.redhat.io/ubi8/ubi-minimal:latest") || re[0].MatchString("registry.redhat.io/ubi8/ubi:latest") {
		t.Errorf("blocked patterns = %v", re)
	}
	h := cfg.Mirror.Helm
	if len(h.Repositories) != 1 || h.Repositories[0].Charts[0].Version != "1.0.0" || h.Repositories[0].Charts[0].Values["replicas"] != 2 || h.Local[0].Path == "" {
		t.Errorf("helm = %+v", h)
	}
}

func TestParseDefaults(t *testing.T) {
	cfg, err := Parse([]byte("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n  platform:\n    channels:\n    - name: stable-4.16\n"), "isc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Mirror.Platform.Architectures; len(got) != 1 || got[0] != "amd64" {
		t.Errorf("default architectures = %v, want [amd64]", got)
	}
	if cfg.ArchiveSizeBytes() != 0 {
		t.Errorf("ArchiveSizeBytes with no archiveSize = %d, want 0", cfg.ArchiveSizeBytes())
	}
	// A version written as a YAML number is kept as written, not as 4.2.
	cfg, err = Parse([]byte("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n  platform:\n    channels:\n    - name: stable-4.20\n      minVersion: 4.20\n"), "isc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Mirror.Platform.Channels[0].MinVersion; got != "4.20" {
		t.Errorf("minVersion = %q, want 4.20", got)
	}
}

// TestParseV1Alpha2Layout accepts what oc-mirror v2 accepts: its own
// end-to-end configs say v1alpha2 while using the v2 layout.
func TestParseV1Alpha2Layout(t *testing.T) {
	doc := "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v1alpha2\nmirror:\n  additionalImages:\n  - name: quay.io/a/b:1\n"
	cfg, err := Parse([]byte(doc), "isc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Mirror.AdditionalImages) != 1 || cfg.APIVersion != "mirror.openshift.io/v1alpha2" {
		t.Errorf("config = %+v", cfg)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "isc.yaml")
	if err := os.WriteFile(path, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatal(err)
	}
	_, err := Load(filepath.Join(dir, "missing.yaml"))
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file = %v, want an error naming it", err)
	}
}

const head = "apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\n"

// TestParseErrors covers each rejected input; every message must name the
// file, the field path and the line, and say what is wrong or allowed.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc, field string
		line             int
		want             string
	}{
		{"missing apiVersion", "kind: ImageSetConfiguration\nmirror: {}\n", "apiVersion", 1, "set apiVersion: mirror.openshift.io/v2alpha1"},
		{"wrong apiVersion", "apiVersion: mirror.openshift.io/v9\nkind: ImageSetConfiguration\nmirror: {}\n", "apiVersion", 1, "accepted value is mirror.openshift.io/v2alpha1"},
		{"v1 storageConfig", "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v1alpha2\nstorageConfig:\n  local:\n    path: /tmp\nmirror: {}\n", "storageConfig", 3, "storageConfig is oc-mirror v1's"},
		{"missing kind", "apiVersion: mirror.openshift.io/v2alpha1\nmirror: {}\n", "kind", 1, "set kind: ImageSetConfiguration"},
		{"wrong kind", "apiVersion: mirror.openshift.io/v2alpha1\nkind: Pod\nmirror: {}\n", "kind", 2, "accepted value is ImageSetConfiguration"},
		{"delete kind", "apiVersion: mirror.openshift.io/v2alpha1\nkind: DeleteImageSetConfiguration\ndelete: {}\n", "kind", 2, "ferry delete"},
		{"missing mirror", head, "mirror", 1, "needs a mirror: section"},
		{"unknown top field", head + "mirror: {}\nstorageConfig:\n  local: {path: /tmp}\n", "storageConfig", 4, "unknown field; allowed here: apiVersion, archiveSize, kind, mirror"},
		{"delete in mirror config", head + "mirror: {}\ndelete: {}\n", "delete", 4, "unknown field"},
		{"unknown nested field", head + "mirror:\n  operators:\n  - catalog: quay.io/a/b:1\n    packages:\n    - name: p\n      channels:\n      - name: c\n        minVersoin: 1.0.0\n", "mirror.operators[0].packages[0].channels[0].minVersoin", 10, "allowed here: maxVersion, minVersion, name"},
		{"same field in two cases", head + "mirror:\n  additionalImages:\n  - name: quay.io/a/b:1\n  additionalimages:\n  - name: quay.io/a/c:1\n", "mirror.additionalImages", 6, "given twice (first on line 4)"},
		{"kind in another case", "apiVersion: mirror.openshift.io/v2alpha1\nKind: ImageSetConfiguration\nmirror: {}\n", "kind", 1, "line 2 has Kind: oc-mirror reads kind only in this spelling"},
		{"mirror in another case", head + "Mirror: {}\n", "mirror", 1, "line 3 has Mirror"},
		{"duplicate key", head + "mirror:\n  platform:\n    graph: true\n    graph: false\n", "mirror.platform.graph", 6, "given twice (first on line 5)"},
		{"string for list", head + "mirror:\n  additionalImages: quay.io/a/b:1\n", "mirror.additionalImages", 4, "expected a list"},
		{"list for string", head + "mirror:\n  additionalImages:\n  - name: [a, b]\n", "mirror.additionalImages[0].name", 5, "expected a string, got a list"},
		{"bool for string", head + "mirror:\n  platform:\n    channels:\n    - name: true\n", "mirror.platform.channels[0].name", 6, "expected a string, got boolean true"},
		{"string for bool", head + "mirror:\n  platform:\n    graph: \"yes\"\n", "mirror.platform.graph", 5, "expected true or false"},
		{"string for archiveSize", head + "archiveSize: 4G\nmirror: {}\n", "archiveSize", 3, "expected a whole number"},
		{"negative archiveSize", head + "archiveSize: -1\nmirror: {}\n", "archiveSize", 3, "out of range"},
		{"huge archiveSize", head + "archiveSize: 9223372036854775807\nmirror: {}\n", "archiveSize", 3, "out of range"},
		{"mapping for mirror", head + "mirror: [a]\n", "mirror", 3, "expected a mapping"},
		{"duplicate release channel", head + "mirror:\n  platform:\n    channels:\n    - name: stable-4.16\n    - name: stable-4.16\n", "mirror.platform.channels[1].name", 7, `channel "stable-4.16" is listed twice`},
		{"channel without name", head + "mirror:\n  platform:\n    channels:\n    - minVersion: 4.16.1\n", "mirror.platform.channels[0].name", 6, "missing"},
		{"channel type", head + "mirror:\n  platform:\n    channels:\n    - name: stable-4.16\n      type: rhcos\n", "mirror.platform.channels[0].type", 7, "allowed: ocp (the default), okd"},
		{"release minVersion not semver", head + "mirror:\n  platform:\n    channels:\n    - name: stable-4.16\n      minVersion: four\n", "mirror.platform.channels[0].minVersion", 7, "not a semantic version"},
		{"release min > max", head + "mirror:\n  platform:\n    channels:\n    - name: stable-4.16\n      minVersion: 4.16.9\n      maxVersion: 4.16.2\n", "mirror.platform.channels[0].minVersion", 7, "greater than maxVersion 4.16.2"},
		{"architecture", head + "mirror:\n  platform:\n    architectures: [amd64, x86_64]\n", "mirror.platform.architectures[1]", 5, "allowed: amd64, arm64, ppc64le, s390x, multi"},
		{"duplicate architecture", head + "mirror:\n  platform:\n    architectures:\n    - arm64\n    - arm64\n", "mirror.platform.architectures[1]", 7, "listed twice"},
		{"architectures and platforms", head + "mirror:\n  platform:\n    architectures: [amd64]\n    platforms:\n    - architecture: arm64\n", "mirror.platform.platforms", 6, "not both"},
		{"platform architecture", head + "mirror:\n  additionalImages:\n  - name: quay.io/a/b:1\n    platforms:\n    - os: linux\n      architecture: x64\n", "mirror.additionalImages[0].platforms[0].architecture", 8, "allowed: 386, amd64"},
		{"platform without architecture", head + "mirror:\n  operators:\n  - catalog: quay.io/a/b:1\n    platforms:\n    - os: linux\n", "mirror.operators[0].platforms[0].architecture", 7, "missing"},
		{"release reference", head + "mirror:\n  platform:\n    release: quay.io/Openshift/release:4.16\n", "mirror.platform.release", 5, "not a valid image reference"},
		{"catalog missing", head + "mirror:\n  operators:\n  - targetTag: v1\n", "mirror.operators[0].catalog", 5, "missing"},
		{"catalog reference", head + "mirror:\n  operators:\n  - catalog: quay.io/a/b:bad:tag\n", "mirror.operators[0].catalog", 5, "not a valid image reference"},
		{"empty oci catalog", head + "mirror:\n  operators:\n  - catalog: oci://\n", "mirror.operators[0].catalog", 5, "names no folder"},
		{"duplicate catalog", head + "mirror:\n  operators:\n  - catalog: quay.io/a/b:1\n  - catalog: quay.io/a/c:1\n  - catalog: quay.io/a/b:1\n", "mirror.operators[2].catalog", 7, "listed twice with the same target (first as mirror.operators[0])"},
		{"targetCatalog", head + "mirror:\n  operators:\n  - catalog: quay.io/a/b:1\n    targetCatalog: my/Catalog:v1\n", "mirror.operators[0].targetCatalog", 6, "not a repository path"},
		{"targetTag", head + "mirror:\n  operators:\n  - catalog: quay.io/a/b:1\n    targetTag: -v1\n", "mirror.operators[0].targetTag", 6, "not a valid tag"},
		{"package missing name", head + "mirror:\n  operators:\n  - catalog: quay.io/a/b:1\n    packages:\n    - defaultChannel: stable\n", "mirror.operators[0].packages[0].name", 7, "missing"},
		{"duplicate package", head + "mirror:\n  operators:\n  - catalog: quay.io/a/b:1\n    packages:\n    - name: p\n    - name: q\n    - name: p\n", "mirror.operators[0].packages[2].name", 9, `package "p" is listed twice`},
		{"duplicate channel", head + "mirror:\n  operators:\n  - catalog: quay.io/a/b:1\n    packages:\n    - name: p\n      channels:\n      - name: stable\n      - name: stable\n", "mirror.operators[0].packages[0].channels[1].name", 10, `channel "stable" is listed twice in package p`},
		{"channel minVersion", head + "mirror:\n  operators:\n  - catalog: quay.io/a/b:1\n    packages:\n    - name: p\n      channels:\n      - name: stable\n        minVersion: 1.x\n", "mirror.operators[0].packages[0].channels[0].minVersion", 10, "not a semantic version"},
		{"package maxVersion", head + "mirror:\n  operators:\n  - catalog: quay.io/a/b:1\n    packages:\n    - name: p\n      maxVersion: latest\n", "mirror.operators[0].packages[0].maxVersion", 8, "not a semantic version"},
		{"package min > max", head + "mirror:\n  operators:\n  - catalog: quay.io/a/b:1\n    packages:\n    - name: p\n      minVersion: 2.0.0\n      maxVersion: 1.0.0\n", "mirror.operators[0].packages[0].minVersion", 8, "greater than maxVersion"},
		{"package and channel ranges", head + "mirror:\n  operators:\n  - catalog: quay.io/a/b:1\n    packages:\n    - name: p\n      minVersion: 1.0.0\n      channels:\n      - name: stable\n        maxVersion: 2.0.0\n", "mirror.operators[0].packages[0].channels[0]", 10, "cannot have their own"},
		{"bundle without name", head + "mirror:\n  operators:\n  - catalog: quay.io/a/b:1\n    packages:\n    - name: p\n      bundles:\n      - {}\n", "mirror.operators[0].packages[0].bundles[0].name", 9, "missing"},
		{"additional image missing name", head + "mirror:\n  additionalImages:\n  - targetTag: v1\n", "mirror.additionalImages[0].name", 5, "missing"},
		{"additional image reference", head + "mirror:\n  additionalImages:\n  - name: quay.io/a/b@sha256:abc\n", "mirror.additionalImages[0].name", 5, "not a valid image reference"},
		{"targetRepo", head + "mirror:\n  additionalImages:\n  - name: quay.io/a/b:1\n    targetRepo: quay.io:443/x\n", "mirror.additionalImages[0].targetRepo", 6, "not a repository path"},
		{"additional targetTag", head + "mirror:\n  additionalImages:\n  - name: quay.io/a/b:1\n    targetTag: \"a/b\"\n", "mirror.additionalImages[0].targetTag", 6, "not a valid tag"},
		{"blocked regexp", head + "mirror:\n  blockedImages:\n  - name: quay.io/a/b\n  - name: \"ubi[0-9\"\n", "mirror.blockedImages[1].name", 6, `"ubi[0-9" is not a valid regular expression`},
		{"blocked empty", head + "mirror:\n  blockedImages:\n  - name: \"\"\n", "mirror.blockedImages[0].name", 5, "missing"},
		{"helm url", head + "mirror:\n  helm:\n    repositories:\n    - name: r\n      url: ftp://charts.example.com\n", "mirror.helm.repositories[0].url", 7, "not a chart repository URL"},
		{"helm url missing", head + "mirror:\n  helm:\n    repositories:\n    - name: r\n", "mirror.helm.repositories[0].url", 6, "missing"},
		{"helm duplicate repository", head + "mirror:\n  helm:\n    repositories:\n    - name: r\n      url: https://a.example.com\n    - name: r\n      url: https://b.example.com\n", "mirror.helm.repositories[1].name", 8, "listed twice"},
		{"helm chart name", head + "mirror:\n  helm:\n    repositories:\n    - name: r\n      url: https://a.example.com\n      charts:\n      - version: 1.0.0\n", "mirror.helm.repositories[0].charts[0].name", 9, "missing"},
		{"helm local path", head + "mirror:\n  helm:\n    local:\n    - name: podinfo\n", "mirror.helm.local[0].path", 6, "missing"},
		{"alias keeps lines", head + "mirror:\n  additionalImages:\n  - &img\n    name: quay.io/UPPER/case\n  - *img\n", "mirror.additionalImages[1].name", 7, "not a valid image reference"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), "isc.yaml")
			if err == nil {
				t.Fatal("Parse accepted it")
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %q is not a *FieldError", err)
			}
			msg := err.Error()
			wantLoc := "isc.yaml:" + strconv.Itoa(tc.line) + ": " + tc.field + ": "
			if !strings.Contains(msg, wantLoc) {
				t.Errorf("error %q\ndoes not name the place %q", msg, wantLoc)
			}
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q\ndoes not say %q", msg, tc.want)
			}
		})
	}
}

// TestReadLikeOcMirror: what oc-mirror's decoding accepts is accepted:
// keys in any case (with a warning naming the usual spelling), a trailing
// ---, helm chart platforms. A second configuration after --- is refused
// with its line.
func TestReadLikeOcMirror(t *testing.T) {
	doc := head + `mirror:
  additionalimages:
  - NAME: quay.io/a/b:1
    targetrepo: team/b
  helm:
    repositories:
    - name: r
      url: https://charts.example.com
      charts:
      - name: c
        version: 1.0.0
        platforms:
        - os: linux
          architecture: arm64
---
`
	cfg, err := Parse([]byte(doc), "isc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if im := cfg.Mirror.AdditionalImages; len(im) != 1 || im[0].Name != "quay.io/a/b:1" || im[0].TargetRepo != "team/b" {
		t.Errorf("additionalImages = %+v", im)
	}
	if p := cfg.Mirror.Helm.Repositories[0].Charts[0].Platforms; len(p) != 1 || p[0].Architecture != "arm64" {
		t.Errorf("helm chart platforms = %+v", p)
	}
	var got []string
	for _, w := range cfg.Warnings {
		got = append(got, w.Error())
	}
	want := []string{
		"isc.yaml:4: mirror.additionalImages: written additionalimages; read as additionalImages, its usual spelling",
		"isc.yaml:5: mirror.additionalImages[0].name: written NAME; read as name",
		"isc.yaml:6: mirror.additionalImages[0].targetRepo: written targetrepo; read as targetRepo",
	}
	if len(got) != len(want) {
		t.Fatalf("warnings = %q", got)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("warning %d = %q, want %q...", i, got[i], want[i])
		}
	}
	pre, err := Parse([]byte(head+"mirror:\n  platform:\n    release: docker://quay.io/r/rel:4.16.3-x86_64\n  operators:\n  - catalog: docker://quay.io/r/index:v4.16\n  - catalog: oci:///srv/index\n  additionalImages:\n  - name: docker://quay.io/a/b:1\n"), "isc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if m := pre.Mirror; m.Platform.Release != "quay.io/r/rel:4.16.3-x86_64" || m.Operators[0].Catalog != "quay.io/r/index:v4.16" || m.Operators[1].Catalog != "oci:///srv/index" || m.AdditionalImages[0].Name != "quay.io/a/b:1" {
		t.Errorf("docker:// is not dropped, or oci:// is: %+v", m)
	}
	if _, err := Parse([]byte(head+"mirror: {}\n---\n# nothing\n---\n"), "isc.yaml"); err != nil {
		t.Errorf("empty documents after the configuration: %v", err)
	}
	_, err = Parse([]byte(head+"mirror: {}\n---\n# next\n---\napiVersion: mirror.openshift.io/v2alpha1\n"), "isc.yaml")
	if err == nil || !strings.Contains(err.Error(), "isc.yaml:7: holds more than one YAML document") {
		t.Errorf("a second configuration: %v", err)
	}
	if _, err := ParseDelete([]byte("apiversion: mirror.openshift.io/v2alpha1\nkind: DeleteImageSetConfiguration\ndelete:\n  additionalImages:\n  - name: quay.io/a/b:1\n"), "d.yaml"); err != nil {
		t.Errorf("apiversion in another case: %v", err)
	}
}
