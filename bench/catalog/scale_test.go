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
package catalog_test

import (
	"context"
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
)

func envInt(tb testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		tb.Fatalf("%s=%q: want a positive whole number", name, v)
	}
	return n
}

// TestFilterChild is the measured child of BenchmarkCatalogFilter, run
// only when it sets CATALOG_CHILD: it reads the catalog, filters it and
// writes the result, then prints the number of bundles kept.
func TestFilterChild(t *testing.T) {
	dir := os.Getenv("CATALOG_CHILD")
	if dir == "" {
		t.Skip("the child of BenchmarkCatalogFilter")
	}
	ctx := context.Background()
	c, err := catalog.LoadFS(ctx, os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	var f catalog.Filter
	if os.Getenv("CATALOG_CASE") == "ten" {
		names := []string{}
		for _, p := range c.Packages {
			names = append(names, p.Name)
		}
		slices.Sort(names)
		for _, n := range names[:min(10, len(names))] {
			f.Packages = append(f.Packages, catalog.PackageFilter{Name: n})
		}
	}
	res, err := c.Filter(f)
	if err != nil {
		t.Fatal(err)
	}
	files, err := res.Catalog.Files()
	if err != nil {
		t.Fatal(err)
	}
	out := os.Getenv("CATALOG_OUT")
	for _, fl := range files {
		p := filepath.Join(out, filepath.FromSlash(fl.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, fl.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Printf("kept %d bundles\n", len(res.Catalog.Bundles))
}

type run struct {
	wall time.Duration
	rss  int64
	kept int
}

func child(b *testing.B, dir, kase string) run {
	cmd := exec.Command(os.Args[0], "-test.run=^TestFilterChild$", "-test.v")
	cmd.Env = append(os.Environ(), "CATALOG_CHILD="+dir, "CATALOG_CASE="+kase, "CATALOG_OUT="+b.TempDir())
	start := time.Now()
	out, err := cmd.CombinedOutput()
	r := run{wall: time.Since(start)}
	if err != nil {
		b.Fatalf("filter (%s): %v\n%s", kase, err, out)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.rss = ru.Maxrss * 1024
	}
	for _, l := range strings.Split(string(out), "\n") {
		if n, ok := strings.CutPrefix(l, "kept "); ok {
			r.kept, _ = strconv.Atoi(strings.Fields(n)[0])
		}
	}
	return r
}

func BenchmarkCatalogFilter(b *testing.B) {
	scale := fixtures.CatalogScale{
		Packages:  envInt(b, "CATALOG_PACKAGES", 25),
		Bundles:   envInt(b, "CATALOG_BUNDLES", 800),
		ObjectKiB: envInt(b, "CATALOG_OBJECT_KIB", 45),
		Seed:      uint64(envInt(b, "CATALOG_SEED", 1)),
	}
	dir := b.TempDir()
	start := time.Now()
	st, err := fixtures.WriteCatalog(dir, scale)
	if err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "generated %d packages, %d bundles, %d channels, %.0f MiB in %s\n",
		scale.Packages, st.Bundles, st.Channels, float64(st.Bytes)/(1<<20), time.Since(start).Round(time.Millisecond))
	var full, ten run
	for range b.N {
		full = child(b, dir, "full")
		ten = child(b, dir, "ten")
	}
	if full.kept != st.Heads {
		b.Fatalf("full filter kept %d bundles, want the %d channel heads", full.kept, st.Heads)
	}
	load, _ := os.ReadFile("/proc/loadavg")
	host, _ := os.Hostname()
	fmt.Printf("\ncatalog filter: %d packages, %d bundles, %.0f MiB of FBC (seed %d); %s, %d CPUs, load %s, %s\n",
		scale.Packages, st.Bundles, float64(st.Bytes)/(1<<20), scale.Seed, host, runtime.NumCPU(),
		strings.Join(strings.Fields(string(load))[:3], " "), time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("%-36s %12s %12s %14s %12s\n", "figure", "ferry", "target", "catalog-filter", "ratio")
	peer := "n/a"
	fmt.Printf("%-36s %12s %12s %14s %12s\n", "full filter (channel heads): time", full.wall.Round(time.Millisecond), "", peer, peer)
	fmt.Printf("%-36s %12s %12s %14s %12s\n", "full filter: peak RSS", fmt.Sprintf("%d MiB", full.rss>>20), "< 512 MiB", peer,
		fmt.Sprintf("%.2f of target", float64(full.rss)/float64(512<<20)))
	fmt.Printf("%-36s %12d %12s %14s %12s\n", "full filter: bundles kept", full.kept, "", peer, "")
	fmt.Printf("%-36s %12s %12s %14s %12s\n", "10 packages: time", ten.wall.Round(time.Millisecond), "", peer, peer)
	fmt.Printf("%-36s %12s %12s %14s %12s\n", "10 packages: peak RSS", fmt.Sprintf("%d MiB", ten.rss>>20), "< 256 MiB", peer,
		fmt.Sprintf("%.2f of target", float64(ten.rss)/float64(256<<20)))
	fmt.Printf("%-36s %12d\n", "10 packages: bundles kept", ten.kept)
	fmt.Println("catalog-filter: github.com/sherine-k/catalog-filter is not served by the module proxy here (403), so no side-by-side run.")
}
