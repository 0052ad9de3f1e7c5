package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The test catalog: three packages written the ways real catalogs are.
//
//	alpha (default stable), one JSON stream file:
//	  stable: 1.0.0 <- 1.1.0 <- 1.2.0 (skips 1.1.1) <- 1.3.0 (skipRange >=1.0.0 <1.3.0); 1.1.1 replaces 1.1.0
//	  fast:   1.2.0 (replaces 1.1.0, not in fast) <- 1.3.0 <- 2.0.0
//	beta (default release-2), YAML and JSON files at several depths:
//	  release-1: 1.0.0 <- 1.0.1
//	  release-2: 2.0.0 (replaces 1.0.1, not in release-2) <- 2.1.0
//	  deprecations: channel release-1, bundles beta.v1.0.0 and beta.v2.0.0
//	gamma (default stable), YAML: stable: 0.1.0; plus a custom schema document
//
// plus a document of no package, a README excluded by .indexignore.
type fixtureBundle struct {
	pkg, version string
	// operand is a related image of its own; every bundle also uses the
	// shared proxy image, and lists its own bundle image in relatedImages.
	operand string
}

var fixtureBundles = []fixtureBundle{
	{"alpha", "1.0.0", "alpha-operator"},
	{"alpha", "1.1.0", "alpha-operator"},
	{"alpha", "1.1.1", "alpha-operator"},
	{"alpha", "1.2.0", "alpha-operator"},
	{"alpha", "1.3.0", "alpha-operator"},
	{"alpha", "2.0.0", "alpha-operator"},
	{"beta", "1.0.0", "beta-operator"},
	{"beta", "1.0.1", "beta-operator"},
	{"beta", "2.0.0", "beta-operator"},
	{"beta", "2.1.0", "beta-operator"},
	{"gamma", "0.1.0", "gamma-operator"},
}

const sharedImage = "registry.example.com/shared/kube-rbac-proxy@sha256:" +
	"1111111111111111111111111111111111111111111111111111111111111111"

func bundleName(pkg, version string) string { return pkg + ".v" + version }

func fakeDigest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func bundleImage(name string) string {
	return "registry.example.com/bundles/" + strings.Split(name, ".")[0] + "-bundle@" + fakeDigest("bundle "+name)
}

func operandImage(b fixtureBundle) string {
	return "registry.example.com/operators/" + b.operand + "@" + fakeDigest("operand "+bundleName(b.pkg, b.version))
}

func fixtureBundleByName(name string) fixtureBundle {
	for _, b := range fixtureBundles {
		if bundleName(b.pkg, b.version) == name {
			return b
		}
	}
	panic("no fixture bundle " + name)
}

// expectedImages is what mirroring the named bundles takes, from the
// fixture's own naming, with the bundles that need each image.
func expectedImages(bundles []string) map[string][]string {
	out := map[string][]string{}
	for _, name := range bundles {
		b := fixtureBundleByName(name)
		for _, ref := range []string{bundleImage(name), operandImage(b), sharedImage} {
			out[ref] = append(out[ref], name)
		}
	}
	for _, users := range out {
		sort.Strings(users)
	}
	return out
}

func bundleDoc(b fixtureBundle) map[string]any {
	name := bundleName(b.pkg, b.version)
	return map[string]any{
		"schema":  "olm.bundle",
		"name":    name,
		"package": b.pkg,
		"image":   bundleImage(name),
		"properties": []any{
			map[string]any{"type": "olm.package", "value": map[string]any{"packageName": b.pkg, "version": b.version}},
			map[string]any{"type": "olm.gvk", "value": map[string]any{"group": b.pkg + ".example.com", "kind": "Thing", "version": "v1"}},
		},
		"relatedImages": []any{
			map[string]any{"name": "", "image": bundleImage(name)},
			map[string]any{"name": "operator", "image": operandImage(b)},
			map[string]any{"name": "kube-rbac-proxy", "image": sharedImage},
		},
	}
}

func entry(name, replaces string, skips []string, skipRange string) map[string]any {
	e := map[string]any{"name": name}
	if replaces != "" {
		e["replaces"] = replaces
	}
	if len(skips) > 0 {
		e["skips"] = skips
	}
	if skipRange != "" {
		e["skipRange"] = skipRange
	}
	return e
}

func fixtureBundlesOf(pkg string) []map[string]any {
	var out []map[string]any
	for _, b := range fixtureBundles {
		if b.pkg == pkg {
			out = append(out, bundleDoc(b))
		}
	}
	return out
}

