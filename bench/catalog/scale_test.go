// Package catalog_test is the catalog-at-scale benchmark (issue #17): it
// generates a Red Hat-size file-based catalog (internal/fixtures), then
// filters it as `ferry mirror` does, in a child process whose time and peak
// RSS are measured: the heads of every channel of every package, and ten
// packages. The rebuilt catalog is written out as the mirror writes it.
//
// Run it with bench/catalog.sh (or make bench); sizes from the
// environment, small by default (issue #17's full size: 250 packages,
// 8000 bundles):
//
//	CATALOG_PACKAGES   (25)
//	CATALOG_BUNDLES    (800)
//	CATALOG_OBJECT_KIB (45)  mean decoded size of a bundle's manifests
//	CATALOG_SEED       (1)
//
// CATALOG_DIR reuses a catalog generated before (it is written there when
// the folder is empty). CATALOG_FILTER_PEER names a program run the same
// way for a side-by-side figure, oc-mirror's filter library being the
// peer the issue names:
//
//	$CATALOG_FILTER_PEER <catalog-dir> <full|ten> <out-dir>
//
// It must filter as oc-mirror does (no package: every channel's head;
// "ten": the first ten package names in byte order, each channel's head),
// write the result under out-dir, and print "bundle <package>/<name>" for
// every bundle kept. The benchmark checks both kept the same bundles.
package catalog_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-mirror/ferry/internal/catalog"
	"github.com/ferry-mirror/ferry/internal/fixtures"
	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestFilterChild is the measured child of BenchmarkCatalogFilter, run
// only when it sets CATALOG_CHILD: it reads the catalog, filters it and
// writes the result, then prints the number of bundles kept.
func TestFilterChild(t *testing.T) {
	dir := os.Getenv("CATALOG_CHILD")
	if dir == "" {
		t.Skip("the child of BenchmarkCatalogFilter")
	}
	// As ferry mirror does: a filter naming packages reads only those.
	var f catalog.Filter
	var only []catalog.ReadOption
	if os.Getenv("CATALOG_CASE") == "ten" {
		// Named by the parent, so that finding them is not measured.
		names := strings.Split(os.Getenv("CATALOG_TEN"), ",")
		for _, n := range names {
			f.Packages = append(f.Packages, catalog.PackageFilter{Name: n})
		}
		only = append(only, catalog.OnlyPackages(names...))
	}
	c, err := catalog.LoadFS(context.Background(), os.DirFS(dir), only...)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Filter(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Catalog.WriteDir(os.Getenv("CATALOG_OUT")); err != nil {
		t.Fatal(err)
	}
	for _, b := range res.Catalog.Bundles {
		fmt.Printf("bundle %s/%s\n", b.Package, b.Name)
	}
}

// firstPackages names the first n packages in byte order: the folder
// names of the catalog WriteCatalog lays out, one per package, or, for a
// catalog written as one file (opm render of a whole index), the names of
// its olm.package documents.
func firstPackages(dir string, n int) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		// Keeping no package's documents still keeps every olm.package.
		c, err := catalog.LoadFS(context.Background(), os.DirFS(dir), catalog.OnlyPackages())
		if err != nil {
			return nil, err
		}
		for _, p := range c.Packages {
			names = append(names, p.Name)
		}
	}
	slices.Sort(names)
	return names[:min(n, len(names))], nil
}

type run struct {
	wall    time.Duration
	rss     int64
	bundles []string // package/name, sorted
}

// measure runs cmd, a filter of the catalog, and reads its time, its peak
// RSS and the bundles it says it kept.
func measure(b *testing.B, name string, cmd *exec.Cmd) run {
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	r := run{wall: time.Since(start)}
	if err != nil {
		b.Fatalf("%s: %v\n%s", name, err, stderr.String())
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.rss = ru.Maxrss * 1024
	}
	for _, l := range strings.Split(string(out), "\n") {
		if n, ok := strings.CutPrefix(l, "bundle "); ok {
			r.bundles = append(r.bundles, strings.TrimSpace(n))
		}
	}
	slices.Sort(r.bundles)
	return r
}

func child(b *testing.B, dir, kase string) run {
	cmd := exec.Command(os.Args[0], "-test.run=^TestFilterChild$")
	cmd.Env = append(os.Environ(), "CATALOG_CHILD="+dir, "CATALOG_CASE="+kase, "CATALOG_OUT="+b.TempDir())
	if kase == "ten" {
		names, err := firstPackages(dir, 10)
		if err != nil {
			b.Fatal(err)
		}
		cmd.Env = append(cmd.Env, "CATALOG_TEN="+strings.Join(names, ","))
	}
	return measure(b, "ferry filter ("+kase+")", cmd)
}

func peerChild(b *testing.B, peer, dir, kase string) run {
	return measure(b, "peer filter ("+kase+")", exec.Command(peer, dir, kase, b.TempDir()))
}

