package catalog_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// bundleSpec is one bundle of the synthetic catalog.
type bundleSpec struct {
	pkg, name, version string
}

// channelSpec is one channel: entries as name -> replaces (and skips).
type channelSpec struct {
	pkg, name string
	entries   []entrySpec
}

type entrySpec struct {
	name, replaces string
	skips          []string
}

// The synthetic catalog: two packages, alpha with two channels that share
// a bundle and an upgrade chain with replaces and skips, beta with one.
var (
	bundles = []bundleSpec{
		{"alpha", "alpha.v1.0.0", "1.0.0"},
		{"alpha", "alpha.v1.1.0", "1.1.0"},
		{"alpha", "alpha.v1.2.0", "1.2.0"},
		{"alpha", "alpha.v2.0.0", "2.0.0"},
		{"beta", "beta.v0.1.0", "0.1.0"},
		{"beta", "beta.v0.2.0", "0.2.0"},
	}
	channels = []channelSpec{
		{"alpha", "stable", []entrySpec{{"alpha.v1.0.0", "", nil}, {"alpha.v1.1.0", "alpha.v1.0.0", nil}, {"alpha.v1.2.0", "alpha.v1.1.0", []string{"alpha.v1.0.0"}}}},
		{"alpha", "fast", []entrySpec{{"alpha.v1.2.0", "", nil}, {"alpha.v2.0.0", "alpha.v1.2.0", nil}}},
		{"beta", "stable", []entrySpec{{"beta.v0.1.0", "", nil}, {"beta.v0.2.0", "beta.v0.1.0", nil}}},
	}
)

// upstreamCatalog is what was pushed: each bundle's images by reference.
type upstreamCatalog struct {
	host string
	// images maps a bundle name to its bundle, operator and operand
	// references (host/repo@digest).
	images map[string][]string
	good   map[string][]byte // the good catalog's configs
}

// catalogRef is the good catalog's reference.
func (u *upstreamCatalog) catalogRef() string { return u.host + "/ops/catalog:v1" }

func tarLayer(t *testing.T, files map[string][]byte) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, p := range sortedKeys(files) {
		parts := strings.Split(p, "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/") + "/"
			if !dirs[d] {
				dirs[d] = true
				must(t, tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(0, 0)}))
			}
		}
		must(t, tw.WriteHeader(&tar.Header{Name: p, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[p])), ModTime: time.Unix(0, 0)}))
		_, err := tw.Write(files[p])
		must(t, err)
	}
	must(t, tw.Close())
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	must(t, err)
	return l
}

func sortedKeys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// smallImage is a one-layer image whose content names what it is, so
// every image is distinct.
func smallImage(t *testing.T, what string) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, tarLayer(t, map[string][]byte{"what": []byte(what)}))
	must(t, err)
	cf, err := img.ConfigFile()
	must(t, err)
	cf.OS, cf.Architecture = "linux", "amd64"
	img, err = mutate.ConfigFile(img, cf)
	must(t, err)
	return img
}

// pushByDigest pushes img to host/repo and returns host/repo@digest.
func pushByDigest(t *testing.T, host, repo string, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	must(t, err)
	ref, err := name.NewDigest(host+"/"+repo+"@"+d.String(), name.Insecure)
	must(t, err)
	must(t, remote.Write(ref, img))
	return ref.String()
}

