// Package install lays out ferry serve as a systemd service on a Linux host,
// as mirror-registry's install does: the configuration file, an environment
// file for credentials and a hardened unit. It only computes the files; the
// command writes them and runs useradd and systemctl.
package install

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Service is the name of the systemd unit.
const Service = "ferry"

// Layout is where an install puts things. Every path is under Root, and
// the files refer to each other by these same paths, so an install under a
// scratch root is complete and runnable as it stands.
type Layout struct {
	Root    string
	Binary  string // the ferry executable
	Dir     string // configuration directory
	Config  string // serve's YAML configuration
	EnvFile string // credentials, read by systemd as root (0600)
	Unit    string // the systemd unit
	DataDir string
}

// NewLayout places an install under root ("/" for the host itself) with
// the data dir dataDir (absolute, before the root is prefixed).
func NewLayout(root, dataDir string) (Layout, error) {
	if root == "" {
		root = "/"
	}
	if !filepath.IsAbs(root) {
		return Layout{}, fmt.Errorf("--root %q: must be an absolute path", root)
	}
	if !filepath.IsAbs(dataDir) {
		return Layout{}, fmt.Errorf("--data-dir %q: must be an absolute path (the service does not run in your current directory)", dataDir)
	}
	at := func(p string) string { return filepath.Join(root, p) }
	return Layout{
		Root:    filepath.Clean(root),
		Binary:  at("/usr/local/bin/ferry"),
		Dir:     at("/etc/ferry"),
		Config:  at("/etc/ferry/ferry.yaml"),
		EnvFile: at("/etc/ferry/ferry.env"),
		Unit:    at("/etc/systemd/system/" + Service + ".service"),
		DataDir: at(dataDir),
	}, nil
}

// Options are the settings of the installed service.
type Options struct {
	Listen        string
	Hostnames     []string
	Metadata      string // postgres://user[:pass]@host/db, or "" for SQLite in the data dir
	BlobStore     string // s3://..., or "" for the data dir
	AnonymousPull bool
	User          string // system user the service runs as
	// Secrets go to the environment file only: FERRY_SECRETS_KEY,
	// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and, when the metadata URL
	// has a password, FERRY_METADATA.
	Env map[string]string
}

// File is one file an install writes.
type File struct {
	Path    string
	Mode    uint32
	Content string
	// Secret files are shown redacted by --dry-run.
	Secret bool
}

// Validate checks the options before anything is written.
func (o *Options) Validate() error {
	if _, port, err := net.SplitHostPort(o.Listen); err != nil {
		return fmt.Errorf("--listen %q: want host:port or :port (e.g. :8443): %w", o.Listen, err)
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("--listen %q: the port must be a number from 1 to 65535", o.Listen)
	}
	if o.User == "" || strings.ContainsAny(o.User, " :/\n") {
		return fmt.Errorf("--user %q: want a plain user name such as ferry", o.User)
	}
	if o.Metadata != "" {
		u, err := url.Parse(o.Metadata)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
			return fmt.Errorf("--metadata: want postgres://user@host:5432/db?sslmode=verify-full")
		}
	}
	if o.BlobStore != "" && !strings.HasPrefix(o.BlobStore, "s3://") {
		return fmt.Errorf("--blob-store %q: want s3://<bucket>?endpoint=<host:port>, or leave it empty to keep blobs in the data dir", o.BlobStore)
	}
	if o.BlobStore != "" && (o.Env["AWS_ACCESS_KEY_ID"] == "" || o.Env["AWS_SECRET_ACCESS_KEY"] == "") {
		return errors.New("--blob-store needs S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment of ferry install (they go to the 0600 environment file, never into the unit or a command line)")
	}
	for k, v := range o.Env {
		if strings.ContainsAny(v, "\r\n") {
			return fmt.Errorf("%s: a value on more than one line cannot go into a systemd environment file", k)
		}
	}
	return nil
}

// PrivilegedPort reports whether the listen port is below 1024, which
// needs CAP_NET_BIND_SERVICE.
func (o *Options) PrivilegedPort() bool {
	_, port, _ := net.SplitHostPort(o.Listen)
	n, _ := strconv.Atoi(port)
	return n > 0 && n < 1024
}

// Files returns what an install writes besides the binary: the
// configuration, the environment file and the unit.
func Files(l Layout, o Options) []File {
	return []File{
		{Path: l.Config, Mode: 0o644, Content: Config(l, o)},
		{Path: l.EnvFile, Mode: 0o600, Content: EnvFile(o), Secret: true},
		{Path: l.Unit, Mode: 0o644, Content: Unit(l, o)},
	}
}

