package mirror_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}

func randomLayer(size int) v1.Layer {
	b := make([]byte, size)
	_, _ = rand.Read(b)
	return static.NewLayer(b, types.DockerLayer)
}

// releaseUpstream pushes a release-shaped image set: a few base layers
// shared by every component, one unique layer each, some components as
// two-platform manifest lists. It returns the skopeo sync source YAML,
// the isc, the number of manifests and the unique blob bytes.
func releaseUpstream(b *testing.B, host string, images, layerKB int) (string, string, int, int64) {
	b.Helper()
	var unique int64
	bases := make([]v1.Layer, 5)
	for i, mb := range []int{20, 12, 8, 6, 4} {
		bases[i] = randomLayer(mb << 20)
		unique += int64(mb << 20)
	}
	var isc, sync strings.Builder
	isc.WriteString("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n  additionalImages:\n")
	fmt.Fprintf(&sync, "%s:\n  tls-verify: false\n  images:\n", host)
	manifests := 0
	image := func(i int) v1.Image {
		l := randomLayer(layerKB << 10)
		unique += int64(layerKB << 10)
		img := must(mutate.AppendLayers(empty.Image, bases[i%2], bases[2+i%3], l))
		cfg, _ := img.RawConfigFile()
		unique += int64(len(cfg))
		manifests++
		return img
	}
	batch := map[name.Reference]remote.Taggable{}
	flush := func() {
		if err := remote.MultiWrite(batch, remote.WithJobs(8)); err != nil {
			b.Fatal(err)
		}
		batch = map[name.Reference]remote.Taggable{}
	}
	for i := range images {
		repo := fmt.Sprintf("ocp/release/component-%03d", i)
		ref := must(name.ParseReference(host+"/"+repo+":4.16.0", name.Insecure))
		if i%12 == 0 { // some components are multi-arch
			idx := mutate.IndexMediaType(empty.Index, types.DockerManifestList)
			for _, a := range []string{"amd64", "arm64"} {
				idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: image(i), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: a}}})
			}
			batch[ref] = idx
		} else {
			batch[ref] = image(i)
		}
		fmt.Fprintf(&isc, "  - name: %s/%s:4.16.0\n", host, repo)
		fmt.Fprintf(&sync, "    %s: [\"4.16.0\"]\n", repo)
		if len(batch) == 20 {
			flush()
		}
	}
	flush()
	return sync.String(), isc.String(), manifests, unique
}

// usage is what one run of a command cost.
type usage struct {
	wall time.Duration
	cpu  time.Duration // user + system, -1 when unknown
	rss  int64         // peak resident bytes, -1 when unknown
}

