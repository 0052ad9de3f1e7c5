// Package storm_test is the pull-storm benchmark (issue #17): an upgrade
// makes every node of a cluster pull the same release at once. N clients
// (one load generator, this process) each log in with one shared pull
// secret and pull a whole release, every manifest then every blob, over
// TLS from: ferry serve (auth on), CNCF distribution v3 (htpasswd), nginx
// serving the same files (the ceiling), and three ferry replicas on
// PostgreSQL and MinIO, without and with --blob-redirect.
//
// Run it with bench/storm.sh (or make bench); sizes from the environment:
//
//	STORM_CLIENTS   (200)  concurrent clients
//	STORM_IMAGES    (20)   images of the release
//	STORM_LAYER_KIB (256)  size of each of an image's two layers
//	STORM_TARGETS   (ferry,distribution,nginx,ha,ha-redirect)
//	STORM_FERRY_PROFILE      a file for the CPU profile of the single ferry
package storm_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

const (
	repo         = "ocp/release"
	manifestType = "application/vnd.oci.image.manifest.v1+json"
	pullUser     = "pull-secret"
	pullPass     = "a-shared-pull-secret-0123456789"
)

type blob struct {
	digest string
	data   []byte
}

type image struct {
	digest   string
	manifest []byte
	blobs    []blob // config, then layers
}

