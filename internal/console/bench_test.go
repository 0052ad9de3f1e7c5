package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/auth"
	"github.com/ferry-mirror/ferry/internal/secretbox"
	"github.com/ferry-mirror/ferry/internal/store"
	"github.com/ferry-mirror/ferry/internal/store/fs"
	"github.com/ferry-mirror/ferry/internal/store/sqlstore"
)

// The scale the issue asks for: pages of a repository with 50,000 tags and
// of a store with 100,000 repositories.
const (
	benchRepos = 100_000
	benchTags  = 50_000
)

var (
	benchOnce sync.Once
	benchDir  string
	benchErr  error
)

// benchStore fills a SQLite store once per process (it takes a while) in
// $FERRY_CONSOLE_BENCH_DIR, or a temporary directory, and reuses it when it
// is already filled.
func benchStore(b *testing.B) string {
	benchOnce.Do(func() {
		benchDir = os.Getenv("FERRY_CONSOLE_BENCH_DIR")
		if benchDir == "" {
			benchDir, benchErr = os.MkdirTemp("", "ferry-console-bench")
			if benchErr != nil {
				return
			}
		}
		if _, err := os.Stat(filepath.Join(benchDir, "filled")); err == nil {
			return
		}
		benchErr = fill(benchDir)
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchDir
}

// fill writes benchRepos repositories (ocp/app-NNNNNN, each with one
// small image tagged v1) and a repository ocp/big with benchTags tags.
func fill(dir string) error {
	ctx := context.Background()
	blobs, err := fs.New(dir)
	if err != nil {
		return err
	}
	meta, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, "metadata.db"))
	if err != nil {
		return err
	}
	defer meta.Close()
	cfg := []byte(`{"architecture":"amd64","os":"linux","config":{"Labels":{"a":"b"}}}`)
	cd := digest.FromBytes(cfg)
	if _, err := blobs.WriteUpload(ctx, "cfg", 0, strings.NewReader(string(cfg))); err != nil {
		return err
	}
	if err := blobs.CommitUpload(ctx, "cfg", cd); err != nil {
		return err
	}
	layer := digest.FromString("layer")
	man := func(i int) *store.Manifest {
		content, _ := json.Marshal(map[string]any{
			"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
			"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(cfg)},
			"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": 1000 + i}},
		})
		return &store.Manifest{Digest: digest.FromBytes(content), MediaType: "application/vnd.oci.image.manifest.v1+json",
			Content: content, Blobs: []digest.Digest{cd, layer}}
	}
	put := func(repo string, m *store.Manifest, tag string) error {
		for _, d := range m.Blobs {
			if err := meta.LinkBlob(ctx, repo, d, 1000); err != nil {
				return err
			}
		}
		return meta.PutManifest(ctx, repo, m, tag)
	}
	for i := range benchRepos {
		if err := put(fmt.Sprintf("ocp/app-%06d", i), man(i), "v1"); err != nil {
			return err
		}
	}
	for i := range benchTags {
		if err := put("ocp/big", man(i), fmt.Sprintf("v%06d", i)); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "filled"), nil, 0o644)
}

// benchConsole opens the filled store behind a console with
// authentication on, and returns it with the session cookie of user,
// whose grants are given.
func benchConsole(b *testing.B, user string, grants ...store.Grant) (http.Handler, *http.Cookie) {
	dir := benchStore(b)
	ctx := context.Background()
	blobs, err := fs.New(dir)
	if err != nil {
		b.Fatal(err)
	}
	meta, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, "metadata.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { meta.Close() })
	box, err := secretbox.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		b.Fatal(err)
	}
	hash, _ := auth.HashPassword("pw-" + user)
	meta.DeleteUser(ctx, user)
	if err := meta.CreateUser(ctx, user, hash); err != nil {
		b.Fatal(err)
	}
	for _, g := range grants {
		if err := meta.AddGrant(ctx, user, g); err != nil {
			b.Fatal(err)
		}
	}
	a, err := auth.New(ctx, auth.Options{Store: meta, Mode: auth.On, Box: box})
	if err != nil {
		b.Fatal(err)
	}
	c, err := New(Options{Meta: meta, Blobs: blobs, Auth: a, Users: meta})
	if err != nil {
		b.Fatal(err)
	}
	session, _, err := a.OpenSession(ctx, "127.0.0.1", user, "pw-"+user)
	if err != nil {
		b.Fatal(err)
	}
	return c.Handler(), &http.Cookie{Name: sessionCookie, Value: session}
}

// BenchmarkPages renders console pages over the filled store; ns/op is
// one page, and the ms/page metric is what the issue bounds (200 ms).
func BenchmarkPages(b *testing.B) {
	if testing.Short() {
		b.Skip("fills a store with 100,000 repositories")
	}
	admin, adminCookie := benchConsole(b, "bench-admin", store.Grant{Prefix: "", Perm: auth.Admin})
	// One repository in a thousand: the list must read far to fill a page.
	sparse, sparseCookie := benchConsole(b, "bench-sparse", store.Grant{Prefix: "ocp/big", Perm: auth.Pull},
		store.Grant{Prefix: "ocp/app-000999", Perm: auth.Pull}, store.Grant{Prefix: "ocp/app-050999", Perm: auth.Pull})
	for _, bc := range []struct {
		name   string
		h      http.Handler
		cookie *http.Cookie
		path   string
	}{
		{"repositories/first", admin, adminCookie, "/repositories"},
		{"repositories/deep", admin, adminCookie, "/repositories?after=ocp/app-090000"},
		{"repositories/search", admin, adminCookie, "/repositories?q=app-0999"},
		{"repositories/sparse-user", sparse, sparseCookie, "/repositories"},
		{"repository/first", admin, adminCookie, "/repository?name=ocp/big"},
		{"repository/deep", admin, adminCookie, "/repository?name=ocp/big&after=v045000"},
		{"image", admin, adminCookie, "/image?repo=ocp/big&ref=v040000"},
		{"releases", admin, adminCookie, "/releases"},
		{"catalogs", admin, adminCookie, "/catalogs"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, bc.path, nil)
				req.AddCookie(bc.cookie)
				rec := httptest.NewRecorder()
				bc.h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d\n%s", bc.path, rec.Code, rec.Body.String())
				}
			}
			b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(time.Millisecond), "ms/page")
		})
	}
}
