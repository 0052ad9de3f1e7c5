package catalog

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

type tarEntry struct {
	name string
	data string
	dir  bool
}

func tarLayer(t testing.TB, mt types.MediaType, entries ...tarEntry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg}
		if e.dir {
			hdr = &tar.Header{Name: e.name, Mode: 0o755, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(mt))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

const testCmdCache = "--cache-dir=/tmp/cache"

// catalogImage builds a catalog image the way opm-built ones look, with the
// fixture spread over three layers that overwrite and delete each other:
//
//	layer 0: /bin/opm, a stale /tmp/cache, an old alpha, a package "stale",
//	         and junk/bad.json (invalid)
//	layer 1: the real alpha, beta, the .indexignore and README
//	layer 2: deletes "stale" (.wh.stale), hides junk's old content
//	         (opaque whiteout) and adds gamma and the global document there
func catalogImage(t testing.TB, oci bool, label string) v1.Image {
	t.Helper()
	layerType := types.DockerLayer
	var img v1.Image = empty.Image
	if oci {
		layerType = types.OCILayer
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	}
	files := fixtureFiles(t)
	var l1 []tarEntry
	for _, p := range sortedKeys(files) {
		if strings.HasPrefix(p, "gamma/") || p == "global.json" {
			continue
		}
		l1 = append(l1, tarEntry{name: "configs/" + p, data: files[p]})
	}
	layers := []v1.Layer{
		tarLayer(t, layerType,
			tarEntry{name: "bin/", dir: true},
			tarEntry{name: "bin/opm", data: "#!/bin/sh\n"},
			tarEntry{name: "tmp/", dir: true},
			tarEntry{name: "tmp/cache/", dir: true},
			tarEntry{name: "tmp/cache/digest", data: "stale"},
			tarEntry{name: "configs/", dir: true},
			tarEntry{name: "configs/alpha/catalog.json", data: `{"schema":"olm.package","name":"alpha","defaultChannel":"old"}`},
			tarEntry{name: "configs/stale/catalog.json", data: `{"schema":"olm.package","name":"stale","defaultChannel":"x"}`},
			tarEntry{name: "configs/junk/bad.json", data: `{"schema": `},
		),
		tarLayer(t, layerType, l1...),
		tarLayer(t, layerType,
			tarEntry{name: "configs/.wh.stale", data: ""},
			tarEntry{name: "configs/junk/", dir: true},
			tarEntry{name: "configs/junk/.wh..wh..opq", data: ""},
			tarEntry{name: "configs/junk/gamma.yaml", data: files["gamma/catalog.yaml"]},
			tarEntry{name: "./configs/global.json", data: files["global.json"]},
		),
	}
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Config.Labels = map[string]string{"vendor": "ferry-test"}
	if label != "" {
		cf.Config.Labels[ConfigsLabel] = label
	}
	cf.Config.Entrypoint = []string{"/bin/opm"}
	cf.Config.Cmd = []string{"serve", "/configs", testCmdCache}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestReadImageAppliesLayersAndWhiteouts(t *testing.T) {
	for _, oci := range []bool{false, true} {
		img := catalogImage(t, oci, "/configs")
		cat, err := ReadImage(context.Background(), "example.com/catalog:v1", img)
		if err != nil {
			t.Fatal(err)
		}
		var pkgs []string
		for _, p := range cat.Packages {
			pkgs = append(pkgs, p.Name+"/"+p.DefaultChannel)
		}
		sort.Strings(pkgs)
		// alpha from layer 1 (not layer 0's), no "stale", gamma from layer 2.
		if want := []string{"alpha/stable", "beta/release-2", "gamma/stable"}; !slices.Equal(pkgs, want) {
			t.Errorf("packages %v, want %v", pkgs, want)
		}
		if got := len(cat.Bundles); got != len(fixtureBundles) {
			t.Errorf("%d bundles, want %d", got, len(fixtureBundles))
		}
		if len(cat.Others) != 2 {
			t.Errorf("%d documents of other schemas, want 2", len(cat.Others))
		}
	}
}

func TestReadImageEqualsExtractedFolder(t *testing.T) {
	img := catalogImage(t, true, "/configs/")
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "configs")
	if err := ExtractImage(ctx, "catalog", img, dir); err != nil {
		t.Fatal(err)
	}
	var got []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			got = append(got, filepath.ToSlash(rel))
		}
		return nil
	})
	want := []string{".indexignore", "README.md", "alpha/catalog.json", "beta/bundles/new/deep/new.json",
		"beta/bundles/old.yaml", "beta/channels/release.yaml", "beta/deprecations.json", "beta/package.yaml",
		"global.json", "junk/gamma.yaml"}
	if !slices.Equal(got, want) {
		t.Errorf("extracted %v\nwant %v", got, want)
	}
	fromDir, err := LoadFS(ctx, os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	fromImage, err := ReadImage(ctx, "catalog", img)
	if err != nil {
		t.Fatal(err)
	}
	a, b := filesOf(t, fromDir), filesOf(t, fromImage)
	if a != b {
		t.Error("the image and its extracted folder read differently")
	}
}

