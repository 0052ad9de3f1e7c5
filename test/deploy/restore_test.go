package deploy

import (
	"context"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// A single node is backed up as README says: stop it, archive the data
// dir with tar (secrets.key included), and restore the archive into a
// fresh directory on which a new serve gives back every image, the users
// and their logins.
func TestRestoreSingleNode(t *testing.T) {
	tarTool := testenv.Tool(t, "tar")
	data := filepath.Join(t.TempDir(), "data")
	s := testenv.StartFerry(t, testenv.FerryOptions{DataDir: data, Secure: true})
	pw := strings.TrimSpace(readFile(t, filepath.Join(data, "initial-admin-password")))
	reg := registry{host: s.Host, tr: insecureTransport(), auth: &authn.Basic{Username: "admin", Password: pw}}
	images := pushImages(t, reg, 3)
	s.Stop()

	backup := filepath.Join(t.TempDir(), "ferry-backup.tar.gz")
	run(t, nil, tarTool, "-C", data, "-czf", backup, ".")
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}

	restored := filepath.Join(t.TempDir(), "restored")
	if err := os.Mkdir(restored, 0o700); err != nil {
		t.Fatal(err)
	}
	run(t, nil, tarTool, "-C", restored, "-xzf", backup)
	s2 := testenv.StartFerry(t, testenv.FerryOptions{DataDir: restored, Secure: true})
	reg.host = s2.Host
	verifyImages(t, reg, images)
	// The restored registry still requires the admin's credentials.
	reg.auth = &authn.Basic{Username: "admin", Password: "not-the-password"}
	if _, err := remoteDigest(t, reg, "ocp/app0:v0"); err == nil {
		t.Error("the restored registry let a wrong password pull")
	}
	s2.Stop()

	// A backup without secrets.key cannot open what the key sealed, and
	// serve says so rather than starting with a new key.
	noKey := filepath.Join(t.TempDir(), "nokey")
	if err := os.Mkdir(noKey, 0o700); err != nil {
		t.Fatal(err)
	}
	run(t, nil, tarTool, "-C", noKey, "-xzf", backup, "--exclude", "./secrets.key")
	out, code := testenv.RunFerry(t, nil, "serve", "--plain-http", "--listen", "127.0.0.1:0", "--data-dir", noKey)
	if code == 0 || !strings.Contains(out, "secrets") {
		t.Errorf("serve on a backup without secrets.key: exit %d, want a refusal naming the secrets key:\n%s", code, out)
	}
}

// An HA pair of stores is backed up with pg_dump and a copy of every
// bucket object, each restored into a fresh PostgreSQL and a fresh MinIO,
// and a replica given the same secrets key serves every image intact.
func TestRestorePostgresMinIO(t *testing.T) {
	pgDump := testenv.Tool(t, "pg_dump")
	pgRestore := testenv.Tool(t, "pg_restore")
	pg := testenv.StartPostgres(t)
	m := testenv.StartMinIO(t)
	db := pg.NewDatabase(t)
	bucket := testenv.BucketName()
	key := secretsKey(t)
	env := append(m.Env(), "FERRY_SECRETS_KEY="+key)
	s := testenv.StartFerry(t, testenv.FerryOptions{Secure: true, Env: env,
		Args: []string{"--metadata", db, "--blob-store", m.BlobStoreURL(bucket)}})
	pw := strings.TrimSpace(readFile(t, filepath.Join(s.DataDir, "initial-admin-password")))
	reg := registry{host: s.Host, tr: insecureTransport(), auth: &authn.Basic{Username: "admin", Password: pw}}
	images := pushImages(t, reg, 3)
	s.Stop()

	// Back up: the database with pg_dump, the bucket object by object.
	dump := filepath.Join(t.TempDir(), "ferry.dump")
	run(t, nil, pgDump, "--format=custom", "--no-owner", "--file", dump, db)
	objects := filepath.Join(t.TempDir(), "bucket")
	n := copyBucket(t, s3Client(t, m), bucket, objects, false)
	if n == 0 {
		t.Fatal("the bucket holds no object to back up")
	}

	// Restore into new servers.
	pg2 := testenv.StartPostgres(t)
	m2 := testenv.StartMinIO(t)
	db2 := pg2.NewDatabase(t)
	run(t, nil, pgRestore, "--no-owner", "--exit-on-error", "--dbname", db2, dump)
	bucket2 := testenv.BucketName()
	if got := copyBucket(t, s3Client(t, m2), bucket2, objects, true); got != n {
		t.Fatalf("restored %d objects of %d", got, n)
	}
	env2 := append(m2.Env(), "FERRY_SECRETS_KEY="+key)
	s2 := testenv.StartFerry(t, testenv.FerryOptions{Secure: true, Env: env2,
		Args: []string{"--metadata", db2, "--blob-store", m2.BlobStoreURL(bucket2)}})
	reg.host = s2.Host
	verifyImages(t, reg, images)
	if _, err := os.Stat(filepath.Join(s2.DataDir, "initial-admin-password")); err == nil {
		t.Error("the restored replica made a new initial admin: the users were not restored")
	}
}

func s3Client(t *testing.T, m *testenv.MinIO) *minio.Client {
	t.Helper()
	c, err := minio.New(m.Host, &minio.Options{Creds: credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""), Secure: false})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// copyBucket copies every object of bucket into dir (restore false), or
// every file of dir into a new bucket (restore true); it returns how many.
func copyBucket(t *testing.T, c *minio.Client, bucket, dir string, restore bool) int {
	t.Helper()
	ctx := context.Background()
	n := 0
	if restore {
		if err := c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
			t.Fatal(err)
		}
		err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			name, err := url.PathUnescape(rel)
			if err != nil {
				return err
			}
			if _, err := c.FPutObject(ctx, bucket, filepath.ToSlash(name), p, minio.PutObjectOptions{}); err != nil {
				return err
			}
			n++
			return nil
		})
		if err != nil {
			t.Fatalf("restore the bucket: %v", err)
		}
		return n
	}
	for obj := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatalf("list %s: %v", bucket, obj.Err)
		}
		r, err := c.GetObject(ctx, bucket, obj.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Keys are paths; each component escaped so a key maps to one file.
		var parts []string
		for _, p := range strings.Split(obj.Key, "/") {
			parts = append(parts, url.PathEscape(p))
		}
		path := filepath.Join(append([]string{dir}, parts...)...)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, r); err != nil {
			t.Fatalf("copy %s: %v", obj.Key, err)
		}
		f.Close()
		r.Close()
		n++
	}
	return n
}
