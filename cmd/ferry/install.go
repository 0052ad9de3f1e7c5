package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/ferry-mirror/ferry/internal/auth"
	"github.com/ferry-mirror/ferry/internal/certs"
	"github.com/ferry-mirror/ferry/internal/install"
	"github.com/ferry-mirror/ferry/internal/secretbox"
)

type installOptions struct {
	root           string
	listen         string
	hostnames      []string
	dataDir        string
	metadata       string
	metadataPWFile string
	blobStore      string
	anonymousPull  bool
	user           string
	dryRun         bool
	noStart        bool
	upgrade        bool
	purge          bool
}

func newInstallCmd() *cobra.Command {
	var o installOptions
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install ferry serve as a hardened systemd service on this Linux host",
		Long: `Install the registry as the systemd service ferry, in one command: a
system user ferry, the data dir /var/lib/ferry, the configuration
/etc/ferry/ferry.yaml (serve's flags as keys), the credentials in
/etc/ferry/ferry.env (0600 root, never in the unit or a command line), a
hardened unit /etc/systemd/system/ferry.service, this binary as
/usr/local/bin/ferry; then the generated CA and the initial admin user, and
the service started. It prints how to log in and where the CA is.

External stores, for several hosts sharing one registry (see ferry serve):
  --metadata postgres://ferry@db:5432/ferry?sslmode=verify-full --metadata-password-file pw.txt
  --blob-store 's3://ferry?endpoint=minio:9000&region=us-east-1'
S3 credentials are read from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,
the secrets key from FERRY_SECRETS_KEY (generated when a shared PostgreSQL
is given without one: copy /etc/ferry/ferry.env to the other hosts).

Upgrade: run the new binary with  ferry install --upgrade  : it replaces
/usr/local/bin/ferry and restarts the service, which migrates its stores on
start. --dry-run prints what would be written and run; --root DIR installs
under DIR instead of / (every path, also inside the files, is under DIR;
no user is created and systemd is not touched), for trials and tests.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.upgrade {
				return runUpgrade(cmd.OutOrStdout(), &o)
			}
			return runInstall(cmd.Context(), cmd.OutOrStdout(), &o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.root, "root", "/", "install under this directory instead of / (no user is created, systemd is not touched)")
	f.StringVar(&o.listen, "listen", ":8443", "address the service listens on (a port below 1024 gives it CAP_NET_BIND_SERVICE, and nothing else)")
	f.StringSliceVar(&o.hostnames, "hostname", nil, "name clients use for this registry, put in the generated certificate (repeatable; default: this host's name)")
	f.StringVar(&o.dataDir, "data-dir", "/var/lib/ferry", "data directory of the service")
	f.StringVar(&o.metadata, "metadata", "", "external metadata store: postgres://user@host:5432/db?sslmode=verify-full (default: SQLite in the data dir)")
	f.StringVar(&o.metadataPWFile, "metadata-password-file", "", "file holding the password of the --metadata user")
	f.StringVar(&o.blobStore, "blob-store", "", "external blob store: s3://<bucket>?endpoint=host:port&region=... (default: the data dir)")
	f.BoolVar(&o.anonymousPull, "anonymous-pull", false, "let clients without credentials pull")
	f.StringVar(&o.user, "user", "ferry", "system user the service runs as (created if missing)")
	f.BoolVar(&o.dryRun, "dry-run", false, "print what would be written and run, and change nothing")
	f.BoolVar(&o.noStart, "no-start", false, "write and initialise everything but do not enable or start the service")
	f.BoolVar(&o.upgrade, "upgrade", false, "replace the installed binary with this one and restart the service; configuration and data are kept")
	return cmd
}

func newUninstallCmd() *cobra.Command {
	var o installOptions
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove the service ferry install made; data and configuration are kept unless --purge",
		Long: `Stop and disable the ferry service and remove its unit and binary. The
data dir and /etc/ferry (with the secrets key replicas share) are kept, so
installing again serves the same images; --purge removes them and the
system user too.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runUninstall(cmd.OutOrStdout(), &o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.root, "root", "/", "the --root given to ferry install")
	f.StringVar(&o.user, "user", "ferry", "the service's system user, removed with --purge")
	f.BoolVar(&o.purge, "purge", false, "also remove the data dir, /etc/ferry and the system user")
	f.BoolVar(&o.dryRun, "dry-run", false, "print what would be removed, and change nothing")
	return cmd
}

