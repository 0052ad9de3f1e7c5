package deploy

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"debug/elf"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

var madeImage = regexp.MustCompile(`ferry:test@(sha256:[0-9a-f]{64})`)

// makeImage runs `make image` into a new layout and returns its digest.
func makeImage(t *testing.T, vars ...string) (string, v1.Hash) {
	t.Helper()
	// Lower case: podman names an image pulled from a layout by its path.
	tmp, err := os.MkdirTemp("", "ferry-image-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	dir := filepath.Join(tmp, "layout")
	args := append([]string{"-C", testenv.ModuleRoot(t), "image", "IMAGE_LAYOUT=" + dir, "IMAGE_TAG=ferry:test"}, vars...)
	out := run(t, nil, "make", args...)
	m := madeImage.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("make image printed no digest:\n%s", out)
	}
	h, err := v1.NewHash(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return dir, h
}

func treeHash(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h.Write([]byte(rel + "\x00"))
		h.Write(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// The image is built twice by `make image` with the same digest, holds a
// static ferry for a non-root user with the data dir as a volume, runs
// under podman with the quadlet's settings, and takes a push and a pull by
// crane; `make image` also pushes it to a registry.
func TestImage(t *testing.T) {
	testenv.Tool(t, "make")
	dir1, d1 := makeImage(t)
	dir2, d2 := makeImage(t)
	if d1 != d2 || treeHash(t, dir1) != treeHash(t, dir2) {
		t.Fatalf("make image is not reproducible: %s then %s", d1, d2)
	}

	idx, err := layout.ImageIndexFromPath(dir1)
	if err != nil {
		t.Fatalf("make image did not write an OCI layout: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != d1 || im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "ferry:test" {
		t.Fatalf("the layout's index %+v: want the one image ferry:test", im.Manifests)
	}
	img, err := idx.Image(d1)
	if err != nil {
		t.Fatal(err)
	}
	if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %s, want OCI", mt)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	// make image stamps SOURCE_DATE_EPOCH, by default the last commit's time.
	epochText := os.Getenv("SOURCE_DATE_EPOCH")
	if epochText == "" {
		epochText = strings.TrimSpace(run(t, nil, "git", "-C", testenv.ModuleRoot(t), "log", "-1", "--format=%ct"))
	}
	epoch, err := strconv.ParseInt(epochText, 10, 64)
	if err != nil {
		t.Fatalf("SOURCE_DATE_EPOCH %q: %v", epochText, err)
	}
	created := time.Unix(epoch, 0).UTC()
	c := cf.Config
	if c.User != "65532:65532" || !slices.Equal(c.Entrypoint, []string{"/usr/bin/ferry"}) ||
		!slices.Equal(c.Cmd, []string{"serve", "--data-dir", "/var/lib/ferry"}) || cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("image config: user %q, entrypoint %q, cmd %q, platform %s/%s; want 65532:65532 running /usr/bin/ferry serve --data-dir /var/lib/ferry on linux/%s",
			c.User, c.Entrypoint, c.Cmd, cf.OS, cf.Architecture, runtime.GOARCH)
	}
	if _, ok := c.Volumes["/var/lib/ferry"]; !ok {
		t.Errorf("volumes %v: want /var/lib/ferry", c.Volumes)
	}
	if _, ok := c.ExposedPorts["8443/tcp"]; !ok {
		t.Errorf("exposed ports %v: want 8443/tcp", c.ExposedPorts)
	}
	if !cf.Created.Time.Equal(created) {
		t.Errorf("image created %s, want SOURCE_DATE_EPOCH %s (reproducible builds fix every timestamp)", cf.Created.Time, created)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%d layers (%v), want one on an empty base", len(layers), err)
	}
	binPath := checkRootfs(t, layers[0], created)
	f, err := elf.Open(binPath)
	if err != nil {
		t.Fatalf("/usr/bin/ferry is not an ELF executable: %v", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("/usr/bin/ferry is dynamically linked; the empty base has no libc")
		}
	}
	f.Close()
	if out := run(t, nil, binPath, "--version"); !strings.Contains(out, "ferry version") {
		t.Errorf("the image's ferry --version: %q", out)
	}

	t.Run("push", func(t *testing.T) {
		s := testenv.StartFerry(t, testenv.FerryOptions{})
		makeImage(t, "IMAGE_PUSH="+s.Host+"/ferry/ferry:test", "IMAGE_INSECURE=1")
		if got := strings.TrimSpace(run(t, nil, testenv.Tool(t, "crane"), "digest", "--insecure", s.Host+"/ferry/ferry:test")); got != d1.String() {
			t.Errorf("make image IMAGE_PUSH pushed %s, want %s", got, d1)
		}
	})
	t.Run("podman", func(t *testing.T) { runImage(t, dir1) })
}

// checkRootfs checks the layer's files and returns the path of the
// extracted binary.
func checkRootfs(t *testing.T, layer v1.Layer, created time.Time) string {
	t.Helper()
	rc, err := layer.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	type file struct {
		mode     int64
		uid, gid int
		typ      byte
	}
	files := map[string]file{}
	binPath := filepath.Join(t.TempDir(), "ferry")
	var passwd string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(created) {
			t.Errorf("%s has time %s, want %s", h.Name, h.ModTime, created)
		}
		files[h.Name] = file{h.Mode, h.Uid, h.Gid, h.Typeflag}
		switch h.Name {
		case "usr/bin/ferry":
			out, err := os.OpenFile(binPath, os.O_CREATE|os.O_WRONLY, 0o755)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(out, tr); err != nil {
				t.Fatal(err)
			}
			out.Close()
		case "etc/passwd":
			b, _ := io.ReadAll(tr)
			passwd = string(b)
		}
	}
	if f := files["usr/bin/ferry"]; f.typ != tar.TypeReg || f.mode != 0o755 || f.uid != 0 {
		t.Errorf("usr/bin/ferry: %+v, want a root-owned 0755 file", f)
	}
	if f := files["var/lib/ferry/"]; f.typ != tar.TypeDir || f.mode != 0o700 || f.uid != 65532 || f.gid != 65532 {
		t.Errorf("var/lib/ferry: %+v, want a 0700 directory of 65532:65532", f)
	}
	if !strings.Contains(passwd, "ferry:x:65532:65532:") {
		t.Errorf("etc/passwd has no ferry user 65532:\n%s", passwd)
	}
	return binPath
}

// runImage runs the image with the settings of deploy/podman/ferry.container
// and pushes and pulls through it with crane.
func runImage(t *testing.T, layoutDir string) {
	crane := testenv.Tool(t, "crane")
	home, env := newPodman(t)
	podman := testenv.Tool(t, "podman")
	pm := func(args ...string) string { return strings.TrimSpace(run(t, env, podman, args...)) }
	id := pm("pull", "-q", "oci:"+layoutDir)

	port := strconv.Itoa(testenv.FreePort(t))
	suffix := strconv.Itoa(os.Getpid())
	volume := "ferry-data-" + suffix
	args, image := quadletArgs(t, filepath.Join(testenv.ModuleRoot(t), "deploy/podman/ferry.container"), map[string]string{
		"ferry-data":           volume,
		"8443:8443":            "127.0.0.1:" + port + ":8443",
		"registry.example.com": "localhost",
		"/etc/ferry/ferry.env": filepath.Join(home, "ferry.env"),
		"ferry":                "ferry-" + suffix,
	})
	write(t, filepath.Join(home, "ferry.env"), "")
	pm("tag", id, image)
	// --ulimit host: the limits podman itself has, which this sandbox allows.
	runArgs := append([]string{"run", "-d", "--ulimit", "host"}, args...)
	runArgs = append(runArgs, image)
	container := pm(runArgs...)
	t.Cleanup(func() {
		runErr(env, podman, "rm", "-f", "-t", "5", container)
		runErr(env, podman, "volume", "rm", "-f", volume)
	})
	mount := pm("volume", "inspect", "--format", "{{.Mountpoint}}", volume)
	caFile := filepath.Join(mount, "tls/ca.crt")
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(caFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			logs, _ := runErr(env, podman, "logs", container)
			t.Fatalf("the container made no CA in its volume within a minute:\n%s", logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	host := "127.0.0.1:" + port
	if code := waitStatus(t, caTransport(t, caFile), "https://"+host+"/v2/", nil); code != 401 {
		t.Fatalf("the container answers /v2/ without credentials with %d, want 401", code)
	}
	pwFile := filepath.Join(mount, "initial-admin-password")
	if _, err := os.Stat(pwFile); err != nil {
		t.Fatalf("no initial admin password in the volume: %v", err)
	}
	if uid := fileUID(t, pwFile); uid != 65532 {
		t.Errorf("the container wrote its data as uid %d, want the image's non-root 65532", uid)
	}
	pw := strings.TrimSpace(readFile(t, pwFile))

	// crane, as a user would: logged in, trusting the CA.
	cfgDir := t.TempDir()
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte("admin:" + pw))}}})
	write(t, filepath.Join(cfgDir, "config.json"), string(cfg))
	craneEnv := []string{"DOCKER_CONFIG=" + cfgDir, "SSL_CERT_FILE=" + caFile}
	src, err := random.Image(1<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := src.Digest()
	tarPath := filepath.Join(t.TempDir(), "img.tar")
	if err := tarball.WriteToFile(tarPath, nil, src); err != nil {
		t.Fatal(err)
	}
	ref := host + "/ocp/release:4.16"
	run(t, craneEnv, crane, "push", tarPath, ref)
	if got := strings.TrimSpace(run(t, craneEnv, crane, "digest", ref)); got != want.String() {
		t.Fatalf("crane digest %s after the push: %s, want %s", ref, got, want)
	}
	run(t, craneEnv, crane, "pull", ref, filepath.Join(t.TempDir(), "pulled.tar"))
	run(t, craneEnv, crane, "validate", "--remote", ref)

	// The volume keeps the registry across a new container.
	pm("rm", "-f", "-t", "10", container)
	container = pm(runArgs...)
	if code := waitStatus(t, caTransport(t, caFile), "https://"+host+"/v2/", nil); code != 401 {
		t.Fatalf("the new container answers /v2/ with %d", code)
	}
	verifyImages(t, registry{host: host, tr: caTransport(t, caFile), auth: &authn.Basic{Username: "admin", Password: pw}},
		map[string]v1.Hash{"ocp/release:4.16": want})
}