// release makes n images of two random layers of size bytes each.
func release(n, size int) []image {
	rng := mrand.New(mrand.NewPCG(17, 17))
	rnd := func(k int) []byte {
		p := make([]byte, k)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		return p
	}
	mk := func(p []byte) blob { return blob{digest: fmt.Sprintf("sha256:%x", sha256.Sum256(p)), data: p} }
	var out []image
	for i := range n {
		l1, l2 := mk(rnd(size)), mk(rnd(size))
		cfg := mk(fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","config":{"Labels":{"io.openshift.release.operator":"true","component":"c%d"}},"rootfs":{"type":"layers","diff_ids":[%q,%q]}}`,
			i, l1.digest, l2.digest))
		m := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[`+
			`{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d},{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}]}`,
			manifestType, cfg.digest, len(cfg.data), l1.digest, size, l2.digest, size)
		out = append(out, image{digest: fmt.Sprintf("sha256:%x", sha256.Sum256(m)), manifest: m, blobs: []blob{cfg, l1, l2}})
	}
	return out
}

// pki is a CA and a certificate for 127.0.0.1 signed by it, shared by
// every server so that TLS costs the same everywhere.
type pki struct {
	pool              *x509.CertPool
	certFile, keyFile string
}

func newPKI(b *testing.B, dir string) pki {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "storm bench CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		b.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		b.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	p := pki{pool: x509.NewCertPool(), certFile: filepath.Join(dir, "server.crt"), keyFile: filepath.Join(dir, "server.key")}
	p.pool.AddCert(ca)
	if err := os.WriteFile(p.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(p.keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

// start runs a server process in its own process group, stopped when the
// benchmark ends, and waits until https://host/ready answers.
func start(b *testing.B, p pki, ready string, env []string, bin string, args ...string) *testenv.LogBuffer {
	log := &testenv.LogBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start %s: %v", bin, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	b.Cleanup(stop)
	hc := &http.Client{Transport: newTransport(p.pool), Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := hc.Get(ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return log
			}
		}
		select {
		case err := <-done:
			b.Fatalf("%s %s exited: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, log.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not answer %s: %v\n%s", filepath.Base(bin), ready, err, log.String())
		}
	}
}

func hostPort(b *testing.B) string { return "127.0.0.1:" + strconv.Itoa(testenv.FreePort(b)) }

// seed pushes the release through c.
func seed(b *testing.B, c *client, rel []image) {
	for _, im := range rel {
		for _, bl := range im.blobs {
			if err := c.pushBlob(repo, bl.digest, bl.data); err != nil {
				b.Fatal(err)
			}
		}
		if err := c.pushManifest(repo, im.digest, manifestType, im.manifest); err != nil {
			b.Fatal(err)
		}
	}
}

// ferryUsers adds the pull-secret user with pull on the release, through
// `ferry user` on the stores in args.
func ferryUsers(b *testing.B, env []string, args ...string) {
	run := func(stdin string, a ...string) {
		cmd := exec.Command(testenv.FerryBinary(b), append(append([]string{"user"}, a...), args...)...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("ferry user %s: %v\n%s", strings.Join(a, " "), err, out)
		}
	}
	run(pullPass+"\n", "add", pullUser, "--password-stdin")
	run("", "grant", pullUser, "pull", repo)
}

func adminPassword(b *testing.B, dataDir string) string {
	pw, err := os.ReadFile(filepath.Join(dataDir, "initial-admin-password"))
	if err != nil {
		b.Fatalf("the first start wrote no admin password: %v", err)
	}
	return strings.TrimSpace(string(pw))
}

// result is what one storm measured.
type result struct {
	wall        time.Duration
	bytes       int64
	manifestP50 time.Duration
	manifestP99 time.Duration
	tokens      int
	tokenP99    time.Duration
	loginWave   time.Duration // until every client had its token
	errors      int
	firstErr    error
	cpu         string
}

// storm runs clients concurrent pulls of rel from bases (round robin) and
// checks every body's size.
func storm(b *testing.B, bases []string, user, pass string, p pki, rel []image, clients int) result {
	st := &stats{}
	var (
		wg       sync.WaitGroup
		gate     = make(chan struct{})
		loggedIn sync.WaitGroup
		waveEnd  time.Time
		waveMu   sync.Mutex
	)
	loggedIn.Add(clients)
	for i := range clients {
		c := newClient(bases[i%len(bases)], user, pass, p.pool, st)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			first := true
			done := func() {
				if first {
					first = false
					waveMu.Lock()
					waveEnd = time.Now()
					waveMu.Unlock()
					loggedIn.Done()
				}
			}
			defer done()
			for _, im := range rel {
				t0 := time.Now()
				body, err := c.get("/v2/"+repo+"/manifests/"+im.digest, manifestType)
				lat := time.Since(t0)
				done()
				if err == nil && !bytes.Equal(body, im.manifest) {
					err = fmt.Errorf("manifest %s: %d bytes differ from those pushed", im.digest, len(body))
				}
				if err != nil {
					st.err(err)
					continue
				}
				st.mu.Lock()
				st.manifestLat = append(st.manifestLat, lat)
				st.bytes += int64(len(body))
				st.mu.Unlock()
			}
			for _, im := range rel {
				for _, bl := range im.blobs {
					n, err := c.fetch("/v2/"+repo+"/blobs/"+bl.digest, "", io.Discard)
					if err == nil && n != int64(len(bl.data)) {
						err = fmt.Errorf("blob %s: %d bytes, want %d", bl.digest, n, len(bl.data))
					}
					if err != nil {
						st.err(err)
						continue
					}
					st.mu.Lock()
					st.bytes += n
					st.mu.Unlock()
				}
			}
		}()
	}
	startAt := time.Now()
	close(gate)
	wg.Wait()
	res := result{wall: time.Since(startAt), bytes: st.bytes, tokens: st.tokens, errors: len(st.errs)}
	res.loginWave = waveEnd.Sub(startAt)
	if len(st.errs) > 0 {
		res.firstErr = st.errs[0]
	}
	res.manifestP50, res.manifestP99 = pct(st.manifestLat)
	_, res.tokenP99 = pct(st.tokenLat)
	return res
}

func pct(ts []time.Duration) (p50, p99 time.Duration) {
	if len(ts) == 0 {
		return 0, 0
	}
	slices.Sort(ts)
	return ts[len(ts)/2], ts[len(ts)*99/100]
}

func BenchmarkPullStorm(b *testing.B) {
	clients := testenv.EnvInt(b, "STORM_CLIENTS", 200)
	nImages := testenv.EnvInt(b, "STORM_IMAGES", 20)
	layerKiB := testenv.EnvInt(b, "STORM_LAYER_KIB", 256)
	targets := strings.Split(os.Getenv("STORM_TARGETS"), ",")
	if targets[0] == "" {
		targets = []string{"ferry", "distribution", "nginx", "ha", "ha-redirect"}
	}
	dir := b.TempDir()
	p := newPKI(b, dir)
	rel := release(nImages, layerKiB<<10)
	var relBytes int64
	for _, im := range rel {
		relBytes += int64(len(im.manifest))
		for _, bl := range im.blobs {
			relBytes += int64(len(bl.data))
		}
	}
	results := map[string]result{}
	for range b.N {
		for _, t := range targets {
			var bases []string
			user, pass := pullUser, pullPass
			switch t {
			case "ferry":
				bases = []string{startFerry(b, p, rel)}
			case "distribution":
				bases = []string{startDistribution(b, p, rel)}
			case "nginx":
				bases = []string{startNginx(b, p, rel)}
				user, pass = "", ""
			case "ha", "ha-redirect":
				bases = startHA(b, p, rel, t == "ha-redirect")
			default:
				b.Fatalf("STORM_TARGETS: unknown target %q (ferry, distribution, nginx, ha, ha-redirect)", t)
			}
			fmt.Fprintf(os.Stderr, "storm on %s: %d clients pulling %d images (%d MiB each)\n", t, clients, nImages, relBytes>>20)
			res := storm(b, bases, user, pass, p, rel, clients)
			if want := int64(clients) * relBytes; res.errors == 0 && res.bytes != want {
				b.Fatalf("%s: %d bytes pulled, want %d", t, res.bytes, want)
			}
			results[t] = res
		}
	}
	report(targets, results, clients, nImages, relBytes)
}

func startFerry(b *testing.B, p pki, rel []image) string {
	data := b.TempDir()
	host := hostPort(b)
	base := "https://" + host
	args := []string{"serve", "--listen", host, "--data-dir", data,
		"--tls-cert", p.certFile, "--tls-key", p.keyFile, "--log-level", "warn"}
	if prof := os.Getenv("STORM_FERRY_PROFILE"); prof != "" {
		args = append(args, "--cpu-profile", prof) // written when serve stops
	}
	start(b, p, base+"/v2/", nil, testenv.FerryBinary(b), args...)
	ferryUsers(b, nil, "--data-dir", data)
	seed(b, newClient(base, "admin", adminPassword(b, data), p.pool, &stats{}), rel)
	return base
}

func startDistribution(b *testing.B, p pki, rel []image) string {
	dir := b.TempDir()
	host := hostPort(b)
	// The cost `htpasswd -B` uses, which distribution's documentation
	// tells users to run.
	h, err := bcrypt.GenerateFromPassword([]byte(pullPass), 5)
	if err != nil {
		b.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(pullUser+":"+string(h)+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	conf := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
auth:
  htpasswd:
    realm: storm
    path: %s
http:
  addr: %s
  tls:
    certificate: %s
    key: %s
`, filepath.Join(dir, "data"), htpasswd, host, p.certFile, p.keyFile)
	confPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	base := "https://" + host
	start(b, p, base+"/v2/", []string{"OTEL_TRACES_EXPORTER=none"}, testenv.Tool(b, "distribution-v3"), "serve", confPath)
	seed(b, newClient(base, pullUser, pullPass, p.pool, &stats{}), rel)
	return base
}

