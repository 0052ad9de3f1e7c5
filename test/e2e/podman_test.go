package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ferry-mirror/ferry/internal/testenv"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// podman runs podman with its own storage (vfs, under a temp dir) and its
// own registries.conf, so tests touch neither the host's images nor its
// registry configuration.
type podman struct {
	t    *testing.T
	home string
	env  []string
}

func newPodman(t *testing.T, registriesConf string) *podman {
	t.Helper()
	testenv.Tool(t, "podman")
	dir := t.TempDir()
	storage := fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "run"))
	// No container is run, so no cgroup or journald is needed.
	containers := "[engine]\nevents_logger = \"file\"\ncgroup_manager = \"cgroupfs\"\n" +
		fmt.Sprintf("events_logfile_path = %q\n", filepath.Join(dir, "events.log"))
	if registriesConf == "" {
		registriesConf = "unqualified-search-registries = []\n"
	}
	files := map[string]string{"storage.conf": storage, "containers.conf": containers, "registries.conf": registriesConf}
	for n, content := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &podman{t: t, home: dir, env: []string{
		"CONTAINERS_STORAGE_CONF=" + filepath.Join(dir, "storage.conf"),
		"CONTAINERS_CONF=" + filepath.Join(dir, "containers.conf"),
		"CONTAINERS_REGISTRIES_CONF=" + filepath.Join(dir, "registries.conf"),
	}}
}

func (p *podman) run(args ...string) string {
	p.t.Helper()
	out, err := runErr(p.t, p.home, p.env, "podman", args...)
	if err != nil {
		p.t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// inspect returns the image ID and the layer diff IDs podman holds for ref.
func (p *podman) inspect(ref string) (id string, layers []string) {
	p.t.Helper()
	out := strings.TrimSpace(p.run("image", "inspect", "--format", "{{.Id}} {{range .RootFS.Layers}}{{.}} {{end}}", ref))
	f := strings.Fields(out)
	if len(f) == 0 {
		p.t.Fatalf("podman image inspect %s: empty output", ref)
	}
	return f[0], f[1:]
}

// diffIDs are the uncompressed layer digests of an image: the content a
// container would see, whatever compression a push chose.
func diffIDs(t *testing.T, img v1.Image) []string {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range cfg.RootFS.DiffIDs {
		out = append(out, d.String())
	}
	return out
}

func remoteImage(t *testing.T, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatalf("get %s: %v", ref, err)
	}
	return img
}

// TestPodmanPullPush pulls an image, pushes it back in OCI and Docker v2s2
// formats, and pulls each push into a fresh store.
func TestPodmanPullPush(t *testing.T) {
	reg := startRegistry(t)
	img := seedImage(t, false, 800, 801, runtime.GOARCH)
	pushImage(t, reg.Host+"/podman/base:1", img)
	cfgDigest, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	want := diffIDs(t, img)

	p := newPodman(t, "")
	p.run("pull", "--tls-verify=false", reg.Host+"/podman/base:1")
	id, layers := p.inspect(reg.Host + "/podman/base:1")
	if "sha256:"+id != cfgDigest.String() {
		t.Errorf("pulled image ID %s, want the config digest %s", id, cfgDigest)
	}
	if strings.Join(layers, " ") != strings.Join(want, " ") {
		t.Errorf("pulled layers %v, want %v", layers, want)
	}
	if d := strings.TrimSpace(p.run("image", "inspect", "--format", "{{.Digest}}", reg.Host+"/podman/base:1")); d != digestOf(t, img) {
		t.Errorf("pulled manifest digest %s, pushed %s", d, digestOf(t, img))
	}

	for _, tc := range []struct{ format, mediaType string }{
		{"oci", "application/vnd.oci.image.manifest.v1+json"},
		{"v2s2", "application/vnd.docker.distribution.manifest.v2+json"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			dst := reg.Host + "/podman/pushed-" + tc.format + ":1"
			p.run("push", "--tls-verify=false", "--format", tc.format, reg.Host+"/podman/base:1", dst)
			if got := mediaType(t, reg, "podman/pushed-"+tc.format, "1"); got != tc.mediaType {
				t.Errorf("podman push --format %s stored a manifest served as %q, want %s", tc.format, got, tc.mediaType)
			}
			verifyImage(t, dst)
			if got := diffIDs(t, remoteImage(t, dst)); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("pushed layers %v, want %v", got, want)
			}
			fresh := newPodman(t, "")
			fresh.run("pull", "--tls-verify=false", dst)
			if _, layers := fresh.inspect(dst); strings.Join(layers, " ") != strings.Join(want, " ") {
				t.Errorf("pulled back layers %v, want %v", layers, want)
			}
		})
	}
}

// TestPodmanPullThroughMirror pulls by the upstream name, as a disconnected
// host does, with registries.conf sending it to the mirror. The upstream
// name does not resolve, so only the mirror can serve it.
func TestPodmanPullThroughMirror(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skipf("seeded images are amd64 and arm64, this host is %s", runtime.GOARCH)
	}
	reg := startRegistry(t)
	idx := seedIndex(t, false, 900)
	pushIndex(t, reg.Host+"/mirror/team/app:1.0", idx)
	imgs, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var hostImage v1.Image
	for _, d := range imgs.Manifests {
		if d.Platform.Architecture == runtime.GOARCH {
			if hostImage, err = idx.Image(d.Digest); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfgDigest, err := hostImage.ConfigName()
	if err != nil {
		t.Fatal(err)
	}

	conf := fmt.Sprintf(`unqualified-search-registries = []

[[registry]]
prefix = "upstream.invalid"
location = "upstream.invalid"

[[registry.mirror]]
location = "%s/mirror"
insecure = true
`, reg.Host)
	for _, ref := range []string{"upstream.invalid/team/app@" + digestOf(t, idx), "upstream.invalid/team/app:1.0"} {
		t.Run(strings.SplitN(ref, "/team/app", 2)[1], func(t *testing.T) {
			p := newPodman(t, conf)
			p.run("pull", ref)
			id, layers := p.inspect(ref)
			if "sha256:"+id != cfgDigest.String() {
				t.Errorf("image ID %s, want the %s config %s", id, runtime.GOARCH, cfgDigest)
			}
			if want := diffIDs(t, hostImage); strings.Join(layers, " ") != strings.Join(want, " ") {
				t.Errorf("layers %v, want %v", layers, want)
			}
		})
	}
}
