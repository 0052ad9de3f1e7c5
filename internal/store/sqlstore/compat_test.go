package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/store"
	"github.com/ferry-mirror/ferry/internal/testenv"
)

// testdata/v3 holds the migration files of the two stores as released
// before they were merged (schema version 3, commit e5e57e5), one folder
// per engine: the schema of every database in the field.

// TestMigrationsRenderTheReleasedSchema: for each engine, the templated
// migrations are the released ones, statement for statement, so a new
// database and one created before the merge have the same schema.
func TestMigrationsRenderTheReleasedSchema(t *testing.T) {
	for name, d := range map[string]dialect{"sqlite": sqliteDialect{}, "postgres": postgresDialect{}} {
		ms, err := migrations(d)
		if err != nil {
			t.Fatal(err)
		}
		old := releasedMigrations(t, name)
		if len(ms) < len(old) {
			t.Fatalf("%s: %d migrations, the release had %d", name, len(ms), len(old))
		}
		for i, o := range old {
			if ms[i].name != o.name {
				t.Errorf("%s: migration %d is %s, released as %s (numbers recorded in databases must not change)", name, i, ms[i].name, o.name)
			}
			if got, want := statements(ms[i].body), statements(o.body); got != want {
				t.Errorf("%s: %s renders\n%s\nreleased as\n%s", name, o.name, got, want)
			}
		}
	}
}

func releasedMigrations(t *testing.T, engine string) []migration {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "v3", engine, "*.sql"))
	if err != nil || len(files) != 3 {
		t.Fatalf("released migrations of %s: %v, %v", engine, files, err)
	}
	var out []migration
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, migration{version: i + 1, name: filepath.Base(f), body: string(b)})
	}
	return out
}

// statements drops comments and blank lines.
func statements(sql string) string {
	var keep []string
	for _, l := range strings.Split(sql, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "--") {
			keep = append(keep, strings.Join(strings.Fields(l), " "))
		}
	}
	return strings.Join(keep, "\n")
}

// TestOpenReleasedDatabase builds a database the way the released stores
// did (their migration files, their version bookkeeping: PRAGMA
// user_version on SQLite, the ferry_schema table on PostgreSQL), fills it
// as they did, and opens it with this store: everything is there, no
// migration runs again, and it takes new writes.
func TestOpenReleasedDatabase(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "metadata.db")
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(ON)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		releasedDatabase(t, db, "sqlite", sqliteDialect{}, func(n int) string { return fmt.Sprintf("PRAGMA user_version = %d", n) })
		checkReleasedDatabase(t, func(ctx context.Context) (*Store, error) { return OpenSQLite(ctx, path) }, func() int {
			var v int
			mustScan(t, db.QueryRow("PRAGMA user_version"), &v)
			return v
		})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := testenv.StartPostgres(t).NewDatabase(t)
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS ferry_schema (version INTEGER NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		releasedDatabase(t, db, "postgres", postgresDialect{}, func(n int) string { return fmt.Sprintf("INSERT INTO ferry_schema (version) VALUES (%d)", n) })
		checkReleasedDatabase(t, func(ctx context.Context) (*Store, error) { return OpenPostgres(ctx, dsn) }, func() int {
			var rows int
			mustScan(t, db.QueryRow(`SELECT COUNT(*) FROM ferry_schema`), &rows)
			return rows
		})
	})
}

// Contents of the released database.
var (
	oldLayer    = digest.FromString("layer")
	oldConfig   = digest.FromString("config")
	oldManifest = []byte(`{"schemaVersion":2,"layers":[]}`)
	oldDigest   = digest.FromBytes(oldManifest)
	oldSig      = digest.FromString("signature")
)