func startNginx(b *testing.B, p pki, rel []image) string {
	// Not b.TempDir: nginx workers run as an unprivileged user when started
	// as root, and must read the files.
	dir, err := os.MkdirTemp("", "storm-nginx-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	www := filepath.Join(dir, "www")
	for _, sub := range []string{"manifests", "blobs"} {
		if err := os.MkdirAll(filepath.Join(www, "v2", repo, sub), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	for _, im := range rel {
		if err := os.WriteFile(filepath.Join(www, "v2", repo, "manifests", im.digest), im.manifest, 0o644); err != nil {
			b.Fatal(err)
		}
		for _, bl := range im.blobs {
			if err := os.WriteFile(filepath.Join(www, "v2", repo, "blobs", bl.digest), bl.data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(path, 0o755)
		}
		return nil
	})
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		b.Fatal(err)
	}
	host := hostPort(b)
	conf := fmt.Sprintf(`worker_processes auto;
error_log %[1]s/error.log warn;
pid %[1]s/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path %[1]s/tmp/body;
  proxy_temp_path %[1]s/tmp/proxy;
  fastcgi_temp_path %[1]s/tmp/fastcgi;
  uwsgi_temp_path %[1]s/tmp/uwsgi;
  scgi_temp_path %[1]s/tmp/scgi;
  default_type application/octet-stream;
  ssl_protocols TLSv1.2 TLSv1.3;
  server {
    listen %[2]s ssl http2;
    ssl_certificate %[3]s;
    ssl_certificate_key %[4]s;
    root %[5]s;
  }
}
`, dir, host, p.certFile, p.keyFile, www)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	base := "https://" + host
	start(b, p, base+"/v2/"+repo+"/manifests/"+rel[0].digest, nil, testenv.Tool(b, "nginx"), "-p", dir, "-c", confPath, "-g", "daemon off;")
	return base
}

// startHA runs three replicas on one PostgreSQL and one MinIO bucket.
func startHA(b *testing.B, p pki, rel []image, redirect bool) []string {
	pg := testenv.StartPostgres(b)
	m := testenv.StartMinIO(b)
	key := make([]byte, 32)
	rand.Read(key)
	env := append(m.Env(), "FERRY_SECRETS_KEY="+base64.StdEncoding.EncodeToString(key))
	metadata := []string{"--metadata", pg.NewDatabase(b)}
	stores := append(metadata, "--blob-store", m.BlobStoreURL(testenv.BucketName()))
	var bases []string
	var firstData string
	for i := range 3 {
		data := b.TempDir()
		host := hostPort(b)
		args := append([]string{"serve", "--listen", host, "--data-dir", data,
			"--tls-cert", p.certFile, "--tls-key", p.keyFile, "--log-level", "warn"}, stores...)
		if redirect {
			args = append(args, "--blob-redirect")
		}
		start(b, p, "https://"+host+"/v2/", env, testenv.FerryBinary(b), args...)
		if i == 0 {
			firstData = data
		}
		bases = append(bases, "https://"+host)
	}
	ferryUsers(b, env, metadata...)
	seed(b, newClient(bases[0], "admin", adminPassword(b, firstData), p.pool, &stats{}), rel)
	return bases
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func report(targets []string, results map[string]result, clients, images int, relBytes int64) {
	host, _ := os.Hostname()
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("\npull storm: %d clients x %d images (%.1f MiB each), TLS; %s, %d CPUs, load %s, %s\n",
		clients, images, float64(relBytes)/(1<<20), host, runtime.NumCPU(), strings.Join(strings.Fields(string(load))[:3], " "),
		time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("%-28s", "figure")
	for _, t := range targets {
		fmt.Printf(" %14s", t)
	}
	fmt.Println()
	row := func(name string, f func(result) string) {
		fmt.Printf("%-28s", name)
		for _, t := range targets {
			fmt.Printf(" %14s", f(results[t]))
		}
		fmt.Println()
	}
	mbs := func(r result) float64 { return float64(r.bytes) / (1 << 20) / r.wall.Seconds() }
	row("throughput (MiB/s)", func(r result) string { return fmt.Sprintf("%.1f", mbs(r)) })
	row("wall time", func(r result) string { return r.wall.Round(time.Millisecond).String() })
	row("manifest GET p50", func(r result) string { return ms(r.manifestP50) })
	row("manifest GET p99", func(r result) string { return ms(r.manifestP99) })
	row("token requests", func(r result) string { return strconv.Itoa(r.tokens) })
	row("token requests/s (wave)", func(r result) string {
		if r.tokens == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f", float64(r.tokens)/r.loginWave.Seconds())
	})
	row("login wave (all in)", func(r result) string { return ms(r.loginWave) })
	row("token p99", func(r result) string {
		if r.tokens == 0 {
			return "-"
		}
		return ms(r.tokenP99)
	})
	row("errors", func(r result) string { return strconv.Itoa(r.errors) })
	fmt.Println()
	ratio := func(a, b string, target float64) {
		ra, oka := results[a]
		rb, okb := results[b]
		if !oka || !okb {
			return
		}
		x := mbs(ra) / mbs(rb)
		if target == 0 {
			fmt.Printf("throughput %s / %s: %.2fx  (no target)\n", a, b, x)
			return
		}
		verdict := "meets"
		if x < target {
			verdict = "BELOW"
		}
		fmt.Printf("throughput %s / %s: %.2fx  target >= %.2f  %s\n", a, b, x, target, verdict)
	}
	ratio("ferry", "distribution", 2.5)
	ratio("ferry", "nginx", 0.95)
	ratio("ha", "ferry", 0)
	ratio("ha-redirect", "ferry", 0)
	if r, ok := results["ferry"]; ok {
		v := "meets"
		if r.tokenP99 >= 500*time.Millisecond {
			v = "BELOW"
		}
		fmt.Printf("ferry token p99: %s  target < 500 ms  %s\n", ms(r.tokenP99), v)
	}
	for _, t := range targets {
		if r := results[t]; r.errors > 0 {
			fmt.Printf("%s: %d errors, the first: %v\n", t, r.errors, r.firstErr)
		}
	}
}
