package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/ferry-mirror/ferry/internal/store"
	"github.com/ferry-mirror/ferry/internal/store/fs"
	"github.com/ferry-mirror/ferry/internal/store/s3"
	"github.com/ferry-mirror/ferry/internal/store/sqlstore"
)

// storeFlags choose the stores of a registry. serve, gc and user declare
// them here, once, so each command names the same stores the same way.
type storeFlags struct {
	dataDir        string
	metadata       string
	metadataPWFile string
	blobStore      string
	secretsKeyFile string
}

// register declares --data-dir and --metadata on f, and --blob-store when
// the command touches blobs.
func (s *storeFlags) register(f *pflag.FlagSet, blobs bool) {
	f.StringVar(&s.dataDir, "data-dir", "./ferry-data", "directory of the blobs, the SQLite metadata (metadata.db) and generated TLS files")
	f.StringVar(&s.metadata, "metadata", "", "metadata store: postgres://user@host:port/db?sslmode=... (default: SQLite in <data-dir>/metadata.db); keep the password out of argv: FERRY_METADATA, --metadata-password-file or PGPASSFILE")
	f.StringVar(&s.metadataPWFile, "metadata-password-file", "", "file holding the password of the --metadata user, so it stays out of the process arguments")
	if blobs {
		f.StringVar(&s.blobStore, "blob-store", "", "blob store: s3://<bucket>?endpoint=host:port&region=..&insecure=true (default: <data-dir>/blobs)")
	}
}

// registerSecretsKey declares --secrets-key-file, for the commands that
// read or write the sealed secrets of the metadata store.
func (s *storeFlags) registerSecretsKey(f *pflag.FlagSet) {
	f.StringVar(&s.secretsKeyFile, "secrets-key-file", "", "key sealing the secrets kept in the metadata store (default <data-dir>/secrets.key; or the key itself in FERRY_SECRETS_KEY)")
}

// openBlobs opens --blob-store: S3 for s3:// URLs, else the data dir.
func (s *storeFlags) openBlobs(ctx context.Context) (store.BlobStore, error) {
	switch {
	case s.blobStore == "":
		if err := secureDir(s.dataDir); err != nil {
			return nil, err
		}
		return fs.New(s.dataDir)
	case strings.HasPrefix(s.blobStore, "s3://"):
		opts, err := s3.ParseURL(s.blobStore)
		if err != nil {
			return nil, fmt.Errorf("--blob-store: %w", err)
		}
		opts.AccessKey, opts.SecretKey = firstEnv("AWS_ACCESS_KEY_ID", "FERRY_S3_ACCESS_KEY"), firstEnv("AWS_SECRET_ACCESS_KEY", "FERRY_S3_SECRET_KEY")
		if opts.AccessKey == "" || opts.SecretKey == "" {
			return nil, fmt.Errorf("--blob-store %s: no S3 credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or FERRY_S3_ACCESS_KEY and FERRY_S3_SECRET_KEY)", s.blobStore)
		}
		return s3.New(ctx, opts)
	default:
		return nil, fmt.Errorf("--blob-store %q: use s3://<bucket>?endpoint=<host:port>, or leave it empty for <data-dir>/blobs", s.blobStore)
	}
}

// open opens both stores, blobs first; the caller closes the metadata
// store.
func (s *storeFlags) open(ctx context.Context) (store.BlobStore, *sqlstore.Store, error) {
	blobs, err := s.openBlobs(ctx)
	if err != nil {
		return nil, nil, err
	}
	meta, err := s.openMetadata(ctx)
	if err != nil {
		return nil, nil, err
	}
	return blobs, meta, nil
}

// openMetadata opens --metadata: PostgreSQL for postgres:// URLs, else
// SQLite in the data dir.
func (s *storeFlags) openMetadata(ctx context.Context) (*sqlstore.Store, error) {
	switch {
	case s.metadata == "":
		if err := secureDir(s.dataDir); err != nil {
			return nil, err
		}
		return sqlstore.OpenSQLite(ctx, filepath.Join(s.dataDir, "metadata.db"))
	case strings.HasPrefix(s.metadata, "postgres://"), strings.HasPrefix(s.metadata, "postgresql://"):
		dsn, err := metadataURL(s.metadata, s.metadataPWFile)
		if err != nil {
			return nil, err
		}
		return sqlstore.OpenPostgres(ctx, dsn)
	default:
		return nil, fmt.Errorf("--metadata %s: use postgres://user:pass@host:port/db?sslmode=..., or leave it empty for SQLite in <data-dir>/metadata.db", redactURL(s.metadata))
	}
}

// shared reports whether the metadata store is shared by several
// replicas.
func (s *storeFlags) shared() bool { return s.metadata != "" }

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}