// quadletArgs turns the [Container] section of a quadlet file into podman
// run flags, with values replaced as the test needs (names, host ports);
// it returns the flags and the image. A key it does not know fails the
// test, so the quadlet and this translation stay in step.
func quadletArgs(t *testing.T, path string, replace map[string]string) ([]string, string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sub := func(v string) string {
		for from, to := range replace {
			if v == from {
				return to
			}
			if strings.HasPrefix(v, from+":") {
				return to + v[len(from):]
			}
			if k, val, ok := strings.Cut(v, "="); ok && val == from {
				return k + "=" + to
			}
		}
		return v
	}
	var args []string
	image := ""
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		if section != "[Container]" {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "Image":
			image = v
		case "ContainerName":
			args = append(args, "--name", sub(v))
		case "Volume":
			args = append(args, "-v", sub(v))
		case "PublishPort":
			args = append(args, "-p", sub(v))
		case "Environment":
			args = append(args, "-e", sub(v))
		case "EnvironmentFile":
			args = append(args, "--env-file", sub(v))
		case "ReadOnly":
			args = append(args, "--read-only="+v)
		case "DropCapability":
			args = append(args, "--cap-drop", v)
		case "NoNewPrivileges":
			if v == "true" {
				args = append(args, "--security-opt", "no-new-privileges")
			}
		default:
			t.Fatalf("%s: [Container] key %s is not known to this test; add its podman flag", path, k)
		}
	}
	if image == "" {
		t.Fatalf("%s names no Image", path)
	}
	return args, image
}

