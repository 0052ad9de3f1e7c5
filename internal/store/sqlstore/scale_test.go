package sqlstore

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-mirror/ferry/internal/gc"
	"github.com/ferry-mirror/ferry/internal/store/fs"
	"github.com/ferry-mirror/ferry/internal/testenv"
)

// Size of the store the scale tests build: big enough that a query
// reading a repository's rows once per link, or sorting a repository's
// tags per page, would not finish in a test's time, small enough to fill
// in seconds.
const (
	scaleBig      = 60000 // manifests of the one big repository
	scaleRepos    = 40    // other repositories ...
	scalePerRepo  = 1000  // ... of this many manifests each
	scaleOrphanOf = 500   // every 500th manifest leaves an old unused link
	scaleBases    = 4     // base layers shared by every image
)

// scaleEngine is an engine with what the bulk fill spells differently.
type scaleEngine struct {
	name string
	open func(t *testing.T) *Store
	// hex64 renders the integer SQL expression e as 64 hex-like digits.
	hex64 func(e string) string
}

func scaleEngines() []scaleEngine {
	return []scaleEngine{
		{
			name: "sqlite",
			open: func(t *testing.T) *Store {
				s, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "meta.db"))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			},
			hex64: func(e string) string { return "printf('%064d', " + e + ")" },
		},
		{
			name: "postgres",
			open: func(t *testing.T) *Store {
				s, err := OpenPostgres(context.Background(), testenv.StartPostgres(t).NewDatabase(t))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			},
			hex64: func(e string) string { return "lpad(CAST(" + e + " AS TEXT), 64, '0')" },
		},
	}
}