func runInstall(ctx context.Context, out io.Writer, o *installOptions) error {
	l, err := install.NewLayout(o.root, o.dataDir)
	if err != nil {
		return err
	}
	host := l.Root == "/"
	if len(o.hostnames) == 0 {
		if h, err := os.Hostname(); err == nil {
			o.hostnames = []string{h}
		}
	}
	meta := o.metadata
	if o.metadataPWFile != "" {
		if meta, err = metadataURL(o.metadata, o.metadataPWFile); err != nil {
			return err
		}
	} else if u, err := url.Parse(meta); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			fmt.Fprintln(os.Stderr, "ferry install: warning: the password in --metadata was visible in the process list; next time use --metadata-password-file")
		}
	}
	opts := install.Options{
		Listen: o.listen, Hostnames: o.hostnames, Metadata: meta, BlobStore: o.blobStore,
		AnonymousPull: o.anonymousPull, User: o.user,
		Env: map[string]string{
			secretbox.KeyEnv:        os.Getenv(secretbox.KeyEnv),
			"AWS_ACCESS_KEY_ID":     firstEnv("AWS_ACCESS_KEY_ID", "FERRY_S3_ACCESS_KEY"),
			"AWS_SECRET_ACCESS_KEY": firstEnv("AWS_SECRET_ACCESS_KEY", "FERRY_S3_SECRET_KEY"),
		},
	}
	generatedKey := false
	if meta != "" && opts.Env[secretbox.KeyEnv] == "" {
		// Replicas on one PostgreSQL must share the key; this host's
		// environment file is where the others copy it from.
		key, err := secretbox.Generate()
		if err != nil {
			return err
		}
		opts.Env[secretbox.KeyEnv] = key
		generatedKey = true
	}
	if err := opts.Validate(); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this binary to install it: %w", err)
	}
	files := install.Files(l, opts)
	if o.dryRun {
		printPlan(out, l, opts, files, exe, host && !o.noStart)
		return nil
	}
	if host {
		if os.Geteuid() != 0 {
			return errors.New("ferry install writes /etc and creates a system user: run it as root (sudo), or try it unprivileged under a scratch directory with --root DIR")
		}
		if _, err := os.Stat("/run/systemd/system"); err != nil && !o.noStart {
			return errors.New("systemd is not running on this host: ferry install sets up a systemd service; use --no-start to only write the files, or run the container image (deploy/podman/ferry.container)")
		}
	}
	if _, err := os.Stat(l.Unit); err == nil {
		return fmt.Errorf("ferry is already installed (%s): upgrade with the new binary's `ferry install --upgrade`, or run `ferry uninstall` first", l.Unit)
	}
	if _, err := os.Stat(l.Config); err == nil {
		return fmt.Errorf("%s exists from an earlier install (ferry uninstall keeps it): move it away to install afresh, or keep it with --upgrade", l.Config)
	}
	uid, gid := -1, -1
	if host {
		if uid, gid, err = ensureUser(out, o.user, l.DataDir); err != nil {
			return err
		}
	}
	if err := copyBinary(exe, l.Binary); err != nil {
		return err
	}
	for _, f := range files {
		if err := writeInstallFile(f); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "wrote %s, %s, %s and %s\n", l.Binary, l.Config, l.EnvFile, l.Unit)
	// The data dir itself is made private by serve; its parents, when an
	// install under --root makes them, stay traversable like /var/lib.
	if err := mkdirPublic(filepath.Dir(l.DataDir)); err != nil {
		return err
	}
	ca, err := initServe(ctx, &serveOptions{
		listen: o.listen, hostnames: o.hostnames, authMode: string(auth.On),
		storeFlags: storeFlags{dataDir: l.DataDir, metadata: meta, blobStore: o.blobStore},
	}, opts.Env)
	if err != nil {
		return fmt.Errorf("initialise %s: %w", l.DataDir, err)
	}
	if uid >= 0 {
		if err := chownTree(l.DataDir, uid, gid); err != nil {
			return err
		}
	}
	if host && !o.noStart {
		for _, args := range [][]string{{"daemon-reload"}, {"enable", "--now", install.Service}} {
			if err := systemctl(args...); err != nil {
				return err
			}
		}
	}
	printDone(out, l, opts, ca, host && !o.noStart, generatedKey)
	return nil
}