// generate writes the catalog into CATALOG_DIR, or a temporary folder;
// a CATALOG_DIR that already holds files is taken as it is.
func generate(b *testing.B, scale fixtures.CatalogScale) (string, fixtures.CatalogStats) {
	dir := os.Getenv("CATALOG_DIR")
	if dir == "" {
		dir = b.TempDir()
	} else if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		var st fixtures.CatalogStats
		data, err := os.ReadFile(statsFile(dir))
		if err == nil {
			err = json.Unmarshal(data, &st)
		}
		if err != nil {
			b.Fatalf("CATALOG_DIR %s holds files but not a catalog this benchmark generated (%v); empty it or name another folder", dir, err)
		}
		fmt.Fprintf(os.Stderr, "reusing the catalog in %s\n", dir)
		return dir, st
	}
	start := time.Now()
	st, err := fixtures.WriteCatalog(dir, scale)
	if err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "generated %d packages, %d bundles, %d channels, %.0f MiB in %s\n",
		scale.Packages, st.Bundles, st.Channels, float64(st.Bytes)/(1<<20), time.Since(start).Round(time.Millisecond))
	if os.Getenv("CATALOG_DIR") != "" {
		data, _ := json.Marshal(st)
		if err := os.WriteFile(statsFile(dir), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir, st
}

// statsFile sits beside the catalog folder: inside, it would be read as
// part of the catalog.
func statsFile(dir string) string { return filepath.Clean(dir) + ".stats.json" }

func BenchmarkCatalogFilter(b *testing.B) {
	scale := fixtures.CatalogScale{
		Packages:  testenv.EnvInt(b, "CATALOG_PACKAGES", 25),
		Bundles:   testenv.EnvInt(b, "CATALOG_BUNDLES", 800),
		ObjectKiB: testenv.EnvInt(b, "CATALOG_OBJECT_KIB", 45),
		Seed:      uint64(testenv.EnvInt(b, "CATALOG_SEED", 1)),
	}
	dir, st := generate(b, scale)
	peer := os.Getenv("CATALOG_FILTER_PEER")
	var full, ten, peerFull, peerTen run
	for range b.N {
		full = child(b, dir, "full")
		ten = child(b, dir, "ten")
		if peer != "" {
			peerFull = peerChild(b, peer, dir, "full")
			peerTen = peerChild(b, peer, dir, "ten")
		}
	}
	if len(full.bundles) != st.Heads {
		b.Fatalf("full filter kept %d bundles, want the %d channel heads", len(full.bundles), st.Heads)
	}
	if peer != "" {
		for _, c := range []struct {
			name       string
			ferry, oth run
		}{{"full filter", full, peerFull}, {"10 packages", ten, peerTen}} {
			if !slices.Equal(c.ferry.bundles, c.oth.bundles) {
				b.Errorf("%s: ferry kept %d bundles, the peer %d; they differ: %s", c.name,
					len(c.ferry.bundles), len(c.oth.bundles), firstDifference(c.ferry.bundles, c.oth.bundles))
			}
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	host, _ := os.Hostname()
	fmt.Printf("\ncatalog filter: %d bundles, %d channels, %.0f MiB of FBC; %s, %d CPUs, load %s, %s\n",
		st.Bundles, st.Channels, float64(st.Bytes)/(1<<20), host, runtime.NumCPU(),
		strings.Join(strings.Fields(string(load))[:3], " "), time.Now().UTC().Format(time.RFC3339))
	row := func(figure, ferry, target, other, ratio string) {
		fmt.Printf("%-36s %12s %12s %14s %14s\n", figure, ferry, target, other, ratio)
	}
	row("figure", "ferry", "target", "catalog-filter", "ratio")
	na := func(s string) string {
		if peer == "" {
			return "n/a"
		}
		return s
	}
	speed := func(f, o run) string { return na(fmt.Sprintf("%.2fx faster", o.wall.Seconds()/f.wall.Seconds())) }
	mem := func(f, o run) string { return na(fmt.Sprintf("%.2f of its RSS", float64(f.rss)/float64(o.rss))) }
	for _, c := range []struct {
		name       string
		ferry, oth run
		rssTarget  string
	}{{"full filter (channel heads)", full, peerFull, "< 512 MiB"}, {"10 packages", ten, peerTen, "< 256 MiB"}} {
		row(c.name+": time", c.ferry.wall.Round(time.Millisecond).String(), "", na(c.oth.wall.Round(time.Millisecond).String()), speed(c.ferry, c.oth))
		row(c.name+": peak RSS", fmt.Sprintf("%d MiB", c.ferry.rss>>20), c.rssTarget, na(fmt.Sprintf("%d MiB", c.oth.rss>>20)), mem(c.ferry, c.oth))
		row(c.name+": bundles kept", strconv.Itoa(len(c.ferry.bundles)), "", na(strconv.Itoa(len(c.oth.bundles))), na(fmt.Sprint("same: ", slices.Equal(c.ferry.bundles, c.oth.bundles))))
	}
	if peer == "" {
		fmt.Println("catalog-filter: set CATALOG_FILTER_PEER to a program that filters with it (see the package comment); the module proxy here does not serve github.com/sherine-k/catalog-filter, so the project cannot depend on it.")
	}
}

// firstDifference names the first bundle one list has and the other lacks.
func firstDifference(a, b []string) string {
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); !ok {
			return x + " kept by ferry only"
		}
	}
	for _, x := range b {
		if _, ok := slices.BinarySearch(a, x); !ok {
			return x + " kept by the peer only"
		}
	}
	return "same sets, different counts"
}