// newPodman gives podman its own storage and configuration under a
// temporary home, so the host's images stay untouched; it returns the
// home and the environment that points podman at it.
func newPodman(t *testing.T) (string, []string) {
	t.Helper()
	testenv.Tool(t, "podman")
	testenv.Tool(t, "runc")
	home := t.TempDir()
	// Own storage and configuration: the host's images stay untouched.
	// crun refuses hybrid cgroup hosts such as this one; runc runs there.
	write(t, filepath.Join(home, "storage.conf"), "[storage]\ndriver = \"vfs\"\ngraphroot = \""+filepath.Join(home, "root")+"\"\nrunroot = \""+filepath.Join(home, "run")+"\"\n")
	write(t, filepath.Join(home, "containers.conf"), "[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nevents_logfile_path = \""+filepath.Join(home, "events.log")+"\"\n"+
		// This sandbox may not raise RLIMIT_NOFILE, which podman does by default.
		"[containers]\ndefault_ulimits = []\n")
	write(t, filepath.Join(home, "registries.conf"), "unqualified-search-registries = []\n")
	env := []string{
		"CONTAINERS_STORAGE_CONF=" + filepath.Join(home, "storage.conf"),
		"CONTAINERS_CONF=" + filepath.Join(home, "containers.conf"),
		"CONTAINERS_REGISTRIES_CONF=" + filepath.Join(home, "registries.conf"),
	}
	return home, env
}
