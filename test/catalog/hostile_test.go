package catalog_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// bombLayer writes a gzip tar layer holding a small valid package and a
// catalog file of size bytes that are mostly blanks: it compresses about a
// thousand times, as a hostile catalog layer would. Nothing is held in
// memory while it is written.
func bombLayer(t *testing.T, size int64) v1.Layer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "layer.tar.gz")
	f, err := os.Create(path)
	must(t, err)
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	good := []byte(`{"schema":"olm.package","name":"alpha","defaultChannel":"stable"}` + "\n")
	must(t, tw.WriteHeader(&tar.Header{Name: "configs/alpha/catalog.json", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(good))}))
	_, err = tw.Write(good)
	must(t, err)
	head := []byte(`{"schema":"olm.package","name":"bomb"`)
	must(t, tw.WriteHeader(&tar.Header{Name: "configs/bomb/catalog.json", Typeflag: tar.TypeReg, Mode: 0o644, Size: size}))
	_, err = tw.Write(head)
	must(t, err)
	_, err = io.CopyN(tw, blanks{}, size-int64(len(head))-1)
	must(t, err)
	_, err = tw.Write([]byte("}"))
	must(t, err)
	must(t, tw.Close())
	must(t, zw.Close())
	must(t, f.Close())
	l, err := tarball.LayerFromFile(path)
	must(t, err)
	return l
}

type blanks struct{}

func (blanks) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

// peakRSS runs the ferry binary and returns its output, exit code and
// peak resident set in bytes. GNU time measures it when installed; else
// the process's own rusage, which on Linux is at least the test process's
// size at fork, so the figure can only be too high.
func peakRSS(t *testing.T, args ...string) (string, int, int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := testenv.FerryBinary(t)
	gnuTime := "/usr/bin/time"
	_, err := os.Stat(gnuTime)
	useTime := err == nil
	cmd := exec.CommandContext(ctx, bin, args...)
	if useTime {
		cmd = exec.CommandContext(ctx, gnuTime, append([]string{"-f", "ferry-maxrss-kb=%M", bin}, args...)...)
	}
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	_ = cmd.Run()
	out := buf.String()
	code := cmd.ProcessState.ExitCode()
	var kb int64 = -1
	if i := strings.LastIndex(out, "ferry-maxrss-kb="); useTime && i >= 0 {
		fmt.Sscanf(out[i:], "ferry-maxrss-kb=%d", &kb)
		out = out[:i]
		if strings.Contains(out, "Command exited with non-zero status") {
			out = out[:strings.LastIndex(out, "Command exited with non-zero status")]
		}
	} else if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		kb = ru.Maxrss
	}
	t.Logf("ferry %s (exit %d, peak RSS %d KiB):\n%s", strings.Join(args, " "), code, kb, out)
	return out, code, kb << 10
}

// TestOversizedCatalog lists the operators of a catalog image whose
// configs layer is under a MiB compressed and holds one 768 MiB file, a
// single JSON document: ferry refuses it naming the file and the
// per-document limit, and never holds more than that limit of it.
//
// Not under the race detector, which voids the RSS bounds and makes the
// 768 MiB walk take a minute: make test runs it without.
func TestOversizedCatalog(t *testing.T) {
	if testenv.RaceEnabled {
		t.Skip("peak RSS is no measure under the race detector; make test runs this test without it")
	}
	up := testenv.StartDockerRegistry(t)
	layer := bombLayer(t, 768<<20)
	if n, err := layer.Size(); err != nil || n > 2<<20 {
		t.Fatalf("bomb layer is %d bytes (%v); want it under 2 MiB compressed", n, err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	must(t, err)
	cf, err := img.ConfigFile()
	must(t, err)
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Labels = map[string]string{"operators.operatorframework.io.index.configs.v1": "/configs"}
	img, err = mutate.ConfigFile(img, cf)
	must(t, err)
	ref := up.Host + "/ops/bomb:v1"
	pushTag(t, ref, img)

	out, code, rss := peakRSS(t, "list", "operators", "--catalog", ref, "--src-tls-verify=false")
	if code == 0 {
		t.Errorf("list operators of a 768 MiB catalog file exited 0")
	}
	if strings.Contains(out, "panic") || !strings.Contains(out, "configs/bomb/catalog.json") || !strings.Contains(out, "larger than 32 MiB") {
		t.Errorf("the error does not name the file and the limit:\n%s", out)
	}
	if rss > 200<<20 {
		t.Errorf("ferry peaked at %d MiB resident; a refused catalog file must not be read into memory", rss>>20)
	}

	// The same catalog in a mirror run: that catalog fails, named, and the
	// run ends with an error instead of exhausting memory.
	isc := writeConfig(t, "  - catalog: "+ref+"\n")
	out, code, rss = peakRSS(t, "mirror", "-c", isc, "file://"+filepath.Join(t.TempDir(), "archive"), "--src-tls-verify=false")
	if code == 0 || strings.Contains(out, "panic") || !strings.Contains(out, "configs/bomb/catalog.json") {
		t.Errorf("m2d of the catalog: exit %d; want an error naming configs/bomb/catalog.json", code)
	}
	if rss > 200<<20 {
		t.Errorf("ferry mirror peaked at %d MiB resident", rss>>20)
	}
}
