// Package metadata_test is the metadata-at-scale benchmark (issue #17): it
// fills a metadata store, SQLite and PostgreSQL, with many manifests,
// repositories and one repository of many tags, straight through the store
// API, then measures what a registry asks of it (manifest GET, tag lists,
// _catalog pages) and runs `ferry gc` over it.
//
// Run it with bench/metadata.sh (or make bench); sizes come from the
// environment, small by default:
//
//	SCALE_MANIFESTS (20000)  manifests in all
//	SCALE_REPOS     (2000)   repositories
//	SCALE_TAGS      (5000)   tags of the one big repository (part of the manifests)
//	SCALE_BLOBS     (20000)  blob files written for gc to walk (at most one per blob)
//	SCALE_SAMPLES   (5000)   timed lookups of each kind
//	SCALE_ENGINES   (sqlite,postgres)
package metadata_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/store"
	"github.com/ferry-mirror/ferry/internal/store/fs"
	"github.com/ferry-mirror/ferry/internal/store/sqlstore"
	"github.com/ferry-mirror/ferry/internal/testenv"
)

type sizes struct {
	manifests, repos, tags, blobFiles, samples int
}

// layout says where each manifest lives: the big repository (index 0) holds
// tags manifests, the others share the rest evenly.
type layout struct{ sizes }

func (l layout) repoName(r int) string {
	if r == 0 {
		return "openshift/release-big"
	}
	// Namespaces of a few hundred repositories, as a mirror of many
	// operators looks.
	return fmt.Sprintf("ns%04d/operator-%06d", r/300, r)
}

// count is the number of manifests of repository r.
func (l layout) count(r int) int {
	if r == 0 {
		return l.tags
	}
	rest, others := l.manifests-l.tags, l.repos-1
	n := rest / others
	if r <= rest%others {
		n++
	}
	return n
}

func (l layout) tagName(r, i int) string {
	if r == 0 {
		return fmt.Sprintf("4.%d.%d-x86_64", 10+i/1000, i%1000)
	}
	return fmt.Sprintf("v1.%d.%d", i/10, i%10)
}

// sharedLayers are the base layers every image of the mirror shares.
var sharedLayers = func() []digest.Digest {
	var ds []digest.Digest
	for i := range 16 {
		ds = append(ds, digest.FromString(fmt.Sprint("base layer ", i)))
	}
	return ds
}()