// releasedDatabase applies the released migrations to db, recording each
// with record(n), then writes what the released stores wrote, with the
// released statements.
func releasedDatabase(t *testing.T, db *sql.DB, engine string, d dialect, record func(n int) string) {
	t.Helper()
	for _, m := range releasedMigrations(t, engine) {
		if _, err := db.Exec(m.body); err != nil {
			t.Fatalf("released %s: %v", m.name, err)
		}
		if _, err := db.Exec(record(m.version)); err != nil {
			t.Fatal(err)
		}
	}
	ts := int64(1_700_000_000_000)
	for _, st := range []struct {
		q    string
		args []any
	}{
		{`INSERT INTO repositories (name, created_at) VALUES (?, ?)`, []any{"ocp/release", ts}},
		{`INSERT INTO blob_links (repo, digest, size, linked_at) VALUES (?, ?, ?, ?)`, []any{"ocp/release", string(oldLayer), 5, ts}},
		{`INSERT INTO blob_links (repo, digest, size, linked_at) VALUES (?, ?, ?, ?)`, []any{"ocp/release", string(oldConfig), 6, ts}},
		{`INSERT INTO manifests (repo, digest, media_type, size, content, subject, artifact_type, annotations, created_at)
			VALUES (?, ?, ?, ?, ?, NULL, NULL, NULL, ?)`, []any{"ocp/release", string(oldDigest), "application/vnd.oci.image.manifest.v1+json", len(oldManifest), oldManifest, ts}},
		{`INSERT INTO manifests (repo, digest, media_type, size, content, subject, artifact_type, annotations, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, []any{"ocp/release", string(oldSig), "application/vnd.oci.image.manifest.v1+json", 2, []byte("{}"), string(oldDigest), "application/vnd.dev.sigstore.bundle.v0.3+json", `{"org.example":"yes"}`, ts}},
		{`INSERT INTO manifest_blobs (repo, manifest_digest, blob_digest) VALUES (?, ?, ?)`, []any{"ocp/release", string(oldDigest), string(oldLayer)}},
		{`INSERT INTO manifest_blobs (repo, manifest_digest, blob_digest) VALUES (?, ?, ?)`, []any{"ocp/release", string(oldDigest), string(oldConfig)}},
		{`INSERT INTO tags (repo, name, digest, updated_at) VALUES (?, ?, ?, ?)`, []any{"ocp/release", "4.16.3", string(oldDigest), ts}},
		{`INSERT INTO uploads (id, repo, "offset", algorithm, hash_state, started_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`, []any{"up1", "ocp/release", 10, "sha256", []byte{1, 2, 3}, ts, ts}},
		{`INSERT INTO users (name, password_hash, created_at) VALUES (?, ?, ?)`, []any{"alice", "$2a$10$hash", ts}},
		{`INSERT INTO grants (username, prefix, perm) VALUES (?, ?, ?)`, []any{"alice", "ocp/", "push"}},
		{`INSERT INTO robot_tokens (id, username, secret_hash, description, created_at) VALUES (?, ?, ?, ?, ?)`, []any{"tok1", "alice", "abc", "ci", ts}},
		{`INSERT INTO signing_keys (id, secret) VALUES (?, ?)`, []any{1, "old-signing-key"}},
		{`INSERT INTO signing_keys (id, secret) VALUES (?, ?)`, []any{2, "old-ca"}},
	} {
		if _, err := db.Exec(d.bind(st.q), st.args...); err != nil {
			t.Fatalf("%s: %v", st.q, err)
		}
	}
}

func checkReleasedDatabase(t *testing.T, open func(context.Context) (*Store, error), version func() int) {
	t.Helper()
	ctx := context.Background()
	s, err := open(ctx)
	if err != nil {
		t.Fatalf("open a released database: %v", err)
	}
	defer s.Close()
	// The released three are recognised, and each later one is applied
	// once.
	ms, err := migrations(sqliteDialect{})
	if err != nil {
		t.Fatal(err)
	}
	if v, want := version(), ms[len(ms)-1].version; v != want {
		t.Errorf("schema version after open: %d, want %d (migrations applied again, or not recognised)", v, want)
	}
	m, err := s.TaggedManifest(ctx, "ocp/release", "4.16.3")
	if err != nil || m.Digest != oldDigest || string(m.Content) != string(oldManifest) {
		t.Errorf("TaggedManifest = %+v, %v", m, err)
	}
	if n, err := s.BlobLink(ctx, "ocp/release", oldLayer); err != nil || n != 5 {
		t.Errorf("BlobLink = %d, %v", n, err)
	}
	refs, err := s.Referrers(ctx, "ocp/release", oldDigest, "")
	if err != nil || len(refs) != 1 || refs[0].Digest != oldSig || refs[0].Annotations["org.example"] != "yes" {
		t.Errorf("Referrers = %+v, %v", refs, err)
	}
	if u, err := s.Upload(ctx, "up1"); err != nil || u.Offset != 10 || !reflect.DeepEqual(u.HashState, []byte{1, 2, 3}) {
		t.Errorf("Upload = %+v, %v", u, err)
	}
	if u, err := s.User(ctx, "alice"); err != nil || !reflect.DeepEqual(u.Grants, []store.Grant{{Prefix: "ocp/", Perm: "push"}}) {
		t.Errorf("User = %+v, %v", u, err)
	}
	if tok, err := s.Token(ctx, "tok1"); err != nil || tok.User != "alice" {
		t.Errorf("Token = %+v, %v", tok, err)
	}
	if k, err := s.Secret(ctx, store.SecretSigningKeys, "new"); err != nil || k != "old-signing-key" {
		t.Errorf("signing key = %q, %v; want the released one", k, err)
	}
	if ca, err := s.Secret(ctx, store.SecretSharedCA, "new"); err != nil || ca != "old-ca" {
		t.Errorf("shared CA = %q, %v; want the released one", ca, err)
	}
	// gc sees the released links as referenced, and new writes work.
	if n, err := s.SweepLinks(ctx, time.Now().Add(time.Hour)); err != nil || n != 0 {
		t.Errorf("SweepLinks = %d, %v; want 0 (every link is used by the manifest)", n, err)
	}
	if err := s.DeleteManifest(ctx, "ocp/release", oldDigest); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TaggedManifest(ctx, "ocp/release", "4.16.3"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("tag after its manifest was deleted: %v", err)
	}
	if err := s.CreateUser(ctx, "bob", "h"); err != nil {
		t.Error(err)
	}
}

func mustScan(t *testing.T, row *sql.Row, v any) {
	t.Helper()
	if err := row.Scan(v); err != nil {
		t.Fatal(err)
	}
}