func filesOf(t testing.TB, c *Catalog) string {
	t.Helper()
	files, err := c.Files()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, f := range files {
		b.WriteString("== " + f.Path + "\n")
		b.Write(f.Data)
	}
	return b.String()
}

func TestReadImageMissingLabel(t *testing.T) {
	img := catalogImage(t, false, "")
	_, err := ReadImage(context.Background(), "quay.example.com/team/catalog:v4.16", img)
	var ml *MissingLabelError
	if !errors.As(err, &ml) {
		t.Fatalf("error %v is not a MissingLabelError", err)
	}
	for _, want := range []string{"quay.example.com/team/catalog:v4.16", ConfigsLabel} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func TestReadImageInvalidFBC(t *testing.T) {
	base := catalogImage(t, false, "/configs")
	bad := tarLayer(t, types.DockerLayer, tarEntry{name: "configs/broken/catalog.json",
		data: "{\"schema\": \"olm.package\", \"name\": \"broken\"}\n\n{\"schema\": \"olm.channel\",\n \"name\": 3}\n"})
	img, err := mutate.AppendLayers(base, bad)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ReadImage(context.Background(), "catalog:bad", img)
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a ParseError", err)
	}
	if pe.File != "configs/broken/catalog.json" || pe.Line != 3 {
		t.Errorf("error at %s:%d, want configs/broken/catalog.json:3 (%v)", pe.File, pe.Line, err)
	}
	if !strings.Contains(err.Error(), "catalog:bad") {
		t.Errorf("error %q does not name the image", err)
	}
}

// flatten lists the merged file system of an image with go-containerregistry's
// own layer flattening, an implementation independent of walkLayers.
func flatten(t testing.TB, img v1.Image) map[string]string {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	out := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		name := strings.TrimPrefix(hdr.Name, "./")
		if hdr.Typeflag == tar.TypeDir {
			name = strings.TrimSuffix(name, "/") + "/"
		}
		out[name] = string(data)
	}
}

