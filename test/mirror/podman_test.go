package mirror_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestPodmanPullsThroughRegistriesConf is what a podman or CRI-O host
// does: pull by the upstream name and digest, with the upstream gone, and
// get the image from the mirror through the generated registries.conf.
func TestPodmanPullsThroughRegistriesConf(t *testing.T) {
	podman := testenv.Tool(t, "podman")
	src := testenv.StartDockerRegistry(t)
	u := buildUpstream(t, src.Host)
	dst := testenv.StartDistributionV3(t)
	dir := t.TempDir()
	isc := writeFile(t, filepath.Join(dir, "isc.yaml"), u.isc(""))
	if _, code := ferry(t, nil, "mirror", "-c", isc, "--workspace", "file://"+dir, "docker://"+dst.Host+"/mirror", "--dest-tls-verify=false"); code != 0 {
		t.Fatalf("mirror exited %d", code)
	}
	src.Stop()

	conf := filepath.Join(dir, "working-dir", "host-config", "registries.conf")
	if _, err := os.Stat(conf); err != nil {
		t.Fatal(err)
	}
	// podman limits the run root path to 50 characters.
	store, err := os.MkdirTemp("/tmp", "fp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// vfs layers are written read-only by podman; make them removable.
		_ = exec.Command("chmod", "-R", "u+w", store).Run()
		_ = os.RemoveAll(store)
	})
	storageConf := writeFile(t, filepath.Join(store, "storage.conf"), "[storage]\ndriver = \"vfs\"\nrunroot = \""+filepath.Join(store, "run")+"\"\ngraphroot = \""+filepath.Join(store, "root")+"\"\n")
	for _, ref := range []string{
		src.Host + "/app/alpha@" + u.Alpha.String(),
		src.Host + "/multi/list@" + u.List.String(),
	} {
		cmd := exec.Command(podman, "--root", filepath.Join(store, "root"), "--runroot", filepath.Join(store, "run"), "--storage-driver", "vfs",
			"--cgroup-manager", "cgroupfs", "--events-backend", "none", "pull", "--quiet", ref)
		cmd.Env = append(os.Environ(), "CONTAINERS_REGISTRIES_CONF="+conf, "CONTAINERS_STORAGE_CONF="+storageConf,
			"XDG_RUNTIME_DIR="+filepath.Join(store, "xdg"), "TMPDIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			data, _ := os.ReadFile(conf)
			t.Fatalf("podman pull %s: %v\n%s\nregistries.conf:\n%s", ref, err, out, data)
		}
		t.Logf("podman pulled %s: %s", ref, strings.TrimSpace(string(out)))
	}
}