// fbc returns the catalog documents of package pkg as JSON, one per
// line, with the related image refs of missing replaced.
func (u *upstreamCatalog) fbc(t *testing.T, pkg string, missing map[string]string) []byte {
	t.Helper()
	var docs []any
	docs = append(docs, map[string]any{"schema": "olm.package", "name": pkg, "defaultChannel": "stable"})
	for _, c := range channels {
		if c.pkg != pkg {
			continue
		}
		var entries []map[string]any
		for _, e := range c.entries {
			m := map[string]any{"name": e.name}
			if e.replaces != "" {
				m["replaces"] = e.replaces
			}
			if e.skips != nil {
				m["skips"] = e.skips
			}
			entries = append(entries, m)
		}
		docs = append(docs, map[string]any{"schema": "olm.channel", "package": pkg, "name": c.name, "entries": entries})
	}
	for _, b := range bundles {
		if b.pkg != pkg {
			continue
		}
		ims := u.images[b.name]
		operand := ims[2]
		if r, ok := missing[b.name]; ok {
			operand = r
		}
		docs = append(docs, map[string]any{
			"schema": "olm.bundle", "name": b.name, "package": pkg, "image": ims[0],
			"properties": []any{map[string]any{"type": "olm.package", "value": map[string]any{"packageName": pkg, "version": b.version}}},
			"relatedImages": []any{
				map[string]any{"name": "bundle", "image": ims[0]},
				map[string]any{"name": "operator", "image": ims[1]},
				map[string]any{"name": "operand", "image": operand},
			},
		})
	}
	var buf bytes.Buffer
	for _, d := range docs {
		b, err := json.MarshalIndent(d, "", "  ")
		must(t, err)
		buf.Write(b)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// catalogImage builds a catalog image as opm does: a base layer with the
// opm binary, the configs, and a serving cache under /tmp/cache.
func catalogImage(t *testing.T, configs map[string][]byte, label bool) v1.Image {
	t.Helper()
	base := tarLayer(t, map[string][]byte{"bin/opm": []byte("#!/bin/sh\necho opm\n")})
	cfgs := tarLayer(t, configs)
	cache := tarLayer(t, map[string][]byte{"tmp/cache/digest": []byte("stale\n"), "tmp/cache/cache/packages.json": []byte("{}")})
	img, err := mutate.AppendLayers(empty.Image, base, cfgs, cache)
	must(t, err)
	cf, err := img.ConfigFile()
	must(t, err)
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
	cf.Config.Entrypoint = []string{"/bin/opm"}
	cf.Config.Cmd = []string{"serve", "/configs", "--cache-dir=/tmp/cache"}
	if label {
		cf.Config.Labels = map[string]string{"operators.operatorframework.io.index.configs.v1": "/configs"}
	}
	img, err = mutate.ConfigFile(img, cf)
	must(t, err)
	return img
}

func pushTag(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	r, err := name.NewTag(ref, name.Insecure)
	must(t, err)
	must(t, remote.Write(r, img))
}

// pushUpstream pushes every bundle's images and these catalogs:
// ops/catalog:v1 (good; alpha in JSON, beta in YAML-compatible JSON),
// ops/bad:nolabel, ops/bad:invalid (a syntax error on line 3 of
// configs/broken/catalog.json), ops/bad:missing (beta.v0.2.0's operand
// image was never pushed).
func pushUpstream(t *testing.T, host string) *upstreamCatalog {
	t.Helper()
	u := &upstreamCatalog{host: host, images: map[string][]string{}}
	rnd := rand.New(rand.NewSource(1))
	for _, b := range bundles {
		var refs []string
		for _, kind := range []string{"bundle", "operator", "operand"} {
			img := smallImage(t, fmt.Sprintf("%s %s %d", b.name, kind, rnd.Int()))
			refs = append(refs, pushByDigest(t, host, "ops/"+b.pkg+"-"+kind, img))
		}
		u.images[b.name] = refs
	}
	good := map[string][]byte{"configs/alpha/catalog.json": u.fbc(t, "alpha", nil), "configs/beta/catalog.json": u.fbc(t, "beta", nil)}
	pushTag(t, u.catalogRef(), catalogImage(t, good, true))
	pushTag(t, host+"/ops/bad:nolabel", catalogImage(t, good, false))
	invalid := map[string][]byte{"configs/alpha/catalog.json": good["configs/alpha/catalog.json"],
		"configs/broken/catalog.json": []byte("{\"schema\": \"olm.package\",\n  \"name\": \"broken\",\n  \"defaultChannel\" \"stable\"\n}\n")}
	pushTag(t, host+"/ops/bad:invalid", catalogImage(t, invalid, true))
	gone := strings.Split(u.images["beta.v0.2.0"][2], "@")[0] + "@sha256:" + strings.Repeat("ab", 32)
	missing := map[string][]byte{"configs/alpha/catalog.json": good["configs/alpha/catalog.json"],
		"configs/beta/catalog.json": u.fbc(t, "beta", map[string]string{"beta.v0.2.0": gone})}
	pushTag(t, host+"/ops/bad:missing", catalogImage(t, missing, true))
	u.good = good
	return u
}

// multiArch pushes ops/multi:v1, a list of a linux/amd64 and a
// linux/arm64 catalog image with the same configs.
func (u *upstreamCatalog) multiArch(t *testing.T) {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		img := catalogImage(t, u.good, true)
		cf, err := img.ConfigFile()
		must(t, err)
		cf.Architecture = arch
		img, err = mutate.ConfigFile(img, cf)
		must(t, err)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	r, err := name.NewTag(u.host+"/ops/multi:v1", name.Insecure)
	must(t, err)
	must(t, remote.WriteIndex(r, idx))
}

// layoutCatalog writes the good catalog as an OCI image layout folder.
func (u *upstreamCatalog) layoutCatalog(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "my-catalog")
	p, err := layout.Write(dir, empty.Index)
	must(t, err)
	must(t, p.AppendImage(catalogImage(t, u.good, true)))
	return dir
}