// bulkFill writes, with a few INSERT ... SELECT statements rather than
// 100,000 PutManifest calls, what PutManifest and LinkBlob would: the big
// repository and the small ones, each manifest with a unique config and a
// shared base layer (links made long ago, so a collector checks them all),
// every 500th also leaving an old link no manifest uses, plus upload
// sessions. It returns the number of unused links.
func bulkFill(t *testing.T, s *Store, e scaleEngine) int {
	t.Helper()
	ctx := context.Background()
	total := scaleBig + scaleRepos*scalePerRepo
	repoOf := fmt.Sprintf(`CASE WHEN i < %d THEN 'openshift/release-big' ELSE 'ns/operator-' || CAST((i - %d) / %d AS TEXT) END`,
		scaleBig, scaleBig, scalePerRepo)
	config := `'sha256:' || ` + e.hex64("i")
	manifest := `'sha256:' || ` + e.hex64(fmt.Sprint("i + ", 10*total))
	base := `'sha256:' || ` + e.hex64(fmt.Sprintf("(i %% %d) + %d", scaleBases, 20*total))
	orphan := `'sha256:' || ` + e.hex64(fmt.Sprint("i + ", 30*total))
	seq := func(n int) string {
		return fmt.Sprintf(`WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < %d) `, n)
	}
	stmts := []string{
		`INSERT INTO repositories (name, created_at) ` + seq(total) + `SELECT DISTINCT ` + repoOf + `, 0 FROM seq`,
		`INSERT INTO manifests (repo, digest, media_type, size, content, created_at) ` + seq(total) +
			`SELECT ` + repoOf + `, ` + manifest + `, 'application/vnd.oci.image.manifest.v1+json', 2, ` + s.d.schema().emptyBytes() + `, 0 FROM seq`,
		`INSERT INTO tags (repo, name, digest, updated_at) ` + seq(total) +
			`SELECT ` + repoOf + `, 'v' || CAST(i AS TEXT), ` + manifest + `, 0 FROM seq`,
		`INSERT INTO manifest_blobs (repo, manifest_digest, blob_digest) ` + seq(total) +
			`SELECT ` + repoOf + `, ` + manifest + `, ` + config + ` FROM seq`,
		`INSERT INTO manifest_blobs (repo, manifest_digest, blob_digest) ` + seq(total) +
			`SELECT ` + repoOf + `, ` + manifest + `, ` + base + ` FROM seq`,
		`INSERT INTO blob_links (repo, digest, size, linked_at) ` + seq(total) +
			`SELECT ` + repoOf + `, ` + config + `, 1469, 0 FROM seq`,
		`INSERT INTO blob_links (repo, digest, size, linked_at) ` + seq(total) +
			`SELECT DISTINCT ` + repoOf + `, ` + base + `, 31457280, 0 FROM seq`,
		`INSERT INTO blob_links (repo, digest, size, linked_at) ` + seq(total) +
			`SELECT ` + repoOf + `, ` + orphan + `, 10, 0 FROM seq WHERE i % ` + fmt.Sprint(scaleOrphanOf) + ` = 7`,
		// Repositories of one blob each, as a mirror of many small
		// images has.
		`INSERT INTO repositories (name, created_at) ` + seq(20000) + `SELECT 'mirror/image-' || CAST(i AS TEXT), 0 FROM seq`,
		`INSERT INTO uploads (id, repo, "offset", algorithm, started_at, updated_at, owner) ` + seq(20000) +
			`SELECT 'up-' || CAST(i AS TEXT), 'ns/operator-1', 0, 'sha256', i, i, 'alice' FROM seq`,
	}
	for _, q := range stmts {
		if _, err := s.w.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// PostgreSQL's autovacuum keeps statistics, which a test does not wait
	// for; SQLite has none unless someone runs ANALYZE, and Ferry does not.
	if _, ok := s.d.(postgresDialect); ok {
		if _, err := s.w.ExecContext(ctx, `ANALYZE`); err != nil {
			t.Fatal(err)
		}
	}
	return total / scaleOrphanOf
}

// emptyBytes is an empty binary literal of the engine.
func (st schemaTypes) emptyBytes() string {
	if st.Bytes == "BYTEA" {
		return `'\x'::bytea`
	}
	return `X''`
}

// genericPlan returns PostgreSQL's generic plan of q, the one it may
// settle on for a statement prepared once and run many times (pgx caches
// statements): made without the argument values, so estimates are
// defaults, which is where a plan goes wrong at scale.
func genericPlan(t *testing.T, s *Store, q string, args ...any) string {
	t.Helper()
	ctx := context.Background()
	conn, err := s.r.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	lits := make([]string, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			lits[i] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
		default:
			lits[i] = fmt.Sprint(v)
		}
	}
	for _, st := range []string{`SET plan_cache_mode = force_generic_plan`, `PREPARE scale_q AS ` + s.d.bind(q)} {
		if _, err := conn.ExecContext(ctx, st); err != nil {
			t.Fatalf("%s: %v", st, err)
		}
	}
	defer conn.ExecContext(ctx, `DEALLOCATE scale_q; RESET plan_cache_mode`)
	rows, err := conn.QueryContext(ctx, `EXPLAIN EXECUTE scale_q(`+strings.Join(lits, ", ")+`)`)
	if err != nil {
		t.Fatalf("explain %s: %v", q, err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// plan returns the engine's plan of q with args, one line per node.
func plan(t *testing.T, s *Store, q string, args ...any) string {
	t.Helper()
	explain := "EXPLAIN "
	if _, ok := s.d.(sqliteDialect); ok {
		explain = "EXPLAIN QUERY PLAN "
	}
	rows, err := s.r.QueryContext(context.Background(), explain+s.d.bind(q), args...)
	if err != nil {
		t.Fatalf("explain %s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprint(vals[len(vals)-1])) // the detail column
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// TestScale fills each engine with 100,000 manifests, 60,000 of them in one
// repository, and checks that every query the registry and the collector
// run there is an index lookup (no full scan, no sort of a repository's
// rows), then that a collection over it removes exactly the unused links.
func TestScale(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a store of 100,000 manifests")
	}
	for _, e := range scaleEngines() {
		t.Run(e.name, func(t *testing.T) {
			s := e.open(t)
			orphans := bulkFill(t, s, e)
			big := "openshift/release-big"
			someDigest := "sha256:" + strings.Repeat("0", 60) + "1234"
			// What each query's plan must name, and must not contain: a
			// full scan of a table or a sort (the names of SQLite's, then
			// PostgreSQL's).
			bad := []string{"SCAN ", "TEMP B-TREE", "Seq Scan", "Sort"}
			for _, c := range []struct {
				name, q string
				args    []any
				index   map[string]string // engine: index the plan must use ("a|b": either)
			}{
				{"sweep batch", sweepQuery(false), []any{big, "", big, someDigest, int64(1)},
					map[string]string{"sqlite": "manifest_blobs_repo_blob", "postgres": "manifest_blobs_repo_blob"}},
				{"sweep last batch", sweepQuery(true), []any{big, someDigest, int64(1)},
					map[string]string{"sqlite": "manifest_blobs_repo_blob", "postgres": "manifest_blobs_repo_blob"}},
				{"sweep bound", sweepBoundQuery, []any{big, someDigest, sweepBatch - 1},
					map[string]string{"sqlite": "sqlite_autoindex_blob_links_1", "postgres": "blob_links_pkey"}},
				{"tag list", tagsQuery(s.d), []any{big, "v5", 100},
					map[string]string{"sqlite": "sqlite_autoindex_tags_1", "postgres": "tags_name_bytes"}},
				{"_catalog", reposQuery(s.d), []any{"", 1000},
					map[string]string{"sqlite": "sqlite_autoindex_repositories_1", "postgres": "repositories_name_bytes"}},
				{"manifest by digest", manifestQuery, []any{big, someDigest},
					map[string]string{"sqlite": "sqlite_autoindex_manifests_1", "postgres": "manifests_pkey"}},
				{"manifest by tag", taggedQuery, []any{big, "v5"},
					map[string]string{"sqlite": "sqlite_autoindex_tags_1", "postgres": "tags_pkey"}},
				{"blob link", blobQuery, []any{big, someDigest},
					map[string]string{"sqlite": "sqlite_autoindex_blob_links_1", "postgres": "blob_links_pkey|blob_links_digest"}},
				{"blob in any repository", anyBlobLinkQuery, []any{someDigest},
					map[string]string{"sqlite": "blob_links_digest", "postgres": "blob_links_digest"}},
				{"stale uploads", staleUploadsQuery, []any{int64(100), 10},
					map[string]string{"sqlite": "uploads_updated_at", "postgres": "uploads_updated_at"}},
			} {
				plans := map[string]string{"": plan(t, s, c.q, c.args...)}
				if e.name == "postgres" {
					plans[" (generic)"] = genericPlan(t, s, c.q, c.args...)
				}
				for kind, p := range plans {
					if !containsAny(p, strings.Split(c.index[e.name], "|")) {
						t.Errorf("%s: the plan%s does not use %s:\n%s", c.name, kind, c.index[e.name], p)
					}
					for _, b := range bad {
						if strings.Contains(p, b) {
							t.Errorf("%s: the plan%s has %q:\n%s", c.name, kind, strings.TrimSpace(b), p)
						}
					}
				}
			}

			// A collection: every link is older than the grace and checked;
			// only the unused ones go, over several sweep batches.
			blobs, err := fs.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			var before int
			if err := s.r.QueryRow(`SELECT count(*) FROM blob_links`).Scan(&before); err != nil {
				t.Fatal(err)
			}
			rep, err := gc.Run(context.Background(), s, blobs, gc.Options{Grace: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if rep.LinksRemoved != orphans {
				t.Errorf("gc removed %d links, want the %d no manifest uses", rep.LinksRemoved, orphans)
			}
			var after, orphansLeft int
			if err := s.r.QueryRow(`SELECT count(*) FROM blob_links`).Scan(&after); err != nil {
				t.Fatal(err)
			}
			if err := s.r.QueryRow(`SELECT count(*) FROM blob_links WHERE size = 10`).Scan(&orphansLeft); err != nil {
				t.Fatal(err)
			}
			if after != before-orphans || orphansLeft != 0 {
				t.Errorf("after gc: %d links (%d unused), want %d (0 unused)", after, orphansLeft, before-orphans)
			}
			// The pages of a repository listing still join up.
			checkPages(t, s, big)
		})
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// checkPages lists every tag of repo 1000 at a time and checks the count
// and the order.
func checkPages(t *testing.T, s *Store, repo string) {
	t.Helper()
	ctx := context.Background()
	n := 0
	prev := ""
	for last := ""; ; {
		page, err := s.Tags(ctx, repo, last, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, tag := range page {
			if tag <= prev {
				t.Fatalf("tag %q listed after %q", tag, prev)
			}
			prev = tag
		}
		n += len(page)
		if len(page) < 1000 {
			break
		}
		last = page[len(page)-1]
	}
	if n != scaleBig {
		t.Errorf("%d tags listed in %s, want %d", n, repo, scaleBig)
	}
}
