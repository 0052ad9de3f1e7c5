package release

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

type entry struct {
	name string
	body string
	dir  bool
}

// gzipLayer makes a gzip-compressed layer holding entries.
func gzipLayer(t *testing.T, entries ...entry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		if e.dir {
			h = &tar.Header{Name: e.name, Mode: 0o755, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func digestOf(s string) string {
	return fmt.Sprintf("%x", []byte(strings.Repeat(s, 32)))[:64]
}

// imageReferences renders an ImageStream naming components by digest.
func imageReferences(version string, components ...string) string {
	type tag struct {
		Name string            `json:"name"`
		From map[string]string `json:"from"`
	}
	is := map[string]any{"kind": "ImageStream", "apiVersion": "image.openshift.io/v1",
		"metadata": map[string]string{"name": version}}
	var tags []tag
	for _, c := range components {
		tags = append(tags, tag{Name: c, From: map[string]string{"kind": "DockerImage",
			"name": "quay.example/openshift-release-dev/ocp-v4.0-art-dev@sha256:" + digestOf(c)}})
	}
	is["spec"] = map[string]any{"lookupPolicy": map[string]bool{"local": false}, "tags": tags}
	out, _ := json.MarshalIndent(is, "", "  ")
	return string(out)
}

func releaseMetadata(version string, previous ...string) string {
	out, _ := json.Marshal(map[string]any{"kind": "cincinnati-metadata-v0", "version": version, "previous": previous,
		"metadata": map[string]string{"url": "https://access.redhat.com/errata/RHBA-2024:0001"}})
	return string(out)
}

func bootImages(kubevirt map[string]string) string {
	archs := map[string]any{}
	for arch, ref := range kubevirt {
		archs[arch] = map[string]any{"images": map[string]any{"kubevirt": map[string]string{
			"release": "416.94.202406251923-0", "image": "quay.example/rhcos", "digest-ref": ref}}}
	}
	archs["ppc64le"] = map[string]any{"artifacts": map[string]any{}} // no kubevirt image
	stream, _ := json.Marshal(map[string]any{"stream": "rhcos-4.16", "architectures": archs})
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: coreos-bootimages\n  namespace: openshift-machine-config-operator\ndata:\n  releaseVersion: 0.0.1-snapshot\n  stream: |\n")
	for _, line := range strings.Split(string(stream), "\n") {
		b.WriteString("    " + line + "\n")
	}
	return b.String()
}

func releaseImage(t *testing.T, label string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := cf.Config.DeepCopy()
	if label != "" {
		cfg.Labels = map[string]string{"io.openshift.release": label}
	}
	img, err = mutate.Config(img, *cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func componentNames(c *Contents) []string {
	var out []string
	for _, comp := range c.Components {
		out = append(out, comp.Name)
	}
	return out
}

func TestReadContentsLaterLayersWin(t *testing.T) {
	kv := "quay.example/openshift-release-dev/ocp-v4.0-art-dev@sha256:" + digestOf("kv")
	img := releaseImage(t, "4.16.3",
		gzipLayer(t, entry{name: "usr/", dir: true}, entry{name: "usr/bin/cluster-version-operator", body: "binary"},
			// An older image-references in a lower layer must be replaced.
			entry{name: "release-manifests/image-references", body: imageReferences("4.16.2", "old-component")}),
		gzipLayer(t, entry{name: "./release-manifests/", dir: true},
			entry{name: "./release-manifests/image-references", body: imageReferences("4.16.3", "cluster-version-operator", "etcd", "machine-os-content")},
			entry{name: "./release-manifests/release-metadata", body: releaseMetadata("4.16.3", "4.16.1", "4.16.2")},
			entry{name: "./release-manifests/0000_50_installer_coreos-bootimages.yaml", body: bootImages(map[string]string{"x86_64": kv})}),
	)
	c, err := ReadContents(img, "quay.example/ocp-release:4.16.3-x86_64")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"cluster-version-operator", "etcd", "machine-os-content"}; !slices.Equal(componentNames(c), want) {
		t.Errorf("components %v, want %v", componentNames(c), want)
	}
	if c.Components[1].Image != "quay.example/openshift-release-dev/ocp-v4.0-art-dev@sha256:"+digestOf("etcd") {
		t.Errorf("etcd image %s", c.Components[1].Image)
	}
	if c.Version != "4.16.3" || !slices.Equal(c.Previous, []string{"4.16.1", "4.16.2"}) {
		t.Errorf("version %s previous %v", c.Version, c.Previous)
	}
	if len(c.KubeVirt) != 1 || c.KubeVirt["x86_64"] != kv {
		t.Errorf("kubevirt %v, want x86_64 -> %s", c.KubeVirt, kv)
	}
}

// TestReadContentsChannels: the channels release-metadata names, as the
// release tooling writes them, comma-separated.
func TestReadContentsChannels(t *testing.T) {
	meta, _ := json.Marshal(map[string]any{"kind": "cincinnati-metadata-v0", "version": "4.16.3", "previous": []string{},
		"metadata": map[string]string{"io.openshift.upgrades.graph.release.channels": "candidate-4.16,eus-4.16, fast-4.16,stable-4.16"}})
	img := releaseImage(t, "4.16.3", gzipLayer(t,
		entry{name: "release-manifests/image-references", body: imageReferences("4.16.3", "etcd")},
		entry{name: "release-manifests/release-metadata", body: string(meta)}))
	c, err := ReadContents(img, "quay.example/ocp-release:4.16.3-x86_64")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"candidate-4.16", "eus-4.16", "fast-4.16", "stable-4.16"}; !slices.Equal(c.Channels, want) {
		t.Errorf("channels %v, want %v", c.Channels, want)
	}
	img = releaseImage(t, "4.16.3", gzipLayer(t,
		entry{name: "release-manifests/image-references", body: imageReferences("4.16.3", "etcd")},
		entry{name: "release-manifests/release-metadata", body: releaseMetadata("4.16.3")}))
	if c, err := ReadContents(img, "x"); err != nil || len(c.Channels) != 0 {
		t.Errorf("no channels key: %v, %v", c.Channels, err)
	}
}

func TestReadContentsWhiteouts(t *testing.T) {
	lower := gzipLayer(t,
		entry{name: "release-manifests/image-references", body: imageReferences("4.16.3", "etcd")},
		entry{name: "release-manifests/release-metadata", body: releaseMetadata("4.16.0")},
		entry{name: "release-manifests/0000_50_installer_coreos-bootimages.yaml", body: bootImages(map[string]string{"x86_64": "q.example/kv@sha256:" + digestOf("k")})})

	t.Run("file whiteout", func(t *testing.T) {
		// The stale metadata is deleted; the version comes from the label.
		img := releaseImage(t, "4.16.3", lower, gzipLayer(t, entry{name: "release-manifests/.wh.release-metadata"}))
		c, err := ReadContents(img, "rel")
		if err != nil {
			t.Fatal(err)
		}
		if c.Version != "4.16.3" || c.Previous != nil || len(c.KubeVirt) != 1 {
			t.Fatalf("got version %s previous %v kubevirt %v; want the label version, no metadata, kubevirt kept", c.Version, c.Previous, c.KubeVirt)
		}
	})
	t.Run("opaque directory", func(t *testing.T) {
		img := releaseImage(t, "4.16.3", lower, gzipLayer(t,
			entry{name: "release-manifests/.wh..wh..opq"},
			entry{name: "release-manifests/image-references", body: imageReferences("4.16.3", "etcd", "installer")}))
		c, err := ReadContents(img, "rel")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(componentNames(c), []string{"etcd", "installer"}) || c.Previous != nil || c.KubeVirt != nil {
			t.Fatalf("got %v previous %v kubevirt %v; want only the top layer's files", componentNames(c), c.Previous, c.KubeVirt)
		}
	})
	t.Run("directory whiteout removes image-references", func(t *testing.T) {
		img := releaseImage(t, "4.16.3", lower, gzipLayer(t, entry{name: ".wh.release-manifests"}))
		_, err := ReadContents(img, "quay.example/ocp-release:4.16.3-x86_64")
		if err == nil || !strings.Contains(err.Error(), "quay.example/ocp-release:4.16.3-x86_64 has no /release-manifests/image-references") {
			t.Fatalf("err %v, want one naming the image and the missing file", err)
		}
	})
}

func TestReadContentsErrors(t *testing.T) {
	tests := []struct {
		name  string
		label string
		files []entry
		want  string
	}{
		{"not a release image", "", []entry{{name: "etc/os-release", body: "ID=rhel"}},
			"example.com/app:1 has no /release-manifests/image-references: it is not an OpenShift release image"},
		{"image-references not JSON", "4.16.3", []entry{{name: "release-manifests/image-references", body: "{"}},
			"not an ImageStream JSON document"},
		{"component by tag", "4.16.3", []entry{{name: "release-manifests/image-references",
			body: `{"kind":"ImageStream","spec":{"tags":[{"name":"etcd","from":{"kind":"DockerImage","name":"quay.example/etcd:latest"}}]}}`}},
			`component etcd: image "quay.example/etcd:latest" is not a reference by digest`},
		{"no components", "4.16.3", []entry{{name: "release-manifests/image-references", body: `{"kind":"ImageStream","spec":{"tags":[]}}`}},
			"the release names no components"},
		{"label and metadata disagree", "4.16.3", []entry{
			{name: "release-manifests/image-references", body: imageReferences("4.16.3", "etcd")},
			{name: "release-manifests/release-metadata", body: releaseMetadata("4.16.4")}},
			"label io.openshift.release says 4.16.3 but release-metadata says 4.16.4"},
		{"no version at all", "", []entry{{name: "release-manifests/image-references", body: imageReferences("4.16.3", "etcd")}},
			"neither the io.openshift.release label nor a release-metadata version"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadContents(releaseImage(t, tc.label, gzipLayer(t, tc.files...)), "example.com/app:1")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

// TestReadContentsFromRegistry reads a release image pushed to a real
// registry, layers streamed over HTTP, and maps it for mirroring.
func TestReadContentsFromRegistry(t *testing.T) {
	reg := testenv.StartDockerRegistry(t)
	kv := map[string]string{
		"x86_64": "quay.example/rhcos@sha256:" + digestOf("x"),
		"s390x":  "quay.example/rhcos@sha256:" + digestOf("s"),
	}
	img := releaseImage(t, "4.17.1",
		gzipLayer(t, entry{name: "usr/share/base", body: strings.Repeat("base layer ", 1000)}),
		gzipLayer(t,
			entry{name: "release-manifests/image-references", body: imageReferences("4.17.1", "etcd", "installer")},
			entry{name: "release-manifests/release-metadata", body: releaseMetadata("4.17.1", "4.16.5")},
			entry{name: "release-manifests/0000_50_installer_coreos-bootimages.yaml", body: bootImages(kv)}))
	ref, err := name.ParseReference(reg.Host+"/openshift-release-dev/ocp-release:4.17.1-x86_64", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ReadContents(pulled, ref.String())
	if err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	payload := reg.Host + "/openshift-release-dev/ocp-release@" + d.String()

	got := Mappings("mirror.lan:8443/ocp/", Release{Version: c.Version, Payload: payload, Arch: AMD64}, c, []Arch{AMD64}, nil)
	want := []Mapping{
		{Source: payload, Destination: "mirror.lan:8443/ocp/openshift/release-images:4.17.1-x86_64",
			Repo: "openshift/release-images", Tag: "4.17.1-x86_64"},
		{Source: c.Components[0].Image, Destination: "mirror.lan:8443/ocp/openshift/release:4.17.1-x86_64-etcd",
			Repo: "openshift/release", Tag: "4.17.1-x86_64-etcd", Component: "etcd"},
		{Source: c.Components[1].Image, Destination: "mirror.lan:8443/ocp/openshift/release:4.17.1-x86_64-installer",
			Repo: "openshift/release", Tag: "4.17.1-x86_64-installer", Component: "installer"},
		{Source: kv["x86_64"], Destination: "mirror.lan:8443/ocp/openshift/release:4.17.1-x86_64-kube-virt-container",
			Repo: "openshift/release", Tag: "4.17.1-x86_64-kube-virt-container", Component: "kube-virt-container"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("mappings\n%v\nwant\n%v", got, want)
	}
	if got := Mappings("mirror.lan:8443/ocp/", Release{Version: c.Version, Payload: payload, Arch: AMD64}, c, nil, nil); !slices.Equal(got, want[:3]) {
		t.Fatalf("without kubeVirtContainer: %v, want %v", got, want[:3])
	}

	// A multi release carries a KubeVirt image per architecture.
	got = Mappings("mirror.lan:8443/ocp", Release{Version: c.Version, Payload: payload, Arch: Multi}, c, []Arch{Multi}, nil)
	if want := []string{"mirror.lan:8443/ocp/openshift/release:4.17.1-multi-kube-virt-container-s390x",
		"mirror.lan:8443/ocp/openshift/release:4.17.1-multi-kube-virt-container-x86_64"}; !slices.Equal(destinations(got[3:]), want) {
		t.Fatalf("multi kubevirt destinations %v, want %v", destinations(got[3:]), want)
	}
	// arm64 has no KubeVirt image in this release: skipped with a
	// warning, the release and its components still mapped.
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	got = Mappings("mirror.lan:8443/ocp", Release{Version: c.Version, Payload: payload, Arch: ARM64}, c, []Arch{ARM64}, log)
	if len(got) != 3 || got[0].Source != payload {
		t.Fatalf("arm64 mappings %v, want the release and its two components", destinations(got))
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "no KubeVirt container for aarch64") {
		t.Fatalf("log %q, want a warning that aarch64 has no KubeVirt container", logs.String())
	}
}

func destinations(ms []Mapping) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Destination)
	}
	return out
}

// TestBadBootImagesDoNotFailTheRelease: a placeholder digest for another
// architecture, or a boot-images file that cannot be read at all, leaves
// the release readable; kubeVirtContainer skips what it cannot use.
func TestBadBootImagesDoNotFailTheRelease(t *testing.T) {
	kv := "quay.example/rhcos@sha256:" + digestOf("x")
	refs := entry{name: "release-manifests/image-references", body: imageReferences("4.16.3", "etcd")}
	placeholder := "quay.example/rhcos@sha256:placeholder"
	img := releaseImage(t, "4.16.3", gzipLayer(t, refs, entry{name: "release-manifests/0000_50_installer_coreos-bootimages.yaml",
		body: bootImages(map[string]string{"x86_64": kv, "s390x": placeholder})}))
	c, err := ReadContents(img, "rel")
	if err != nil {
		t.Fatalf("a placeholder s390x entry failed the release: %v", err)
	}
	if len(c.KubeVirt) != 1 || c.KubeVirt["x86_64"] != kv || !strings.Contains(c.KubeVirtInvalid["s390x"], placeholder) {
		t.Fatalf("kubevirt %v invalid %v; want x86_64 usable and s390x reported", c.KubeVirt, c.KubeVirtInvalid)
	}
	r := Release{Version: "4.16.3", Payload: "q.example/r@sha256:" + digestOf("r"), Arch: AMD64}
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	if got := Mappings("m.lan", r, c, []Arch{AMD64}, log); len(got) != 3 || got[2].Source != kv {
		t.Fatalf("amd64 mappings %v, want the release, etcd and the x86_64 KubeVirt image", destinations(got))
	}
	if logs.Len() != 0 {
		t.Errorf("warning about another architecture: %s", logs.String())
	}
	r.Arch = Multi
	got := Mappings("m.lan", r, c, []Arch{Multi}, log)
	if want := []string{"m.lan/openshift/release-images:4.16.3-multi", "m.lan/openshift/release:4.16.3-multi-etcd",
		"m.lan/openshift/release:4.16.3-multi-kube-virt-container-x86_64"}; !slices.Equal(destinations(got), want) {
		t.Fatalf("multi mappings %v, want %v", destinations(got), want)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "arch=s390x") || !strings.Contains(logs.String(), "placeholder") {
		t.Errorf("log %q, want a warning naming the s390x placeholder", logs.String())
	}

	for name, body := range map[string]string{"stream not JSON": "data:\n  stream: '{not json'\n", "not YAML": "data: [\n"} {
		t.Run(name, func(t *testing.T) {
			img := releaseImage(t, "4.16.3", gzipLayer(t, refs, entry{name: "release-manifests/0000_50_installer_coreos-bootimages.yaml", body: body}))
			c, err := ReadContents(img, "rel")
			if err != nil {
				t.Fatalf("a broken boot-images file failed the release: %v", err)
			}
			var logs strings.Builder
			got := Mappings("m.lan", Release{Version: "4.16.3", Payload: r.Payload, Arch: AMD64}, c, []Arch{AMD64}, slog.New(slog.NewTextHandler(&logs, nil)))
			if len(got) != 2 || !strings.Contains(logs.String(), "boot-images file cannot be read") {
				t.Fatalf("mappings %v, log %q; want the release and etcd, and a warning", destinations(got), logs.String())
			}
		})
	}
}

// TestMultiKubeVirtAsksForX86AndS390x: for a multi release oc-mirror asks
// for x86_64 and s390x, so the tag names the architecture even when only
// one of them has an image, and the missing one is reported.
func TestMultiKubeVirtAsksForX86AndS390x(t *testing.T) {
	kv := "quay.example/rhcos@sha256:" + digestOf("x")
	img := releaseImage(t, "4.16.3", gzipLayer(t,
		entry{name: "release-manifests/image-references", body: imageReferences("4.16.3", "etcd")},
		entry{name: "release-manifests/0000_50_installer_coreos-bootimages.yaml", body: bootImages(map[string]string{"x86_64": kv})}))
	c, err := ReadContents(img, "rel")
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	got := Mappings("m.lan", Release{Version: "4.16.3", Payload: "q.example/r@sha256:" + digestOf("r"), Arch: Multi}, c, []Arch{Multi}, slog.New(slog.NewTextHandler(&logs, nil)))
	if want := []string{"m.lan/openshift/release-images:4.16.3-multi", "m.lan/openshift/release:4.16.3-multi-etcd",
		"m.lan/openshift/release:4.16.3-multi-kube-virt-container-x86_64"}; !slices.Equal(destinations(got), want) {
		t.Fatalf("mappings %v, want %v", destinations(got), want)
	}
	if !strings.Contains(logs.String(), "arch=s390x") || strings.Contains(logs.String(), "ppc64le") {
		t.Errorf("log %q, want a warning for s390x only (ppc64le was not asked for)", logs.String())
	}
}