func alphaDocs() []map[string]any {
	docs := []map[string]any{
		{"schema": "olm.package", "name": "alpha", "defaultChannel": "stable", "description": "Alpha operator",
			"icon": map[string]any{"base64data": "PHN2Zy8+", "mediatype": "image/svg+xml"}},
		{"schema": "olm.channel", "package": "alpha", "name": "stable", "entries": []any{
			entry("alpha.v1.0.0", "", nil, ""),
			entry("alpha.v1.1.0", "alpha.v1.0.0", nil, ""),
			entry("alpha.v1.1.1", "alpha.v1.1.0", nil, ""),
			entry("alpha.v1.2.0", "alpha.v1.1.0", []string{"alpha.v1.1.1"}, ""),
			entry("alpha.v1.3.0", "alpha.v1.2.0", nil, ">=1.0.0 <1.3.0"),
		}},
		{"schema": "olm.channel", "package": "alpha", "name": "fast", "entries": []any{
			entry("alpha.v1.2.0", "alpha.v1.1.0", nil, ""),
			entry("alpha.v1.3.0", "alpha.v1.2.0", nil, ""),
			entry("alpha.v2.0.0", "alpha.v1.3.0", nil, ">=1.0.0 <2.0.0"),
		}},
	}
	// An unknown field on an entry must survive filtering.
	docs[1]["entries"].([]any)[4].(map[string]any)["x-ferry-test"] = "kept"
	return append(docs, fixtureBundlesOf("alpha")...)
}

func toJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fixtureFiles is the catalog as files, relative to the configs folder.
func fixtureFiles(t testing.TB) map[string]string {
	t.Helper()
	var alpha strings.Builder
	for _, d := range alphaDocs() {
		alpha.WriteString(toJSON(t, d) + "\n")
	}
	betaBundles := fixtureBundlesOf("beta")
	var betaYAML strings.Builder
	for i, b := range betaBundles[:2] {
		if i > 0 {
			betaYAML.WriteString("---\n")
		}
		// JSON is YAML; written as block YAML to exercise the YAML path.
		betaYAML.WriteString(yamlOf(t, b))
	}
	return map[string]string{
		"alpha/catalog.json": alpha.String(),
		"beta/package.yaml": `# the beta operator
schema: olm.package
name: beta
defaultChannel: release-2
`,
		"beta/channels/release.yaml": `---
schema: olm.channel
package: beta
name: release-1
entries:
  - name: beta.v1.0.0
  - name: beta.v1.0.1
    replaces: beta.v1.0.0
---
schema: olm.channel
package: beta
name: release-2
entries:
  - name: beta.v2.0.0
    replaces: beta.v1.0.1
  - name: beta.v2.1.0
    replaces: beta.v2.0.0
    skipRange: '>=1.0.0 <2.1.0'
`,
		"beta/bundles/old.yaml":          betaYAML.String(),
		"beta/bundles/new/deep/new.json": toJSON(t, betaBundles[2]) + toJSON(t, betaBundles[3]),
		"beta/deprecations.json": toJSON(t, map[string]any{
			"schema": "olm.deprecations", "package": "beta",
			"entries": []any{
				map[string]any{"reference": map[string]any{"schema": "olm.package"}, "message": "beta is winding down"},
				map[string]any{"reference": map[string]any{"schema": "olm.channel", "name": "release-1"}, "message": "use release-2"},
				map[string]any{"reference": map[string]any{"schema": "olm.bundle", "name": "beta.v1.0.0"}, "message": "has a CVE"},
				map[string]any{"reference": map[string]any{"schema": "olm.bundle", "name": "beta.v2.0.0"}, "message": "has a bug"},
			},
		}),
		"gamma/catalog.yaml": "schema: olm.package\nname: gamma\ndefaultChannel: stable\n---\n" +
			"schema: olm.channel\npackage: gamma\nname: stable\nentries:\n  - name: gamma.v0.1.0\n---\n" +
			yamlOf(t, fixtureBundlesOf("gamma")[0]) +
			"---\nschema: example.com.custom\npackage: gamma\nname: extra\nsettings:\n  when: 2024-05-01\n  count: 3\n",
		"global.json":  `{"schema": "example.com.global", "name": "everyone", "value": [1, 2, 3]}`,
		"README.md":    "# not a catalog file: excluded by .indexignore\n",
		".indexignore": "# docs are not catalog content\n*.md\n",
	}
}

// yamlOf writes a document as block YAML (keys sorted), by way of JSON.
func yamlOf(t testing.TB, v any) string {
	t.Helper()
	var b strings.Builder
	writeYAML(&b, v, 0, false)
	return b.String()
}

func writeYAML(b *strings.Builder, v any, indent int, inList bool) {
	pad := strings.Repeat("  ", indent)
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			p := pad
			if inList && i == 0 {
				p = ""
			}
			switch c := t[k].(type) {
			case map[string]any, []any:
				fmt.Fprintf(b, "%s%s:\n", p, k)
				writeYAML(b, c, indent+1, false)
			default:
				fmt.Fprintf(b, "%s%s: %s\n", p, k, scalarYAML(c))
			}
		}
	case []any:
		for _, e := range t {
			fmt.Fprintf(b, "%s- ", pad)
			switch c := e.(type) {
			case map[string]any:
				writeYAML(b, c, indent+1, true)
			default:
				fmt.Fprintf(b, "%s\n", scalarYAML(c))
			}
		}
	}
}

func scalarYAML(v any) string {
	j, _ := json.Marshal(v) // a JSON string is a valid YAML scalar
	return string(j)
}

// writeFixture writes the files under dir.
func writeFixture(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for p, data := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