func TestRebuild(t *testing.T) {
	ctx := context.Background()
	for _, oci := range []bool{false, true} {
		orig := catalogImage(t, oci, "/configs")
		cat, err := ReadImage(ctx, "catalog", orig)
		if err != nil {
			t.Fatal(err)
		}
		res, err := cat.Filter(Filter{Packages: []PackageFilter{
			{Name: "alpha", Channels: []ChannelFilter{{Name: "stable", MinVersion: "1.1.0", MaxVersion: "1.2.0"}}},
			{Name: "beta", DefaultChannel: "release-1", Channels: []ChannelFilter{{Name: "release-1"}}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		rebuilt, err := Rebuild("catalog", orig, res.Catalog)
		if err != nil {
			t.Fatal(err)
		}

		// Read back through the same reader: exactly the filtered catalog.
		back, err := ReadImage(ctx, "rebuilt", rebuilt)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"alpha.v1.1.0", "alpha.v1.1.1", "alpha.v1.2.0", "beta.v1.0.1"}; !slices.Equal(keptBundles(back), want) {
			t.Errorf("rebuilt catalog has bundles %v, want %v", keptBundles(back), want)
		}
		if filesOf(t, back) != filesOf(t, res.Catalog) {
			t.Error("the rebuilt image does not serve the filtered catalog byte for byte")
		}
		for _, p := range back.Packages {
			if p.Name == "beta" && p.DefaultChannel != "release-1" {
				t.Errorf("beta's default channel is %q in the rebuilt image, want the override release-1", p.DefaultChannel)
			}
		}

		// The merged file system, flattened independently.
		fsys := flatten(t, rebuilt)
		var configs []string
		for p := range fsys {
			if strings.HasPrefix(p, "tmp/cache") {
				t.Errorf("the rebuilt image still has %s", p)
			}
			if strings.HasPrefix(p, "configs/") && !strings.HasSuffix(p, "/") {
				configs = append(configs, p)
			}
		}
		sort.Strings(configs)
		files, _ := res.Catalog.Files()
		var want []string
		for _, f := range files {
			want = append(want, "configs/"+f.Path)
			if fsys["configs/"+f.Path] != string(f.Data) {
				t.Errorf("configs/%s differs from the filtered catalog", f.Path)
			}
		}
		if !slices.Equal(configs, want) {
			t.Errorf("configs folder holds %v, want %v", configs, want)
		}
		if _, ok := fsys["bin/opm"]; !ok {
			t.Error("the original layers' /bin/opm is gone")
		}

		// Config: labels, entrypoint, and a CMD that does not enforce the removed cache.
		cf, err := rebuilt.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Config.Labels[ConfigsLabel] != "/configs" || cf.Config.Labels["vendor"] != "ferry-test" {
			t.Errorf("labels %v", cf.Config.Labels)
		}
		if !slices.Equal(cf.Config.Entrypoint, []string{"/bin/opm"}) || !slices.Equal(cf.Config.Cmd, []string{"serve", "/configs"}) {
			t.Errorf("entrypoint %q cmd %q, want [/bin/opm] [serve /configs]", cf.Config.Entrypoint, cf.Config.Cmd)
		}

		// Media types kept; the original layers are still there, unchanged.
		origMT, _ := orig.MediaType()
		newMT, _ := rebuilt.MediaType()
		if origMT != newMT {
			t.Errorf("manifest media type %s, want %s", newMT, origMT)
		}
		om, _ := orig.Manifest()
		nm, _ := rebuilt.Manifest()
		if len(nm.Layers) != len(om.Layers)+1 {
			t.Fatalf("%d layers, want %d", len(nm.Layers), len(om.Layers)+1)
		}
		for i, l := range om.Layers {
			if nm.Layers[i].Digest != l.Digest {
				t.Errorf("layer %d changed", i)
			}
		}
		if got, want := nm.Layers[len(om.Layers)].MediaType, om.Layers[0].MediaType; got != want {
			t.Errorf("new layer media type %s, want %s", got, want)
		}
		if nm.Config.MediaType != om.Config.MediaType {
			t.Errorf("config media type %s, want %s", nm.Config.MediaType, om.Config.MediaType)
		}

		// Same source and filter: same digest.
		again, err := Rebuild("catalog", orig, res.Catalog)
		if err != nil {
			t.Fatal(err)
		}
		d1, _ := rebuilt.Digest()
		d2, _ := again.Digest()
		if d1 != d2 {
			t.Errorf("two rebuilds gave %s and %s", d1, d2)
		}
		// ... even when the catalog is read and filtered anew.
		cat2, _ := ReadImage(ctx, "catalog", orig)
		res2, _ := cat2.Filter(Filter{Packages: []PackageFilter{
			{Name: "alpha", Channels: []ChannelFilter{{Name: "stable", MinVersion: "1.1.0", MaxVersion: "1.2.0"}}},
			{Name: "beta", DefaultChannel: "release-1", Channels: []ChannelFilter{{Name: "release-1"}}},
		}})
		third, err := Rebuild("catalog", orig, res2.Catalog)
		if err != nil {
			t.Fatal(err)
		}
		if d3, _ := third.Digest(); d3 != d1 {
			t.Errorf("a fresh read and filter rebuilt to %s, want %s", d3, d1)
		}
		// A rebuilt image rebuilds to itself plus nothing stale.
		if _, err := ReadImage(ctx, "rebuilt", rebuilt); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRebuildIndex(t *testing.T) {
	amd := catalogImage(t, true, "/configs")
	arm, err := mutate.ConfigFile(amd, func() *v1.ConfigFile {
		cf, _ := amd.ConfigFile()
		cf = cf.DeepCopy()
		cf.Architecture = "arm64"
		return cf
	}())
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	cat, err := ReadImage(context.Background(), "catalog", amd)
	if err != nil {
		t.Fatal(err)
	}
	res, err := cat.Filter(Filter{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := RebuildIndex("catalog", idx, res.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	im, err := out.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex || len(im.Manifests) != 2 {
		t.Fatalf("index %s with %d manifests", im.MediaType, len(im.Manifests))
	}
	for i, arch := range []string{"amd64", "arm64"} {
		d := im.Manifests[i]
		if d.Platform == nil || d.Platform.Architecture != arch {
			t.Errorf("manifest %d platform %v, want %s", i, d.Platform, arch)
		}
		img, err := out.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ReadImage(context.Background(), "rebuilt", img)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"alpha.v1.3.0", "alpha.v2.0.0", "beta.v1.0.1", "beta.v2.1.0", "gamma.v0.1.0"}; !slices.Equal(keptBundles(back), want) {
			t.Errorf("%s image has bundles %v, want %v", arch, keptBundles(back), want)
		}
	}
}

func TestDropCacheFlags(t *testing.T) {
	tests := []struct{ in, want []string }{
		{nil, nil},
		{[]string{"serve", "/configs"}, []string{"serve", "/configs"}},
		{[]string{"serve", "/configs", "--cache-dir=/tmp/cache"}, []string{"serve", "/configs"}},
		{[]string{"serve", "/configs", "--cache-dir", "/tmp/cache", "--port", "50051"}, []string{"serve", "/configs", "--port", "50051"}},
		{[]string{"serve", "/configs", "--cache-dir=/tmp/cache", "--cache-enforce-integrity=true"}, []string{"serve", "/configs"}},
	}
	for _, tt := range tests {
		if got := dropCacheFlags(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("dropCacheFlags(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestReadImageEmptyConfigs(t *testing.T) {
	img, err := mutate.AppendLayers(empty.Image, tarLayer(t, types.DockerLayer,
		tarEntry{name: "bin/opm", data: "#!/bin/sh\n"},
		tarEntry{name: "configs/", dir: true}))
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.Config.Labels = map[string]string{ConfigsLabel: "/configs"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	_, err = ReadImage(context.Background(), "example.com/empty:v1", img)
	if err == nil || !strings.Contains(err.Error(), "example.com/empty:v1") || !strings.Contains(err.Error(), "no olm.package document under /configs") {
		t.Errorf("error %v should say the image has no packages under /configs", err)
	}
}

// A catalog rebuilt the way oc-mirror does it: one layer deleting the whole
// configs folder, then one holding the new configs.
func TestReadImageWhiteoutOfConfigsFolder(t *testing.T) {
	base := catalogImage(t, false, "/configs")
	img, err := mutate.AppendLayers(base,
		tarLayer(t, types.DockerLayer, tarEntry{name: ".wh.configs"}),
		tarLayer(t, types.DockerLayer,
			tarEntry{name: "configs/", dir: true},
			tarEntry{name: "configs/only/catalog.json", data: `{"schema":"olm.package","name":"only","defaultChannel":"c"}`}),
	)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := ReadImage(context.Background(), "catalog", img)
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Packages) != 1 || cat.Packages[0].Name != "only" || len(cat.Bundles) != 0 {
		t.Errorf("read %d packages (%v) and %d bundles, want only the package of the top layer", len(cat.Packages), cat.Packages, len(cat.Bundles))
	}
}
