package deploy

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/ferry-mirror/ferry/internal/install"
	"github.com/ferry-mirror/ferry/internal/testenv"
)

func secretsKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// The dry run shows the whole service as it would be written, hardened,
// with the credentials kept out of the unit, the configuration and the
// output, and writes nothing.
func TestInstallDryRun(t *testing.T) {
	root := t.TempDir()
	pgPassword := "pg-Pa55word-from-file"
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(pgPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := secretsKey(t)
	s3Secret := "s3-secret-key-never-shown"
	env := []string{"FERRY_SECRETS_KEY=" + key, "AWS_ACCESS_KEY_ID=ferry-access", "AWS_SECRET_ACCESS_KEY=" + s3Secret}
	out, code := testenv.RunFerry(t, env, "install", "--root", root, "--dry-run",
		"--listen", ":8443", "--hostname", "registry.example.com",
		"--metadata", "postgres://ferry@db.example:5432/ferry?sslmode=verify-full", "--metadata-password-file", pwFile,
		"--blob-store", "s3://ferry?endpoint=minio.example:9000&region=us-east-1")
	if code != 0 {
		t.Fatalf("ferry install --dry-run failed (exit %d):\n%s", code, out)
	}
	for _, secret := range []string{pgPassword, key, s3Secret} {
		if strings.Contains(out, secret) {
			t.Errorf("the dry run shows the secret %q", secret)
		}
	}
	for _, want := range []string{
		"write " + filepath.Join(root, "etc/systemd/system/ferry.service") + " (0644)",
		"write " + filepath.Join(root, "etc/ferry/ferry.env") + " (0600)",
		"write " + filepath.Join(root, "etc/ferry/ferry.yaml") + " (0644)",
		"copy ", filepath.Join(root, "usr/local/bin/ferry"),
		// The unit.
		"    User=ferry\n",
		"    ExecStart=" + filepath.Join(root, "usr/local/bin/ferry") + " serve --config " + filepath.Join(root, "etc/ferry/ferry.yaml") + "\n",
		"    EnvironmentFile=" + filepath.Join(root, "etc/ferry/ferry.env") + "\n",
		"    NoNewPrivileges=yes\n", "    ProtectSystem=strict\n", "    PrivateTmp=yes\n",
		"    ReadWritePaths=" + filepath.Join(root, "var/lib/ferry") + "\n",
		"    CapabilityBoundingSet=\n", "    AmbientCapabilities=\n",
		"    Restart=on-failure\n",
		// The configuration: no password, the stores, the name.
		"    blob-store: s3://ferry?endpoint=minio.example:9000&region=us-east-1\n",
		"    - registry.example.com\n",
		"    listen: :8443\n",
		"    data-dir: " + filepath.Join(root, "var/lib/ferry") + "\n",
		// The secrets, named but not shown.
		"    FERRY_METADATA=<secret", "    FERRY_SECRETS_KEY=<secret", "    AWS_SECRET_ACCESS_KEY=<secret",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the dry run does not show %q", want)
		}
	}
	if strings.Contains(out, "    metadata: ") {
		t.Error("the metadata URL, whose password is in the environment file, is also in ferry.yaml")
	}
	if entries, _ := os.ReadDir(root); len(entries) > 0 {
		t.Errorf("--dry-run wrote %d entries under --root", len(entries))
	}

	// On the host itself the plan adds the system user and systemd; a dry
	// run there changes nothing either.
	out, code = testenv.RunFerry(t, nil, "install", "--dry-run", "--hostname", "registry.example.com")
	if code != 0 {
		t.Fatalf("ferry install --dry-run on the host failed:\n%s", out)
	}
	for _, want := range []string{
		"useradd --system --user-group --home-dir /var/lib/ferry --no-create-home --shell /usr/sbin/nologin ferry",
		"write /etc/systemd/system/ferry.service (0644)",
		"    ExecStart=/usr/local/bin/ferry serve --config /etc/ferry/ferry.yaml\n",
		"chown -R ferry: /var/lib/ferry",
		"systemctl enable --now ferry",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the host's dry run does not show %q", want)
		}
	}

	// A port below 1024 gets the one capability it needs, and no other.
	out, code = testenv.RunFerry(t, nil, "install", "--root", root, "--dry-run", "--listen", ":443")
	if code != 0 {
		t.Fatalf("ferry install --dry-run --listen :443 failed:\n%s", out)
	}
	for _, want := range []string{"    CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n", "    AmbientCapabilities=CAP_NET_BIND_SERVICE\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("with --listen :443 the unit lacks %q", want)
		}
	}
}