// Config is serve's YAML configuration: the keys are serve's flag names.
// It holds no secret; those are in the environment file.
func Config(l Layout, o Options) string {
	m := map[string]any{
		"listen":   o.Listen,
		"data-dir": l.DataDir,
	}
	if len(o.Hostnames) > 0 {
		m["hostname"] = o.Hostnames
	}
	meta := metadataInEnv(o)
	if o.Metadata != "" && !meta {
		m["metadata"] = o.Metadata
	}
	if o.BlobStore != "" {
		m["blob-store"] = o.BlobStore
	}
	if o.AnonymousPull {
		m["anonymous-pull"] = true
	}
	b, _ := yaml.Marshal(m) // a map of strings and bools always marshals
	var sb strings.Builder
	sb.WriteString("# ferry serve configuration, written by ferry install. Keys are the\n")
	sb.WriteString("# flag names of `ferry serve`; credentials are in " + l.EnvFile + ".\n")
	if meta {
		sb.WriteString("# metadata is set there too (FERRY_METADATA), as its URL holds a password.\n")
	}
	sb.Write(b)
	return sb.String()
}

func metadataInEnv(o Options) bool {
	if o.Metadata == "" {
		return false
	}
	u, err := url.Parse(o.Metadata)
	if err != nil || u.User == nil {
		return false
	}
	_, has := u.User.Password()
	return has
}

// EnvFile is the systemd EnvironmentFile with the secrets, one
// NAME=value per line; systemd reads it as root before dropping to the
// service user, so it stays 0600 root.
func EnvFile(o Options) string {
	env := map[string]string{}
	for k, v := range o.Env {
		if v != "" {
			env[k] = v
		}
	}
	if metadataInEnv(o) {
		env["FERRY_METADATA"] = o.Metadata
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var sb strings.Builder
	sb.WriteString("# Secrets of the ferry service, written by ferry install; keep it 0600 root.\n")
	sb.WriteString("# Replicas sharing one PostgreSQL need the same FERRY_SECRETS_KEY.\n")
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s=%s\n", k, quoteEnv(env[k]))
	}
	return sb.String()
}

// quoteEnv quotes a value for systemd's EnvironmentFile, which reads
// double quotes as a shell does: \, \", \$ and \` are escapes.
func quoteEnv(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`")
	return `"` + r.Replace(v) + `"`
}

// Unit is the hardened systemd unit. The service may write only to its
// data dir, gets no capability unless it binds a port below 1024, and is
// restarted when it fails.
func Unit(l Layout, o Options) string {
	caps := ""
	if o.PrivilegedPort() {
		caps = "CAP_NET_BIND_SERVICE"
	}
	var sb strings.Builder
	w := func(s string) { sb.WriteString(s + "\n") }
	w("# Written by ferry install; ferry uninstall removes it.")
	w("[Unit]")
	w("Description=Ferry mirror registry")
	w("Documentation=https://github.com/ferry-mirror/ferry")
	w("Wants=network-online.target")
	w("After=network-online.target")
	w("")
	w("[Service]")
	w("Type=simple")
	w("User=" + o.User)
	w("Group=" + o.User)
	w("EnvironmentFile=" + l.EnvFile)
	w("ExecStart=" + l.Binary + " serve --config " + l.Config)
	w("Restart=on-failure")
	w("RestartSec=5s")
	// serve finishes in-flight requests for up to 60 s on SIGTERM.
	w("TimeoutStopSec=75s")
	w("LimitNOFILE=65536")
	w("UMask=0077")
	w("NoNewPrivileges=yes")
	w("ProtectSystem=strict")
	w("ReadWritePaths=" + l.DataDir)
	w("ProtectHome=yes")
	w("PrivateTmp=yes")
	w("PrivateDevices=yes")
	w("ProtectKernelTunables=yes")
	w("ProtectKernelModules=yes")
	w("ProtectKernelLogs=yes")
	w("ProtectControlGroups=yes")
	w("ProtectClock=yes")
	w("ProtectHostname=yes")
	w("RestrictNamespaces=yes")
	w("RestrictRealtime=yes")
	w("RestrictSUIDSGID=yes")
	w("LockPersonality=yes")
	w("MemoryDenyWriteExecute=yes")
	w("RemoveIPC=yes")
	w("PrivateMounts=yes")
	w("ProtectProc=invisible")
	w("ProcSubset=pid")
	w("RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX")
	w("SystemCallArchitectures=native")
	// A system call outside the set fails with EPERM rather than killing
	// the service: Go's runtime tolerates a refused call it can do without.
	w("SystemCallFilter=@system-service")
	w("SystemCallErrorNumber=EPERM")
	w("CapabilityBoundingSet=" + caps)
	w("AmbientCapabilities=" + caps)
	w("")
	w("[Install]")
	w("WantedBy=multi-user.target")
	return sb.String()
}

// ExecStart returns the command line of the unit's ExecStart.
func ExecStart(unit string) ([]string, error) {
	for _, line := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			return strings.Fields(v), nil
		}
	}
	return nil, errors.New("the unit has no ExecStart")
}

// ParseEnvFile reads an environment file written by EnvFile.
func ParseEnvFile(text string) (map[string]string, error) {
	env := map[string]string{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: want NAME=value", i+1)
		}
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = strings.NewReplacer(`\\`, `\`, `\"`, `"`, `\$`, "$", "\\`", "`").Replace(v[1 : len(v)-1])
		}
		env[k] = v
	}
	return env, nil
}