// image returns manifest i of repository r: a unique config, one of the
// shared base layers and the repository's own layer.
func (l layout) image(r, i int) (*store.Manifest, []digest.Digest) {
	config := digest.FromString(fmt.Sprint("config ", r, " ", i))
	repoLayer := digest.FromString(fmt.Sprint("layer of ", r))
	base := sharedLayers[r%len(sharedLayers)]
	content := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":1469},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":31457280},`+
		`{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}],`+
		`"annotations":{"org.opencontainers.image.created":"2026-11-%02dT00:00:00Z","io.openshift.build.name":"%s-%d"}}`,
		config, base, repoLayer, 1000+i, 1+i%28, l.repoName(r), i)
	m := &store.Manifest{
		Digest:    digest.FromBytes(content),
		MediaType: "application/vnd.oci.image.manifest.v1+json",
		Content:   content,
		Blobs:     []digest.Digest{config, base, repoLayer},
	}
	return m, m.Blobs
}

// fill puts every manifest in s with workers goroutines, one repository
// at a time each.
func fill(b *testing.B, s store.MetadataStore, l layout, workers int) {
	ctx := context.Background()
	next := make(chan int)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
		errs []error
	)
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range next {
				if err := fillRepo(ctx, s, l, r); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					continue
				}
				mu.Lock()
				done += l.count(r)
				if step := max(l.manifests/10, 1); (done-l.count(r))/step != done/step {
					fmt.Fprintf(os.Stderr, "  filled %d/%d manifests (%s)\n", done, l.manifests, time.Since(start).Round(time.Second))
				}
				mu.Unlock()
			}
		}()
	}
	for r := range l.repos {
		next <- r
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		b.Fatalf("fill: %v (and %d more errors)", errs[0], len(errs)-1)
	}
}

func fillRepo(ctx context.Context, s store.MetadataStore, l layout, r int) error {
	repo := l.repoName(r)
	linked := map[digest.Digest]bool{}
	for i := range l.count(r) {
		m, blobs := l.image(r, i)
		for _, d := range blobs {
			if linked[d] {
				continue
			}
			if err := s.LinkBlob(ctx, repo, d, 1000); err != nil {
				return err
			}
			linked[d] = true
		}
		if err := s.PutManifest(ctx, repo, m, l.tagName(r, i)); err != nil {
			return err
		}
	}
	return nil
}

// writeBlobs writes up to n blob files of the images into dir's blob
// store, for gc to walk. They are written straight into the fs store's
// layout, without the fsync of a real upload, to fill quickly; their bytes
// do not hash to their names, which gc never reads.
func writeBlobs(b *testing.B, dir string, l layout, n int) {
	if _, err := fs.New(dir); err != nil { // creates the layout
		b.Fatal(err)
	}
	seen := map[digest.Digest]bool{}
	put := func(d digest.Digest) {
		if seen[d] || len(seen) >= n {
			return
		}
		seen[d] = true
		sub := filepath.Join(dir, "blobs", string(d.Algorithm()), d.Encoded()[:2])
		if err := os.MkdirAll(sub, 0o700); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, d.Encoded()), []byte("x"), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	for _, d := range sharedLayers {
		put(d)
	}
	for r := 0; r < l.repos && len(seen) < n; r++ {
		for i := 0; i < l.count(r) && len(seen) < n; i++ {
			_, blobs := l.image(r, i)
			for _, d := range blobs {
				put(d)
			}
		}
	}
}

// latencies times f samples times and returns p50 and p99.
func latencies(b *testing.B, samples int, f func(i int) error) (p50, p99 time.Duration) {
	ts := make([]time.Duration, samples)
	for i := range ts {
		start := time.Now()
		if err := f(i); err != nil {
			b.Fatal(err)
		}
		ts[i] = time.Since(start)
	}
	slices.Sort(ts)
	return ts[len(ts)/2], ts[len(ts)*99/100]
}

// result is what one engine measured.
type result struct {
	fill                       time.Duration
	getP50, getP99             time.Duration
	tagGetP50, tagGetP99       time.Duration
	tagsP50, tagsP99           time.Duration // one page of 100 tags of the big repository
	tagsAll                    time.Duration // every tag of the big repository, 1000 a page
	catalogP50, catalogP99     time.Duration // one _catalog page of 1000
	catalogAll                 time.Duration // every repository, 1000 a page
	gcTime                     time.Duration
	gcRSS                      int64 // bytes
	gcOut                      string
	dbBytes                    int64
	manifestsSeen, reposListed int
}

func measure(b *testing.B, s store.MetadataStore, l layout) result {
	ctx := context.Background()
	var res result
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func() (int, int) {
		for {
			r := rng.IntN(l.repos)
			if n := l.count(r); n > 0 {
				return r, rng.IntN(n)
			}
		}
	}
	res.getP50, res.getP99 = latencies(b, l.samples, func(int) error {
		r, i := pick()
		m, _ := l.image(r, i)
		got, err := s.Manifest(ctx, l.repoName(r), m.Digest)
		if err == nil && len(got.Content) != len(m.Content) {
			err = fmt.Errorf("manifest %s: %d bytes, want %d", m.Digest, len(got.Content), len(m.Content))
		}
		return err
	})
	res.tagGetP50, res.tagGetP99 = latencies(b, l.samples, func(int) error {
		r, i := pick()
		_, err := s.TaggedManifest(ctx, l.repoName(r), l.tagName(r, i))
		return err
	})
	big := l.repoName(0)
	res.tagsP50, res.tagsP99 = latencies(b, l.samples, func(int) error {
		last := l.tagName(0, rng.IntN(l.tags))
		_, err := s.Tags(ctx, big, last, 100)
		return err
	})
	start := time.Now()
	for last := ""; ; {
		page, err := s.Tags(ctx, big, last, 1000)
		if err != nil {
			b.Fatal(err)
		}
		res.manifestsSeen += len(page)
		if len(page) < 1000 {
			break
		}
		last = page[len(page)-1]
	}
	res.tagsAll = time.Since(start)
	if res.manifestsSeen != l.tags {
		b.Fatalf("tag list of %s: %d tags, want %d", big, res.manifestsSeen, l.tags)
	}
	var pages []time.Duration
	start = time.Now()
	for last := ""; ; {
		t0 := time.Now()
		page, err := s.Repositories(ctx, last, 1000)
		if err != nil {
			b.Fatal(err)
		}
		pages = append(pages, time.Since(t0))
		res.reposListed += len(page)
		if len(page) < 1000 {
			break
		}
		last = page[len(page)-1]
	}
	res.catalogAll = time.Since(start)
	slices.Sort(pages)
	res.catalogP50, res.catalogP99 = pages[len(pages)/2], pages[len(pages)*99/100]
	if res.reposListed != l.repos {
		b.Fatalf("_catalog: %d repositories, want %d", res.reposListed, l.repos)
	}
	return res
}

// runGC runs `ferry gc --grace 0s` over the stores, so that every link and
// blob is a candidate and checked: the worst case of a collection with
// nothing to free.
func runGC(b *testing.B, dir, metadata string, res *result) {
	args := []string{"gc", "--data-dir", dir, "--grace", "0s"}
	if metadata != "" {
		args = append(args, "--metadata", metadata)
	}
	cmd := exec.Command(testenv.FerryBinary(b), args...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	res.gcTime = time.Since(start)
	if err != nil {
		b.Fatalf("ferry gc: %v\n%s", err, out)
	}
	res.gcOut = strings.TrimSpace(string(out))
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.gcRSS = ru.Maxrss * 1024
	}
	if !strings.Contains(res.gcOut, "removed 0 blob links") || !strings.Contains(res.gcOut, "deleted 0 blobs") {
		b.Fatalf("ferry gc freed something in a store where everything is used:\n%s", out)
	}
}

func BenchmarkMetadataScale(b *testing.B) {
	l := layout{sizes{
		manifests: testenv.EnvInt(b, "SCALE_MANIFESTS", 20000),
		repos:     testenv.EnvInt(b, "SCALE_REPOS", 2000),
		tags:      testenv.EnvInt(b, "SCALE_TAGS", 5000),
		blobFiles: testenv.EnvInt(b, "SCALE_BLOBS", 20000),
		samples:   testenv.EnvInt(b, "SCALE_SAMPLES", 5000),
	}}
	if l.repos < 2 || l.tags >= l.manifests || l.manifests-l.tags < l.repos-1 {
		b.Fatalf("SCALE_REPOS=%d SCALE_TAGS=%d SCALE_MANIFESTS=%d: want 2 repositories or more, and more manifests than tags plus repositories",
			l.repos, l.tags, l.manifests)
	}
	engines := strings.Split(os.Getenv("SCALE_ENGINES"), ",")
	if engines[0] == "" {
		engines = []string{"sqlite", "postgres"}
	}
	ctx := context.Background()
	results := map[string]result{}
	for range b.N {
		for _, engine := range engines {
			dir := b.TempDir()
			var (
				s       *sqlstore.Store
				dsn     string
				err     error
				workers = 4
			)
			switch engine {
			case "sqlite":
				s, err = sqlstore.OpenSQLite(ctx, filepath.Join(dir, "metadata.db"))
			case "postgres":
				dsn = testenv.StartPostgres(b).NewDatabase(b)
				s, err = sqlstore.OpenPostgres(ctx, dsn)
				workers = 8
			default:
				b.Fatalf("SCALE_ENGINES: unknown engine %q (sqlite, postgres)", engine)
			}
			if err != nil {
				b.Fatal(err)
			}
			fmt.Fprintf(os.Stderr, "%s: filling %d manifests in %d repositories (%d tags in one)\n", engine, l.manifests, l.repos, l.tags)
			start := time.Now()
			fill(b, s, l, workers)
			fillTime := time.Since(start)
			res := measure(b, s, l)
			res.fill = fillTime
			s.Close()
			if engine == "sqlite" {
				for _, f := range []string{"metadata.db", "metadata.db-wal"} {
					if fi, err := os.Stat(filepath.Join(dir, f)); err == nil {
						res.dbBytes += fi.Size()
					}
				}
			}
			writeBlobs(b, dir, l, l.blobFiles)
			runGC(b, dir, dsn, &res)
			results[engine] = res
		}
	}
	report(l, engines, results)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d.Microseconds())/1000) }

// report prints each figure for every engine, and the target of issue #17
// where there is one, with the ratio figure/target.
func report(l layout, engines []string, results map[string]result) {
	host, _ := os.Hostname()
	fmt.Printf("\nmetadata at scale: %d manifests, %d repositories, %d tags in one, %d blob files; %s, %d CPUs, %s\n",
		l.manifests, l.repos, l.tags, l.blobFiles, host, numCPU(), time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("%-34s", "figure")
	for _, e := range engines {
		fmt.Printf(" %16s", e)
	}
	fmt.Printf(" %16s  %s\n", "target", "ratio (sqlite/target)")
	row := func(name string, f func(result) string, target string, ratio func(result) string) {
		fmt.Printf("%-34s", name)
		for _, e := range engines {
			fmt.Printf(" %16s", f(results[e]))
		}
		fmt.Printf(" %16s", target)
		if r, ok := results["sqlite"]; ok && ratio != nil {
			fmt.Printf("  %s", ratio(r))
		}
		fmt.Println()
	}
	dur := func(get func(result) time.Duration) func(result) string {
		return func(r result) string { return ms(get(r)) }
	}
	ratioOf := func(get func(result) time.Duration, target time.Duration) func(result) string {
		return func(r result) string { return fmt.Sprintf("%.3f", float64(get(r))/float64(target)) }
	}
	row("fill (store API)", func(r result) string { return r.fill.Round(time.Millisecond).String() }, "", nil)
	row("manifest GET by digest p50", dur(func(r result) time.Duration { return r.getP50 }), "", nil)
	row("manifest GET by digest p99", dur(func(r result) time.Duration { return r.getP99 }), "< 5 ms",
		ratioOf(func(r result) time.Duration { return r.getP99 }, 5*time.Millisecond))
	row("manifest GET by tag p50", dur(func(r result) time.Duration { return r.tagGetP50 }), "", nil)
	row("manifest GET by tag p99", dur(func(r result) time.Duration { return r.tagGetP99 }), "< 5 ms",
		ratioOf(func(r result) time.Duration { return r.tagGetP99 }, 5*time.Millisecond))
	row("tag list page (n=100) p50", dur(func(r result) time.Duration { return r.tagsP50 }), "", nil)
	row("tag list page (n=100) p99", dur(func(r result) time.Duration { return r.tagsP99 }), "", nil)
	row(fmt.Sprintf("all %d tags, n=1000", l.tags), dur(func(r result) time.Duration { return r.tagsAll }), "", nil)
	row("_catalog page (n=1000) p50", dur(func(r result) time.Duration { return r.catalogP50 }), "", nil)
	row("_catalog page (n=1000) p99", dur(func(r result) time.Duration { return r.catalogP99 }), "", nil)
	row(fmt.Sprintf("all %d repositories, n=1000", l.repos), dur(func(r result) time.Duration { return r.catalogAll }), "", nil)
	row("ferry gc, nothing to free", func(r result) string { return r.gcTime.Round(time.Millisecond).String() }, "< 2m0s",
		ratioOf(func(r result) time.Duration { return r.gcTime }, 2*time.Minute))
	row("ferry gc peak RSS", func(r result) string { return fmt.Sprintf("%d MiB", r.gcRSS>>20) }, "< 512 MiB",
		func(r result) string { return fmt.Sprintf("%.3f", float64(r.gcRSS)/float64(512<<20)) })
	if r, ok := results["sqlite"]; ok {
		fmt.Printf("%-34s %16s\n", "SQLite file", fmt.Sprintf("%d MiB", r.dbBytes>>20))
	}
	for _, e := range engines {
		fmt.Printf("ferry gc (%s): %s\n", e, results[e].gcOut)
	}
}

func numCPU() int { return runtime.NumCPU() }