func TestInstallBadInput(t *testing.T) {
	root := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "8443"}, "--listen"},
		{[]string{"--listen", ":99999"}, "port"},
		{[]string{"--root", "relative/dir"}, "absolute"},
		{[]string{"--data-dir", "data"}, "absolute"},
		{[]string{"--blob-store", "s3://b?endpoint=minio:9000"}, "AWS_ACCESS_KEY_ID"},
		{[]string{"--blob-store", "/srv/blobs"}, "s3://"},
		{[]string{"--metadata", "mysql://db/ferry"}, "postgres://"},
		{[]string{"--user", "a b"}, "--user"},
	} {
		args := append([]string{"install", "--root", root, "--dry-run"}, tc.args...)
		out, code := testenv.RunFerry(t, []string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "FERRY_S3_ACCESS_KEY=", "FERRY_S3_SECRET_KEY="}, args...)
		if code == 0 || !strings.Contains(out, tc.want) || strings.Contains(out, "panic") {
			t.Errorf("ferry %s: exit %d, want an error naming %q:\n%s", strings.Join(args, " "), code, tc.want, out)
		}
	}
}

// An install under a scratch root is started the way systemd would start
// it, with the unit's ExecStart and EnvironmentFile, and serves: the
// generated CA verifies it, the initial admin logs in and pushes. An
// upgrade keeps configuration and data, uninstall keeps the data unless
// --purge.
func TestInstallServes(t *testing.T) {
	root := t.TempDir()
	port := strconv.Itoa(testenv.FreePort(t))
	// A hardened admin shell's umask must not lock the service user out
	// of its configuration.
	old := syscall.Umask(0o077)
	out, code := testenv.RunFerry(t, nil, "install", "--root", root, "--listen", "127.0.0.1:"+port, "--hostname", "localhost")
	syscall.Umask(old)
	if code != 0 {
		t.Fatalf("ferry install failed (exit %d):\n%s", code, out)
	}
	dataDir := filepath.Join(root, "var/lib/ferry")
	caFile := filepath.Join(dataDir, "tls/ca.crt")
	pwFile := filepath.Join(dataDir, "initial-admin-password")
	for _, want := range []string{"podman login 127.0.0.1:" + port + " -u admin", "CA certificate: " + caFile, pwFile} {
		if !strings.Contains(out, want) {
			t.Errorf("ferry install does not tell %q", want)
		}
	}
	l, err := install.NewLayout(root, "/var/lib/ferry")
	if err != nil {
		t.Fatal(err)
	}
	for path, mode := range map[string]os.FileMode{
		l.Unit: 0o644, l.Config: 0o644, l.EnvFile: 0o600, l.Binary: 0o755, l.Dir: 0o755 | os.ModeDir,
		filepath.Dir(l.Binary): 0o755 | os.ModeDir, filepath.Dir(l.Unit): 0o755 | os.ModeDir,
		dataDir: 0o700 | os.ModeDir, pwFile: 0o600, filepath.Join(dataDir, "secrets.key"): 0o600,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatalf("ferry install did not make %s: %v", path, err)
		}
		if fi.Mode() != mode {
			t.Errorf("%s has mode %s, want %s", path, fi.Mode(), mode)
		}
	}
	unit := readFile(t, l.Unit)

	t.Run("systemd-analyze", func(t *testing.T) {
		sa, err := testenv.LookTool("systemd-analyze")
		if err != nil {
			t.Skip("systemd-analyze is not installed (Debian package systemd, installed by scripts/install-test-deps.sh)")
		}
		// verify exits 0 on unknown keys and bad values, so any line it
		// prints is a failure too.
		out, err := runErr(nil, sa, "verify", "--man=no", l.Unit)
		if err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("systemd-analyze verify %s: %v\n%s", l.Unit, err, out)
		}
		// systemd's own rating of the sandboxing, 0 (locked down) to 10
		// (wide open): the unit must stay at 2.0 or below.
		if out, err := runErr(nil, sa, "security", "--offline=yes", "--threshold=20", l.Unit); err != nil {
			t.Errorf("systemd-analyze security rates the unit's exposure above 2.0: %v\n%s", err, out)
		}
	})

	argv, err := install.ExecStart(unit)
	if err != nil {
		t.Fatal(err)
	}
	envFile, err := install.ParseEnvFile(readFile(t, l.EnvFile))
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=/usr/bin:/bin"}
	for k, v := range envFile {
		env = append(env, k+"="+v)
	}
	tr := caTransport(t, caFile)
	serve := func() *proc {
		p := startProc(t, env, argv...)
		if code := waitStatus(t, tr, "https://127.0.0.1:"+port+"/v2/", p); code != http.StatusUnauthorized {
			t.Fatalf("the installed service answers /v2/ without credentials with %d, want 401", code)
		}
		return p
	}
	p := serve()
	pw := strings.TrimSpace(readFile(t, pwFile))
	reg := registry{host: "127.0.0.1:" + port, tr: tr, auth: &authn.Basic{Username: "admin", Password: pw}}
	images := pushImages(t, reg, 2)
	verifyImages(t, reg, images)
	p.stop()

	// Installing over an install is refused; the upgrade path is offered.
	out, code = testenv.RunFerry(t, nil, "install", "--root", root, "--listen", "127.0.0.1:"+port)
	if code == 0 || !strings.Contains(out, "--upgrade") {
		t.Errorf("a second ferry install: exit %d, want a refusal pointing to --upgrade:\n%s", code, out)
	}

	// Upgrade: the binary is replaced, configuration and data kept.
	config, envText := readFile(t, l.Config), readFile(t, l.EnvFile)
	if err := os.WriteFile(l.Binary, []byte("#!/bin/sh\necho old ferry\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, code = testenv.RunFerry(t, nil, "install", "--root", root, "--upgrade")
	if code != 0 {
		t.Fatalf("ferry install --upgrade failed:\n%s", out)
	}
	installed, _ := os.ReadFile(l.Binary)
	built, _ := os.ReadFile(testenv.FerryBinary(t))
	if !bytes.Equal(installed, built) {
		t.Error("ferry install --upgrade did not replace the installed binary with the running one")
	}
	if readFile(t, l.Config) != config || readFile(t, l.EnvFile) != envText {
		t.Error("ferry install --upgrade changed the configuration")
	}
	serve()
	verifyImages(t, reg, images)
	p.stop()

	// Uninstall keeps data and configuration; --purge removes them.
	out, code = testenv.RunFerry(t, nil, "uninstall", "--root", root)
	if code != 0 {
		t.Fatalf("ferry uninstall failed:\n%s", out)
	}
	for _, gone := range []string{l.Unit, l.Binary} {
		if _, err := os.Stat(gone); err == nil {
			t.Errorf("ferry uninstall left %s", gone)
		}
	}
	for _, kept := range []string{pwFile, filepath.Join(dataDir, "metadata.db"), filepath.Join(dataDir, "secrets.key"), l.Config, l.EnvFile} {
		if _, err := os.Stat(kept); err != nil {
			t.Errorf("ferry uninstall removed %s: %v", kept, err)
		}
	}
	out, code = testenv.RunFerry(t, nil, "uninstall", "--root", root, "--purge")
	if code != 0 {
		t.Fatalf("ferry uninstall --purge failed:\n%s", out)
	}
	for _, gone := range []string{dataDir, l.Dir} {
		if _, err := os.Stat(gone); err == nil {
			t.Errorf("ferry uninstall --purge left %s", gone)
		}
	}
}

// With external stores the credentials reach serve through the
// environment file alone, and the service serves from them.
func TestInstallExternalStores(t *testing.T) {
	pg := testenv.StartPostgres(t)
	m := testenv.StartMinIO(t)
	db := pg.NewDatabase(t)
	// The test server trusts every local connection; the password still
	// has to travel to serve's URL without showing up in argv or the unit.
	pgPassword := "pg-password-" + strconv.Itoa(os.Getpid())
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(pgPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	port := strconv.Itoa(testenv.FreePort(t))
	out, code := testenv.RunFerry(t, append(m.Env(), "FERRY_SECRETS_KEY="), "install", "--root", root, "--listen", "127.0.0.1:"+port, "--hostname", "localhost",
		"--metadata", db, "--metadata-password-file", pwFile, "--blob-store", m.BlobStoreURL(testenv.BucketName()))
	if code != 0 {
		t.Fatalf("ferry install with external stores failed:\n%s", out)
	}
	if !strings.Contains(out, "secrets key") {
		t.Errorf("ferry install made a secrets key for the shared store but does not say the other hosts need it:\n%s", out)
	}
	l, _ := install.NewLayout(root, "/var/lib/ferry")
	unit, config := readFile(t, l.Unit), readFile(t, l.Config)
	envFile, err := install.ParseEnvFile(readFile(t, l.EnvFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{pgPassword, m.SecretKey, envFile["FERRY_SECRETS_KEY"]} {
		if secret == "" || strings.Contains(unit, secret) || strings.Contains(config, secret) || strings.Contains(out, secret) {
			t.Errorf("secret %q is missing from the environment file or shows in the unit, ferry.yaml or the output", secret)
		}
	}
	if !strings.Contains(envFile["FERRY_METADATA"], pgPassword) || envFile["AWS_SECRET_ACCESS_KEY"] != m.SecretKey {
		t.Errorf("the environment file lacks the store credentials: %v", keys(envFile))
	}
	argv, err := install.ExecStart(unit)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=/usr/bin:/bin"}
	for k, v := range envFile {
		env = append(env, k+"="+v)
	}
	p := startProc(t, env, argv...)
	tr := caTransport(t, filepath.Join(root, "var/lib/ferry/tls/ca.crt"))
	if code := waitStatus(t, tr, "https://127.0.0.1:"+port+"/v2/", p); code != http.StatusUnauthorized {
		t.Fatalf("/v2/ answers %d, want 401", code)
	}
	for _, a := range argv {
		if strings.Contains(a, pgPassword) || strings.Contains(a, m.SecretKey) {
			t.Errorf("a secret is in the service's command line: %q", a)
		}
	}
	pw := strings.TrimSpace(readFile(t, filepath.Join(root, "var/lib/ferry/initial-admin-password")))
	reg := registry{host: "127.0.0.1:" + port, tr: tr, auth: &authn.Basic{Username: "admin", Password: pw}}
	verifyImages(t, reg, pushImages(t, reg, 1))
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// ferry install on the host itself, in a container whose root is a
// throwaway overlay of this machine's root: the system user is created,
// the data dir handed to it, and the unit's ExecStart, run as the unit's
// User with its EnvironmentFile, serves. systemd does not run in the
// container, hence --no-start; everything else is the real host path.
func TestInstallOnHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the host install creates a user and writes /etc: it runs as root")
	}
	_, env := newPodman(t)
	podman := testenv.Tool(t, "podman")
	bin := testenv.FerryBinary(t)
	port := strconv.Itoa(testenv.FreePort(t))
	name := "ferry-host-install-" + strconv.Itoa(os.Getpid())
	script := `set -e
/opt/ferry-new/ferry install --no-start --listen 127.0.0.1:` + port + ` --hostname localhost
stat -c 'STAT %n %U:%G %a' /var/lib/ferry /var/lib/ferry/initial-admin-password /var/lib/ferry/tls/ca.crt /etc/ferry /etc/ferry/ferry.yaml /etc/ferry/ferry.env /usr/local/bin/ferry
echo BEGIN-CA; cat /var/lib/ferry/tls/ca.crt; echo END-CA
echo "PASSWORD $(cat /var/lib/ferry/initial-admin-password)"
user=$(sed -n 's/^User=//p' /etc/systemd/system/ferry.service)
exec_start=$(sed -n 's/^ExecStart=//p' /etc/systemd/system/ferry.service)
set -a; . /etc/ferry/ferry.env; set +a
runuser -u "$user" -- $exec_start &
echo $! > /run/ferry-serve.pid
echo SERVING
wait
echo STOPPED
exec sleep 600
`
	// --rootfs takes the root in place of the image: /:O is the host's
	// root under an overlay whose writes vanish with the container.
	out, err := runErr(env, podman, "run", "-d", "--name", name, "--ulimit", "host", "--network", "host",
		"-v", filepath.Dir(bin)+":/opt/ferry-bin:ro",
		"--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"--rootfs", "/:O", "sh", "-c", "mkdir -p /opt/ferry-new && cp /opt/ferry-bin/"+filepath.Base(bin)+" /opt/ferry-new/ferry && "+script)
	if err != nil {
		if testenv.InCI() {
			t.Fatalf("podman run --rootfs /:O: %v\n%s", err, out)
		}
		t.Skipf("podman cannot run a container on an overlay of / here: %v\n%s", err, out)
	}
	t.Cleanup(func() { runErr(env, podman, "rm", "-f", "-t", "5", name) })
	var logs string
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(logs, "SERVING") {
		if time.Now().After(deadline) {
			t.Fatalf("the install in the container did not finish:\n%s", logs)
		}
		time.Sleep(300 * time.Millisecond)
		logs, _ = runErr(env, podman, "logs", name)
		if state, _ := runErr(env, podman, "inspect", "--format", "{{.State.Status}}", name); strings.TrimSpace(state) == "exited" {
			logs, _ = runErr(env, podman, "logs", name)
			t.Fatalf("the install in the container failed:\n%s", logs)
		}
	}
	t.Logf("container:\n%s", logs)
	for path, want := range map[string]string{
		"/var/lib/ferry":                        "ferry:ferry 700",
		"/var/lib/ferry/initial-admin-password": "ferry:ferry 600",
		"/var/lib/ferry/tls/ca.crt":             "ferry:ferry 600",
		"/etc/ferry":                            "root:root 755",
		"/etc/ferry/ferry.yaml":                 "root:root 644",
		"/etc/ferry/ferry.env":                  "root:root 600",
		"/usr/local/bin/ferry":                  "root:root 755",
	} {
		if !strings.Contains(logs, "STAT "+path+" "+want+"\n") {
			t.Errorf("%s: want owner and mode %s", path, want)
		}
	}
	_, rest, _ := strings.Cut(logs, "BEGIN-CA\n")
	ca, _, _ := strings.Cut(rest, "END-CA")
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	write(t, caFile, ca)
	_, rest, _ = strings.Cut(logs, "PASSWORD ")
	pw, _, _ := strings.Cut(rest, "\n")
	tr := caTransport(t, caFile)
	if code := waitStatus(t, tr, "https://127.0.0.1:"+port+"/v2/", nil); code != http.StatusUnauthorized {
		t.Fatalf("the service answers /v2/ with %d, want 401", code)
	}
	reg := registry{host: "127.0.0.1:" + port, tr: tr, auth: &authn.Basic{Username: "admin", Password: strings.TrimSpace(pw)}}
	verifyImages(t, reg, pushImages(t, reg, 2))
	// The service runs as the system user, not root. (Processes may end
	// while listed, hence the errors ignored.)
	ps := run(t, env, podman, "exec", name, "sh", "-c", `for p in /proc/[0-9]*; do echo "$(stat -c %U $p) $(tr '\0' ' ' < $p/cmdline)"; done 2>/dev/null; true`)
	serving := false
	for _, line := range strings.Split(ps, "\n") {
		if strings.Contains(line, "/usr/local/bin/ferry serve --config") && !strings.Contains(line, "runuser") {
			serving = true
			if !strings.HasPrefix(line, "ferry ") {
				t.Errorf("the service runs as another user than ferry: %s", line)
			}
		}
	}
	if !serving {
		t.Errorf("no ferry serve process in the container:\n%s", ps)
	}

	// Upgrade with a new binary, then stop the service and purge: the user
	// goes with the data.
	out = run(t, env, podman, "exec", name, "sh", "-c", "cp /opt/ferry-bin/"+filepath.Base(bin)+" /root/ferry-next && /root/ferry-next install --upgrade")
	if !strings.Contains(out, "replaced /usr/local/bin/ferry") {
		t.Errorf("ferry install --upgrade on the host:\n%s", out)
	}
	run(t, env, podman, "exec", name, "sh", "-c", "kill $(cat /run/ferry-serve.pid)")
	for deadline := time.Now().Add(time.Minute); ; {
		logs, _ = runErr(env, podman, "logs", name)
		if strings.Contains(logs, "STOPPED") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service did not stop:\n%s", logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	out = run(t, env, podman, "exec", name, "/usr/local/bin/ferry", "uninstall", "--purge")
	t.Logf("ferry uninstall --purge:\n%s", out)
	left := run(t, env, podman, "exec", name, "sh", "-c", "id ferry 2>&1; ls -d /var/lib/ferry /etc/ferry /usr/local/bin/ferry /etc/systemd/system/ferry.service 2>&1; true")
	if !strings.Contains(left, "no such user") || strings.Count(left, "No such file or directory") != 4 {
		t.Errorf("ferry uninstall --purge left things behind:\n%s", left)
	}
}