// timed runs a command and returns its wall time, CPU time and peak RSS.
// CPU and RSS come from GNU time when installed: a child's own rusage on
// Linux also counts the memory of the (large) test process it was forked
// from.
func timed(b *testing.B, name string, args ...string) usage {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	gnuTime, haveTime := "/usr/bin/time", true
	if _, err := os.Stat(gnuTime); err != nil {
		haveTime = false
	}
	cmd := exec.CommandContext(ctx, name, args...)
	if haveTime {
		cmd = exec.CommandContext(ctx, gnuTime, append([]string{"-f", "ferry-bench maxrss-kb=%M user-s=%U sys-s=%S", name}, args...)...)
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	u := usage{wall: time.Since(start), cpu: -1, rss: -1}
	if err != nil {
		b.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	if os.Getenv("FERRY_BENCH_VERBOSE") != "" {
		fmt.Printf("%s\n", out)
	}
	if i := strings.LastIndex(string(out), "ferry-bench "); haveTime && i >= 0 {
		var kb int64
		var user, sys float64
		if _, err := fmt.Sscanf(string(out[i:]), "ferry-bench maxrss-kb=%d user-s=%g sys-s=%g", &kb, &user, &sys); err == nil {
			u.rss = kb << 10
			u.cpu = time.Duration((user + sys) * float64(time.Second))
		}
	}
	return u
}

func dirBytes(b *testing.B, dir string) int64 {
	var n int64
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && !e.IsDir() {
			n += fi.Size()
		}
	}
	return n
}

// BenchmarkMirrorRelease mirrors a release-sized image set m2m with ferry
// and with skopeo sync (the copy library oc-mirror v2 uses) from the same
// upstream into fresh Debian docker-registry instances, then archives it
// with m2d. Run it with bench/mirror.sh.
func BenchmarkMirrorRelease(b *testing.B) {
	skopeo := testenv.Tool(b, "skopeo")
	src := testenv.StartDockerRegistry(b)
	images, layerKB := envInt("FERRY_BENCH_IMAGES", 190), envInt("FERRY_BENCH_LAYER_KB", 2200)
	syncYAML, isc, manifests, unique := releaseUpstream(b, src.Host, images, layerKB)
	dir := b.TempDir()
	iscPath := writeFile(b, filepath.Join(dir, "isc.yaml"), isc)
	syncPath := writeFile(b, filepath.Join(dir, "sync.yaml"), syncYAML)
	bin := testenv.FerryBinary(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Registry CPU is measured too: on a small machine the two
		// registries, not the copying tool, use most of the CPU, so the
		// number of requests a tool makes shows up there.
		d1 := testenv.StartDockerRegistry(b)
		ws := filepath.Join(dir, fmt.Sprint("ws", i))
		srcCPU := src.CPUTime()
		ferry := timed(b, bin, "mirror", "-c", iscPath, "--workspace", "file://"+ws, "docker://"+d1.Host+"/mirror",
			"--dest-tls-verify=false", "--src-tls-verify=false", "--parallel-images=8")
		ferrySrcCPU, ferryDstCPU := src.CPUTime()-srcCPU, d1.CPUTime()
		d2 := testenv.StartDockerRegistry(b)
		srcCPU = src.CPUTime()
		skopeo := timed(b, skopeo, "sync", "--all", "--src", "yaml", "--dest", "docker", "--dest-tls-verify=false", syncPath, d2.Host+"/mirror")
		skopeoSrcCPU, skopeoDstCPU := src.CPUTime()-srcCPU, d2.CPUTime()
		arch := filepath.Join(dir, fmt.Sprint("archive", i))
		m2d := timed(b, bin, "mirror", "-c", iscPath, "file://"+arch, "--src-tls-verify=false", "--parallel-images=8")
		archBytes := dirBytes(b, arch)
		d1.Stop()
		d2.Stop()

		b.ReportMetric(ferry.wall.Seconds(), "ferry-s")
		b.ReportMetric(skopeo.wall.Seconds(), "skopeo-s")
		b.ReportMetric(skopeo.wall.Seconds()/ferry.wall.Seconds(), "speedup")
		b.ReportMetric(float64(max(ferry.rss, m2d.rss))/(1<<20), "peak-rss-MiB")
		b.ReportMetric(float64(archBytes)/float64(unique), "archive/unique")
		fmt.Printf("images %d (manifests %d), unique blobs %.1f MB\n", images, manifests, float64(unique)/1e6)
		fmt.Printf("m2m: ferry %.2fs, skopeo sync %.2fs: ferry %.2fx faster; ferry peak RSS %.1f MiB\n",
			ferry.wall.Seconds(), skopeo.wall.Seconds(), skopeo.wall.Seconds()/ferry.wall.Seconds(), float64(ferry.rss)/(1<<20))
		fmt.Printf("m2m CPU seconds (tool / source registry / destination registry): ferry %.2f / %.2f / %.2f, skopeo %.2f / %.2f / %.2f\n",
			ferry.cpu.Seconds(), ferrySrcCPU.Seconds(), ferryDstCPU.Seconds(), skopeo.cpu.Seconds(), skopeoSrcCPU.Seconds(), skopeoDstCPU.Seconds())
		fmt.Printf("m2d: %.2fs, archive %.1f MB = %.4fx unique blob bytes, peak RSS %.1f MiB\n",
			m2d.wall.Seconds(), float64(archBytes)/1e6, float64(archBytes)/float64(unique), float64(m2d.rss)/(1<<20))
	}
}
