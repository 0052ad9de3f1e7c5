package release

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// graphDataFiles is a small graph-data repository as the tarball holds it.
var graphDataFiles = []entry{
	{name: "./", dir: true},
	{name: "./channels/", dir: true},
	{name: "./channels/stable-4.16.yaml", body: "name: stable-4.16\nversions:\n- 4.16.1\n- 4.16.2\n"},
	{name: "./blocked-edges/", dir: true},
	{name: "./blocked-edges/4.16.2-Risk.yaml", body: "to: 4.16.2\nfrom: 4\\.16\\.1\nname: Risk\n"},
	{name: "./raw/metadata.json", body: `{"4.16.1":{}}`},
	{name: "./version", body: "1.0.0\n"},
}

func tarGz(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o664, Size: int64(len(e.body)), Typeflag: tar.TypeReg, Uid: 1000, Gid: 1000,
			ModTime: time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)}
		if e.dir {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o775, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestDownloadGraphData(t *testing.T) {
	data := tarGz(t, graphDataFiles...)
	var hits, fail atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if fail.Add(-1) >= 0 {
			http.Error(w, "busy", http.StatusBadGateway)
			return
		}
		if r.URL.Path == "/html" {
			io.WriteString(w, "<html>login</html>")
			return
		}
		w.Write(data)
	}))
	defer srv.Close()
	ctx := context.Background()
	dir := t.TempDir()

	env := map[string]string{"GRAPH_DATA_URL_OVERRIDE": srv.URL + "/api/upgrades_info/graph-data"}
	opts := GraphDataOptionsFromEnv(func(k string) string { return env[k] })
	opts.Backoff = time.Millisecond
	fail.Store(1)
	dst := filepath.Join(dir, "graph-data.tar.gz")
	if err := DownloadGraphData(ctx, opts, dst); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dst)
	if !bytes.Equal(got, data) || hits.Load() != 2 {
		t.Fatalf("downloaded %d bytes after %d requests; want the tarball after a retry", len(got), hits.Load())
	}

	t.Run("not a tarball", func(t *testing.T) {
		hits.Store(0)
		fail.Store(0)
		dst := filepath.Join(dir, "html.tar.gz")
		err := DownloadGraphData(ctx, GraphDataOptions{URL: srv.URL + "/html", Backoff: time.Millisecond}, dst)
		if err == nil || !strings.Contains(err.Error(), "not a gzip-compressed tar") || hits.Load() != 1 {
			t.Fatalf("err %v after %d requests", err, hits.Load())
		}
		if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a bad download was left at %s", dst)
		}
	})
	t.Run("server down", func(t *testing.T) {
		down := httptest.NewServer(http.NotFoundHandler())
		url := down.URL + "/graph-data"
		down.Close()
		err := DownloadGraphData(ctx, GraphDataOptions{URL: url, Attempts: 2, Backoff: time.Millisecond}, filepath.Join(dir, "x"))
		if err == nil || !strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), "GRAPH_DATA_URL_OVERRIDE") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("not a URL", func(t *testing.T) {
		err := DownloadGraphData(ctx, GraphDataOptions{URL: "api.example/graph-data"}, filepath.Join(dir, "x"))
		if err == nil || !strings.Contains(err.Error(), "is not an http(s) URL") {
			t.Fatalf("err %v", err)
		}
	})
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("left %d files in %s, want only the one download", len(entries), dir)
	}
}

func TestBuildGraphImage(t *testing.T) {
	tarball := filepath.Join(t.TempDir(), "graph-data.tar.gz")
	os.WriteFile(tarball, tarGz(t, graphDataFiles...), 0o644)
	base, err := mutate.AppendLayers(empty.Image, gzipLayer(t, entry{name: "bin/bash", body: "#!"}))
	if err != nil {
		t.Fatal(err)
	}
	base, err = mutate.Config(base, v1.Config{Env: []string{"PATH=/usr/bin"}, Cmd: []string{"/bin/sh"}, Entrypoint: []string{"/init"}})
	if err != nil {
		t.Fatal(err)
	}

	img, err := BuildGraphImage(base, tarball)
	if err != nil {
		t.Fatal(err)
	}
	// Push to and pull from a real registry: the result is a valid image.
	reg := testenv.StartDockerRegistry(t)
	ref, _ := name.ParseReference(reg.Host+"/openshift/graph-image:latest", name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := pulled.Layers()
	if len(layers) != 2 {
		t.Fatalf("%d layers, want the base's one plus the graph data", len(layers))
	}
	type file struct {
		body     string
		uid, gid int
	}
	files := map[string]file{}
	err = eachEntry(layers[1], func(h *tar.Header, r io.Reader) error {
		b, _ := io.ReadAll(r)
		files[h.Name] = file{string(b), h.Uid, h.Gid}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range graphDataFiles {
		p := "var/lib/cincinnati-graph-data/" + cleanPath(e.name)
		if e.dir {
			if e.name != "./" {
				p += "/"
			} else {
				p = "var/lib/cincinnati-graph-data/"
			}
		}
		f, ok := files[p]
		if !ok || f.body != e.body || f.uid != 0 || f.gid != 0 {
			t.Errorf("%s: got %+v (present %v), want %q owned by root", p, f, ok, e.body)
		}
	}
	if len(files) != len(graphDataFiles) {
		names := make([]string, 0, len(files))
		for n := range files {
			names = append(names, n)
		}
		slices.Sort(names)
		t.Errorf("layer holds %v", names)
	}
	cf, err := pulled.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	wantCmd := []string{"/bin/bash", "-c", "exec cp -rp /var/lib/cincinnati-graph-data/* /var/lib/cincinnati/graph-data"}
	if !slices.Equal(cf.Config.Cmd, wantCmd) || cf.Config.Entrypoint != nil || !slices.Equal(cf.Config.Env, []string{"PATH=/usr/bin"}) {
		t.Fatalf("config cmd %q entrypoint %q env %q", cf.Config.Cmd, cf.Config.Entrypoint, cf.Config.Env)
	}

	// The same data gives the same image, so reruns push nothing new.
	again, err := BuildGraphImage(base, tarball)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("two builds differ: %s, %s", d1, d2)
	}
}

func TestBuildGraphImageRefusesUnsafeTarballs(t *testing.T) {
	for name, e := range map[string]entry{
		"parent path":   {name: "../../etc/cron.d/x", body: "x"},
		"absolute path": {name: "/etc/passwd", body: "x"},
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "g.tar.gz")
			os.WriteFile(p, tarGz(t, e), 0o644)
			_, err := BuildGraphImage(empty.Image, p)
			if err == nil || !strings.Contains(err.Error(), "leaves the archive's directory") {
				t.Fatalf("err %v", err)
			}
		})
	}
}

func TestUpdateServiceYAML(t *testing.T) {
	out, err := UpdateServiceYAML("mirror.lan:8443/ocp/openshift/release-images", "mirror.lan:8443/ocp/openshift/graph-image@sha256:"+digestOf("g"))
	if err != nil {
		t.Fatal(err)
	}
	want := `apiVersion: updateservice.operator.openshift.io/v1
kind: UpdateService
metadata:
  name: update-service-oc-mirror
  namespace: openshift-update-service
spec:
  graphDataImage: mirror.lan:8443/ocp/openshift/graph-image@sha256:` + digestOf("g") + `
  releases: mirror.lan:8443/ocp/openshift/release-images
  replicas: 2
`
	if string(out) != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
	if _, err := UpdateServiceYAML("", "x"); err == nil {
		t.Fatal("no error without a release repository")
	}
}
