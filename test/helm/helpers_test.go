// Package helm_test mirrors the images of Helm charts end to end: the real
// ferry binary, the synthetic upstream (internal/fixtures) pushed into
// Debian's docker-registry with its chart repository served on loopback,
// and Ferry registries as destinations.
package helm_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-mirror/ferry/internal/fixtures"
	"github.com/ferry-mirror/ferry/internal/runreport"
	"github.com/ferry-mirror/ferry/internal/testenv"
)

type upstream struct {
	u   *fixtures.Upstream
	reg *testenv.Server
	srv *fixtures.Servers
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	up := testenv.StartUpstream(t, fixtures.Options{Seed: 11, Size: fixtures.SizeTiny})
	return &upstream{u: up.Upstream, reg: up.Registry, srv: up.Servers}
}

// chart returns the fixture chart name@version.
func (up *upstream) chart(t *testing.T, name, version string) fixtures.Chart {
	t.Helper()
	for _, c := range up.u.Charts {
		if c.Name == name && c.Version == version {
			return c
		}
	}
	t.Fatalf("the fixtures have no chart %s %s", name, version)
	return fixtures.Chart{}
}

// image finds the upstream image a chart references by tag.
func (up *upstream) image(t *testing.T, ref string) fixtures.Image {
	t.Helper()
	for _, im := range up.u.Images() {
		if im.ByTag() == ref {
			return im
		}
	}
	t.Fatalf("%s is not an upstream image", ref)
	return fixtures.Image{}
}

// ferry runs the built binary and returns its combined output and exit code.
func ferry(t *testing.T, args ...string) (string, int) {
	t.Helper()
	return testenv.RunFerry(t, nil, args...)
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	return testenv.WriteImageSetConfig(t, "  helm:\n"+body)
}

// assertExactly checks that the destination holds exactly the given
// upstream images under prefix, each by its upstream digest with every
// blob readable, and no other repository.
func assertExactly(t *testing.T, host, prefix string, up *upstream, refs []string) {
	t.Helper()
	var want []string
	for _, ref := range refs {
		im := up.image(t, ref)
		path := prefix + "/" + strings.TrimPrefix(im.Repository, up.u.Host+"/")
		if !slices.Contains(want, path) {
			want = append(want, path)
		}
		testenv.AssertDigest(t, host, path, im.Tag, im.Digest)
	}
	// A Ferry destination also holds the run's report, in its own
	// reserved repository.
	got := slices.DeleteFunc(testenv.Catalog(t, host), func(r string) bool { return r == runreport.Repo })
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("destination repositories:\n got %q\nwant %q (the charts' images and nothing else)", got, want)
	}
}

// writeChartArchive writes a chart .tgz: files by path inside the chart.
func writeChartArchive(t *testing.T, path, name string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: name + "/" + n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
