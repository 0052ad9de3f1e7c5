package catalog

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"unsafe"

	"github.com/ferry-mirror/ferry/internal/fixtures"
)

// inMemory reads dir file by file with no spool, as catalogs were read
// before bundles' properties went to the spool.
func inMemory(t *testing.T, dir string) *Catalog {
	t.Helper()
	var paths []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			paths = append(paths, p)
		}
		return err
	})
	sort.Strings(paths)
	out := &Catalog{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		c := &Catalog{}
		if err := c.ParseFile(filepath.ToSlash(rel), data); err != nil {
			t.Fatal(err)
		}
		out.Packages = append(out.Packages, c.Packages...)
		out.Channels = append(out.Channels, c.Channels...)
		out.Bundles = append(out.Bundles, c.Bundles...)
		out.Deprecations = append(out.Deprecations, c.Deprecations...)
		out.Others = append(out.Others, c.Others...)
	}
	return out
}

// TestSpoolKeepsBytes checks that bundles whose properties went to the
// spool filter and write out exactly as bundles kept in memory: the same
// bundles kept, the same files byte for byte, the same properties.
func TestSpoolKeepsBytes(t *testing.T) {
	dir := t.TempDir()
	if _, err := fixtures.WriteCatalog(dir, fixtures.CatalogScale{Packages: 4, Bundles: 60, ObjectKiB: 40, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	spooled, err := LoadFS(context.Background(), os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	spilled := 0
	for _, b := range spooled.Bundles {
		if b.big != nil {
			spilled++
		}
	}
	if spilled != len(spooled.Bundles) {
		t.Fatalf("%d of %d bundles have their properties in the spool; want all (they are over %d bytes)", spilled, len(spooled.Bundles), spillAbove)
	}
	plain := inMemory(t, dir)
	names := []string{}
	for _, p := range plain.Packages {
		names = append(names, p.Name)
	}
	sort.Strings(names)
	for i, f := range []Filter{
		{}, // every channel's head
		{Full: true, Packages: []PackageFilter{{Name: names[0]}, {Name: names[2]}}},
		{Packages: []PackageFilter{{Name: names[1], Channels: []ChannelFilter{{Name: "stable", MinVersion: "1.0.3", MaxVersion: "1.1.2"}}}}},
	} {
		t.Run([]string{"heads", "full packages", "version range"}[i], func(t *testing.T) {
			a, err := spooled.Filter(f)
			if err != nil {
				t.Fatal(err)
			}
			b, err := plain.Filter(f)
			if err != nil {
				t.Fatal(err)
			}
			fa, err := a.Catalog.Files()
			if err != nil {
				t.Fatal(err)
			}
			fb, err := b.Catalog.Files()
			if err != nil {
				t.Fatal(err)
			}
			if len(fa) != len(fb) || len(a.Catalog.Bundles) != len(b.Catalog.Bundles) || len(a.Catalog.Bundles) == 0 {
				t.Fatalf("spooled: %d files, %d bundles; in memory: %d files, %d bundles", len(fa), len(a.Catalog.Bundles), len(fb), len(b.Catalog.Bundles))
			}
			for i := range fa {
				if fa[i].Path != fb[i].Path || !bytes.Equal(fa[i].Data, fb[i].Data) {
					t.Errorf("%s: written differently from a catalog read in memory", fa[i].Path)
				}
			}
			pa, err := a.Catalog.Bundles[0].Properties()
			if err != nil {
				t.Fatal(err)
			}
			pb, _ := b.Catalog.Bundles[0].Properties()
			if len(pa) != len(pb) || !bytes.Equal(pa[len(pa)-1].Value, pb[len(pb)-1].Value) {
				t.Errorf("Properties of %s differ from those read in memory", a.Catalog.Bundles[0].Name)
			}
		})
	}
}

// TestFilterMemory reads and filters a 100 MB catalog (1,600 bundles of
// 45 KiB manifests) in a child process and checks its peak RSS: the heads
// of every channel, and three packages read as ferry mirror reads them
// (OnlyPackages), with the catalog in a file a package and in one file. Held in memory, the bundles alone took twice the
// catalog's size; read for three packages, memory is for those.
func TestFilterMemory(t *testing.T) {
	if dir := os.Getenv("FERRY_CATALOG_MEMORY_CHILD"); dir != "" {
		var f Filter
		var only []ReadOption
		if n := os.Getenv("FERRY_CATALOG_MEMORY_PACKAGES"); n != "" {
			names := strings.Split(n, ",")
			for _, name := range names {
				f.Packages = append(f.Packages, PackageFilter{Name: name})
			}
			only = append(only, OnlyPackages(names...))
		}
		c, err := LoadFS(context.Background(), os.DirFS(dir), only...)
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Filter(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := res.Catalog.WriteDir(t.TempDir()); err != nil {
			t.Fatal(err)
		}
		return
	}
	if testing.Short() {
		t.Skip("writes a 100 MB catalog")
	}
	if raceBuild {
		t.Skip("the race detector multiplies memory use; make test runs this test without it")
	}
	dir := t.TempDir()
	st, err := fixtures.WriteCatalog(dir, fixtures.CatalogScale{Packages: 50, Bundles: 1600, ObjectKiB: 45, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var three []string
	for _, e := range ents[:3] {
		three = append(three, e.Name())
	}
	// The same catalog as one file, as opm render writes a whole index.
	oneFile := t.TempDir()
	all, err := os.Create(filepath.Join(oneFile, "catalog.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		f, err := os.Open(filepath.Join(dir, e.Name(), "catalog.json"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(all, f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := all.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		dir      string
		packages string
		limit    int64
	}{
		{"heads of every channel", dir, "", 128 << 20},
		{"three packages", dir, strings.Join(three, ","), 48 << 20},
		{"one file, heads of every channel", oneFile, "", 128 << 20},
		{"one file, three packages", oneFile, strings.Join(three, ","), 48 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestFilterMemory$")
			cmd.Env = append(os.Environ(), "FERRY_CATALOG_MEMORY_CHILD="+tc.dir, "FERRY_CATALOG_MEMORY_PACKAGES="+tc.packages)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
			t.Logf("catalog of %d MiB, %s: filtered with a peak RSS of %d MiB", st.Bytes>>20, tc.name, rss>>20)
			if rss > tc.limit {
				t.Errorf("filtering a catalog of %d MiB (%s) took %d MiB of RSS, want under %d MiB", st.Bytes>>20, tc.name, rss>>20, tc.limit>>20)
			}
		})
	}
}

// TestChannelsShareTheirEntries: a channel read from a catalog holds its
// entries once. Each entry's bytes are a slice of the document's entries
// field, a bundle name that several channels mention is one string, and a
// filtered channel's few entries are copies that do not keep the whole
// field alive. What is written is what was read.
func TestChannelsShareTheirEntries(t *testing.T) {
	data := `{"schema":"olm.package","name":"p","defaultChannel":"stable"}
{"schema":"olm.channel","package":"p","name":"stable","entries":[
  {"name":"p.v1.0.0"},
  {"name":"p.v1.1.0","replaces":"p.v1.0.0","skips":["p.v0.9.0"],"x-note":"kept as read"}
]}
{"schema":"olm.channel","package":"p","name":"fast","entries":[{"name":"p.v1.1.0","skips":["p.v0.9.0"]}]}
`
	c, err := LoadFS(context.Background(), fstest.MapFS{"p/catalog.json": {Data: []byte(data)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Channels) != 2 {
		t.Fatalf("read %d channels, want 2", len(c.Channels))
	}
	within := func(part, whole []byte) bool {
		if len(part) == 0 || len(whole) == 0 {
			return false
		}
		p, w := uintptr(unsafe.Pointer(unsafe.SliceData(part))), uintptr(unsafe.Pointer(unsafe.SliceData(whole)))
		return p >= w && p+uintptr(len(part)) <= w+uintptr(len(whole))
	}
	for _, ch := range c.Channels {
		for _, e := range ch.Entries {
			if !within(e.raw, ch.fields["entries"]) {
				t.Errorf("channel %s entry %s holds a copy of its bytes, not a slice of the document's entries", ch.Name, e.Name)
			}
		}
	}
	stable, fast := c.Channels[0], c.Channels[1]
	if stable.Name != "stable" {
		stable, fast = fast, stable
	}
	if unsafe.StringData(stable.Entries[1].Name) != unsafe.StringData(fast.Entries[0].Name) ||
		unsafe.StringData(stable.Entries[1].Skips[0]) != unsafe.StringData(fast.Entries[0].Skips[0]) ||
		unsafe.StringData(stable.Entries[1].Replaces) != unsafe.StringData(stable.Entries[0].Name) {
		t.Errorf("a bundle name mentioned by several entries is held more than once")
	}
	if got, want := string(stable.Entries[1].raw), `{"name":"p.v1.1.0","replaces":"p.v1.0.0","skips":["p.v0.9.0"],"x-note":"kept as read"}`; got != want {
		t.Errorf("entry bytes = %s, want them as read: %s", got, want)
	}

	one, err := stable.withEntries(stable.Entries[1:])
	if err != nil {
		t.Fatal(err)
	}
	if within(one.Entries[0].raw, stable.fields["entries"]) {
		t.Errorf("a filtered channel's entry still points into the whole entries field it came from")
	}
	if got := string(one.fields["entries"]); got != `[{"name":"p.v1.1.0","replaces":"p.v1.0.0","skips":["p.v0.9.0"],"x-note":"kept as read"}]` {
		t.Errorf("filtered entries written as %s", got)
	}
}
