package catalog

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// largeCatalog is a catalog image shaped like a production index: pkgs
// packages of 3 channels over perPkg bundles, each bundle carrying a 4 KiB
// olm.bundle.object property as real ones carry their manifests.
func largeCatalog(b *testing.B, pkgs, perPkg int) (v1.Image, int64) {
	b.Helper()
	blob := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("apiVersion: v1\nkind: ConfigMap\n", 100)))
	var entries []tarEntry
	var size int64
	for p := 0; p < pkgs; p++ {
		name := fmt.Sprintf("operator-%03d", p)
		var sb strings.Builder
		fmt.Fprintf(&sb, `{"schema":"olm.package","name":%q,"defaultChannel":"stable"}`+"\n", name)
		for c, ch := range []string{"stable", "fast", "candidate"} {
			fmt.Fprintf(&sb, `{"schema":"olm.channel","package":%q,"name":%q,"entries":[`, name, ch)
			for i := c; i < perPkg; i++ {
				if i > c {
					sb.WriteString(",")
				}
				fmt.Fprintf(&sb, `{"name":"%s.v1.%d.0"`, name, i)
				if i > c {
					fmt.Fprintf(&sb, `,"replaces":"%s.v1.%d.0","skipRange":">=1.0.0 <1.%d.0"`, name, i-1, i)
				}
				sb.WriteString("}")
			}
			sb.WriteString("]}\n")
		}
		for i := 0; i < perPkg; i++ {
			fmt.Fprintf(&sb, `{"schema":"olm.bundle","package":%q,"name":"%s.v1.%d.0","image":"registry.example.com/%s/bundle@%s",`+
				`"properties":[{"type":"olm.package","value":{"packageName":%q,"version":"1.%d.0"}},{"type":"olm.bundle.object","value":{"data":%q}}],`+
				`"relatedImages":[{"name":"operator","image":"registry.example.com/%s/operator@%s"}]}`+"\n",
				name, name, i, name, fakeDigest(name+"b"+fmt.Sprint(i)), name, i, blob, name, fakeDigest(name+"o"+fmt.Sprint(i)))
		}
		entries = append(entries, tarEntry{name: "configs/" + name + "/catalog.json", data: sb.String()})
		size += int64(sb.Len())
	}
	img, err := mutate.AppendLayers(empty.Image, tarLayer(b, types.DockerLayer, entries...))
	if err != nil {
		b.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.Config.Labels = map[string]string{ConfigsLabel: "/configs"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		b.Fatal(err)
	}
	return img, size
}

// BenchmarkReadImage reads and parses a 200-package catalog from its layer.
func BenchmarkReadImage(b *testing.B) {
	img, size := largeCatalog(b, 200, 40)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadImage(context.Background(), "bench", img); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFilterAndRebuild filters that catalog to a version range of
// every package and rebuilds the image.
func BenchmarkFilterAndRebuild(b *testing.B) {
	img, _ := largeCatalog(b, 200, 40)
	cat, err := ReadImage(context.Background(), "bench", img)
	if err != nil {
		b.Fatal(err)
	}
	var f Filter
	for _, p := range cat.Packages {
		f.Packages = append(f.Packages, PackageFilter{Name: p.Name, MinVersion: "1.30.0"})
	}
	b.ReportAllocs()
	for b.Loop() {
		res, err := cat.Filter(f)
		if err != nil {
			b.Fatal(err)
		}
		out, err := Rebuild("bench", img, res.Catalog)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := out.Digest(); err != nil {
			b.Fatal(err)
		}
	}
}