// initServe does what the first start of serve does before it listens:
// migrate the stores, make the secrets key, the initial admin and the
// generated CA. It returns the CA's path ("" with a shared metadata store,
// whose CA the service fetches from the store on start).
func initServe(ctx context.Context, o *serveOptions, env map[string]string) (string, error) {
	for k, v := range env {
		if v != "" {
			if err := os.Setenv(k, v); err != nil {
				return "", err
			}
		}
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, meta, err := o.open(ctx)
	if err != nil {
		return "", err
	}
	defer meta.Close()
	box, err := o.secretsBox(true)
	if err != nil {
		return "", err
	}
	if _, err := newAuthorizer(ctx, o, meta, box, nil, logger); err != nil {
		return "", err
	}
	dir := filepath.Join(o.dataDir, "tls")
	var m *certs.Manager
	if o.shared() {
		m, err = certs.NewSharedManager(dir, o.hostnames, logger, sealedSharedCA(ctx, meta, box))
	} else {
		m, err = certs.NewManager(dir, o.hostnames, logger)
	}
	if err != nil {
		return "", fmt.Errorf("generated TLS: %w", err)
	}
	return m.CAFile(), secureDir(o.dataDir)
}

func ensureUser(out io.Writer, name, home string) (uid, gid int, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		args := []string{"--system", "--user-group", "--home-dir", home, "--no-create-home", "--shell", "/usr/sbin/nologin", name}
		if b, err := exec.Command("useradd", args...).CombinedOutput(); err != nil {
			return 0, 0, fmt.Errorf("useradd %s: %v: %s", name, err, strings.TrimSpace(string(b)))
		}
		fmt.Fprintf(out, "created the system user %s\n", name)
		if u, err = user.Lookup(name); err != nil {
			return 0, 0, err
		}
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid, nil
}

// copyBinary installs exe at dst by renaming a full copy over it, so a
// running service keeps its old binary until restarted.
func copyBinary(exe, dst string) error {
	if err := mkdirPublic(filepath.Dir(dst)); err != nil {
		return err
	}
	src, err := os.Open(exe)
	if err != nil {
		return fmt.Errorf("install binary: %w", err)
	}
	defer src.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".ferry-new-")
	if err != nil {
		return fmt.Errorf("install binary: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, src); err != nil {
		tmp.Close()
		return fmt.Errorf("install binary: %w", err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("install binary: %w", err)
	}
	return nil
}

// mkdirPublic makes dir and its missing parents 0755 whatever the
// caller's umask: the service user must reach /etc/ferry and its binary
// even when root's umask is 077.
func mkdirPublic(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := mkdirPublic(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return os.Chmod(dir, 0o755)
}

func writeInstallFile(f install.File) error {
	if err := mkdirPublic(filepath.Dir(f.Path)); err != nil {
		return err
	}
	// Chmod after writing: the mode must not depend on the caller's umask.
	if err := os.WriteFile(f.Path, []byte(f.Content), os.FileMode(f.Mode)); err != nil {
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	return os.Chmod(f.Path, os.FileMode(f.Mode))
}

func chownTree(dir string, uid, gid int) error {
	return filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

func systemctl(args ...string) error {
	if b, err := exec.Command("systemctl", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("systemctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(b)))
	}
	return nil
}

func printPlan(out io.Writer, l install.Layout, o install.Options, files []install.File, exe string, start bool) {
	fmt.Fprintln(out, "ferry install --dry-run: nothing is changed. It would:")
	if l.Root == "/" {
		fmt.Fprintf(out, "- create the system user %s if missing: useradd --system --user-group --home-dir %s --no-create-home --shell /usr/sbin/nologin %s\n", o.User, l.DataDir, o.User)
	}
	fmt.Fprintf(out, "- copy %s to %s (0755)\n", exe, l.Binary)
	for _, f := range files {
		fmt.Fprintf(out, "- write %s (%04o):\n", f.Path, f.Mode)
		content := f.Content
		if f.Secret {
			content = redactEnv(content)
		}
		for _, line := range strings.Split(strings.TrimRight(content, "\n"), "\n") {
			fmt.Fprintln(out, "    "+line)
		}
	}
	fmt.Fprintf(out, "- initialise %s (0700): the stores, the secrets key, the initial admin user and the generated CA\n", l.DataDir)
	if l.Root == "/" {
		fmt.Fprintf(out, "- chown -R %s: %s\n", o.User, l.DataDir)
	}
	if start {
		fmt.Fprintf(out, "- systemctl daemon-reload; systemctl enable --now %s\n", install.Service)
	}
}

// redactEnv hides the values of an environment file.
func redactEnv(text string) string {
	var sb strings.Builder
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			fmt.Fprintf(&sb, "%s=<secret, %d characters>\n", k, len(strings.Trim(v, `"`)))
			continue
		}
		sb.WriteString(line + "\n")
	}
	return sb.String()
}

func printDone(out io.Writer, l install.Layout, o install.Options, ca string, started, generatedKey bool) {
	host := "localhost"
	if len(o.Hostnames) > 0 {
		host = o.Hostnames[0]
	}
	if h, port, err := net.SplitHostPort(o.Listen); err == nil {
		if h != "" && h != "0.0.0.0" && h != "::" {
			host = h
		}
		host = net.JoinHostPort(host, port)
	}
	if started {
		fmt.Fprintf(out, "\nferry is installed and running: systemctl status %s, journalctl -u %s\n", install.Service, install.Service)
	} else {
		fmt.Fprintf(out, "\nferry is installed; start it with: %s serve --config %s (as user %s, with the variables of %s)\n", l.Binary, l.Config, o.User, l.EnvFile)
	}
	pw := filepath.Join(l.DataDir, initialAdminFile)
	if _, err := os.Stat(pw); err == nil {
		fmt.Fprintf(out, "Log in:  podman login %s -u %s   (password: %s, printed once above)\n", host, auth.InitialAdmin, pw)
	}
	fmt.Fprintf(out, "CA certificate: %s\n", ca)
	fmt.Fprintf(out, "  trust it on clients: cp %s /etc/pki/ca-trust/source/anchors/ferry.crt && update-ca-trust\n", ca)
	fmt.Fprintln(out, "  and on clusters: add it to install-config.yaml additionalTrustBundle")
	if generatedKey {
		fmt.Fprintf(out, "A new secrets key is in %s: every other host sharing this PostgreSQL needs it (copy the file, 0600 root).\n", l.EnvFile)
	}
}

func runUpgrade(out io.Writer, o *installOptions) error {
	l, err := install.NewLayout(o.root, "/var/lib/ferry")
	if err != nil {
		return err
	}
	if _, err := os.Stat(l.Unit); err != nil {
		return fmt.Errorf("ferry is not installed here (no %s): install it first with `ferry install`", l.Unit)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if same, _ := sameFile(exe, l.Binary); same {
		return fmt.Errorf("%s is the installed binary itself: run the new binary's `ferry install --upgrade` (e.g. ./ferry install --upgrade)", exe)
	}
	host := l.Root == "/"
	if o.dryRun {
		fmt.Fprintf(out, "ferry install --upgrade --dry-run: would copy %s to %s", exe, l.Binary)
		if host {
			fmt.Fprintf(out, " and run systemctl restart %s", install.Service)
		}
		fmt.Fprintln(out)
		return nil
	}
	if host && os.Geteuid() != 0 {
		return errors.New("ferry install --upgrade replaces /usr/local/bin/ferry: run it as root (sudo)")
	}
	if err := copyBinary(exe, l.Binary); err != nil {
		return err
	}
	fmt.Fprintf(out, "replaced %s with ferry %s; configuration and data kept\n", l.Binary, version)
	if _, err := os.Stat("/run/systemd/system"); host && err == nil {
		if err := systemctl("try-restart", install.Service); err != nil {
			return err
		}
		fmt.Fprintf(out, "restarted %s: it migrates its stores on start (journalctl -u %s)\n", install.Service, install.Service)
		return nil
	}
	fmt.Fprintln(out, "restart the service to run the new version: it migrates its stores on start")
	return nil
}

func sameFile(a, b string) (bool, error) {
	fa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(fa, fb), nil
}

func runUninstall(out io.Writer, o *installOptions) error {
	l, err := install.NewLayout(o.root, "/var/lib/ferry")
	if err != nil {
		return err
	}
	host := l.Root == "/"
	// The data dir is wherever the installed configuration says.
	if b, err := os.ReadFile(l.Config); err == nil {
		var c struct {
			DataDir string `json:"data-dir"`
		}
		if yaml.Unmarshal(b, &c) == nil && c.DataDir != "" {
			l.DataDir = c.DataDir
		}
	}
	remove := []string{l.Unit, l.Binary}
	if o.purge {
		remove = append(remove, l.Dir, l.DataDir)
	}
	if o.dryRun {
		fmt.Fprintln(out, "ferry uninstall --dry-run: nothing is changed. It would:")
		if host {
			fmt.Fprintf(out, "- systemctl disable --now %s\n", install.Service)
		}
		for _, p := range remove {
			fmt.Fprintf(out, "- remove %s\n", p)
		}
		if o.purge && host {
			fmt.Fprintf(out, "- userdel %s\n", o.user)
		}
		if !o.purge {
			fmt.Fprintf(out, "- keep %s and %s (--purge removes them)\n", l.DataDir, l.Dir)
		}
		return nil
	}
	if host {
		if os.Geteuid() != 0 {
			return errors.New("ferry uninstall changes /etc and systemd: run it as root (sudo)")
		}
		if _, err := os.Stat("/run/systemd/system"); err == nil {
			if _, err := os.Stat(l.Unit); err == nil {
				if err := systemctl("disable", "--now", install.Service); err != nil {
					return err
				}
			}
		}
	}
	for _, p := range remove {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("remove %s: %w", p, err)
		}
		fmt.Fprintf(out, "removed %s\n", p)
	}
	if host {
		if _, err := os.Stat("/run/systemd/system"); err == nil {
			if err := systemctl("daemon-reload"); err != nil {
				return err
			}
		}
		if o.purge {
			if _, err := user.Lookup(o.user); err == nil {
				if b, err := exec.Command("userdel", o.user).CombinedOutput(); err != nil {
					return fmt.Errorf("userdel %s: %v: %s", o.user, err, strings.TrimSpace(string(b)))
				}
			}
		}
	}
	if !o.purge {
		fmt.Fprintf(out, "kept the data in %s and the configuration and secrets in %s (ferry uninstall --purge removes them)\n", l.DataDir, l.Dir)
	}
	return nil
}
