package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferry-mirror/ferry/internal/auth"
	"github.com/ferry-mirror/ferry/internal/secretbox"
	"github.com/ferry-mirror/ferry/internal/store"
)

// initialAdminFile holds the first admin's password, as mirror-registry
// leaves it: readable by the data dir's owner only.
const initialAdminFile = "initial-admin-password"

// secretsBox loads the key that seals the secrets kept in the metadata
// store: FERRY_SECRETS_KEY (the key itself, for replicas that share a
// store), else --secrets-key-file, else, with SQLite metadata,
// <data-dir>/secrets.key, made on first use when create is set.
func (o *storeFlags) secretsBox(create bool) (*secretbox.Box, error) {
	if v := os.Getenv(secretbox.KeyEnv); v != "" {
		box, err := secretbox.Parse(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", secretbox.KeyEnv, err)
		}
		return box, nil
	}
	path := o.secretsKeyFile
	if path == "" && o.shared() {
		// A key made here would be this replica's alone; the others could
		// not open what it seals.
		return nil, fmt.Errorf("--metadata %s is shared by replicas, which need one secrets key to seal what they keep in it: generate it once (head -c 32 /dev/urandom | base64) and give every replica %s or --secrets-key-file", redactURL(o.metadata), secretbox.KeyEnv)
	}
	if path == "" {
		path = filepath.Join(o.dataDir, "secrets.key")
	}
	if create {
		if err := secureDir(filepath.Dir(path)); err != nil {
			return nil, err
		}
	}
	return secretbox.LoadFile(path, create)
}

// secureDir makes dir (the data dir) private to its owner: the directory
// 0700 and the files directly in it and in tls/ 0600. Whatever lies deeper
// (blobs, uploads) is out of other users' reach through the directory.
func secureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	for _, d := range []string{dir, filepath.Join(dir, "tls")} {
		entries, err := os.ReadDir(d)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		for _, e := range entries {
			mode := os.FileMode(0o600)
			if e.IsDir() {
				mode = 0o700
			}
			if e.Type()&os.ModeSymlink != 0 {
				continue
			}
			if err := os.Chmod(filepath.Join(d, e.Name()), mode); err != nil {
				return fmt.Errorf("data dir: %w", err)
			}
		}
	}
	return nil
}

// bootstrapAuth makes a first serve secure by default: it records in the
// store that authentication is on and, the first time, creates the admin
// user with a random password, printed once and left in
// <data-dir>/initial-admin-password. With --auth=off it refuses a store
// whose authentication was ever on, so deleting users or a new replica
// never opens a registry by accident.
func bootstrapAuth(ctx context.Context, o *serveOptions, as store.AuthStore, mode auth.Mode, logger *slog.Logger) error {
	if mode == auth.Off {
		since, err := auth.EnabledSince(ctx, as)
		if err != nil {
			return err
		}
		if since != "" {
			return fmt.Errorf("--auth=off: authentication was turned on for this metadata store (%s) and stays on, so that no restart opens the registry by accident; serve without --auth=off, or use a new data dir or database for an open registry", since)
		}
		logger.Warn("AUTHENTICATION IS OFF (--auth=off): anyone who reaches this port can push and delete")
		return nil
	}
	pw, err := auth.Bootstrap(ctx, as)
	if err != nil {
		return err
	}
	if pw == "" {
		if has, err := as.HasUsers(ctx); err == nil && !has {
			logger.Warn("no user exists, so nobody can log in: add one with `ferry user add <name>` and `ferry user grant <name> admin '*'`")
		}
		return nil
	}
	path := filepath.Join(o.dataDir, initialAdminFile)
	if err := secureDir(o.dataDir); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	abs, _ := filepath.Abs(path)
	fmt.Fprintf(os.Stderr, "ferry: created the initial admin user %q with password %s\n", auth.InitialAdmin, pw)
	fmt.Fprintf(os.Stderr, "ferry: the password is also in %s (mode 0600); change it with `ferry user passwd %s`\n", abs, auth.InitialAdmin)
	return nil
}

// caPurpose binds the sealed CA to its slot in the store.
const caPurpose = "shared TLS CA"

// sealedSharedCA is the shared CA's store access for replicas: sealed with
// the secrets key, so the CA's key cannot be read out of the database. A
// CA stored in plain text by an earlier version is kept (clusters trust
// it) and sealed in place.
func sealedSharedCA(ctx context.Context, as store.AuthStore, box *secretbox.Box) func(string) (string, error) {
	return func(candidate string) (string, error) {
		v, err := as.Secret(ctx, store.SecretSharedCA, box.Seal(caPurpose, candidate))
		if err != nil {
			return "", err
		}
		plain, err := box.Open(caPurpose, v)
		if errors.Is(err, secretbox.ErrNotSealed) {
			if _, err := as.SwapSecret(ctx, store.SecretSharedCA, v, box.Seal(caPurpose, v)); err != nil {
				return "", fmt.Errorf("seal the shared CA: %w", err)
			}
			return v, nil
		}
		return plain, err
	}
}

// metadataURL adds the password from --metadata-password-file to a
// postgres:// URL, so no credential needs to be in the process arguments.
func metadataURL(raw, passwordFile string) (string, error) {
	if passwordFile == "" {
		return raw, nil
	}
	b, err := os.ReadFile(passwordFile)
	if err != nil {
		return "", fmt.Errorf("--metadata-password-file: %w", err)
	}
	u, err := url.Parse(raw)
	if err != nil || u.User == nil || u.User.Username() == "" {
		return "", errors.New("--metadata-password-file needs a user name in --metadata: postgres://USER@host:5432/db")
	}
	u.User = url.UserPassword(u.User.Username(), strings.TrimRight(string(b), "\r\n"))
	return u.String(), nil
}

// redactURL hides a password in a store URL shown in a message.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
