package deploy

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"gopkg.in/yaml.v3"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

type object = map[string]any

func chartDir(t *testing.T) string {
	return filepath.Join(testenv.ModuleRoot(t), "deploy/helm/ferry")
}

// render runs helm template and parses the stream of objects.
func render(t *testing.T, args ...string) []object {
	t.Helper()
	out, err := renderErr(t, args...)
	if err != nil {
		t.Fatalf("helm template %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var objs []object
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("helm template output is not YAML: %v", err)
		}
		if o != nil {
			objs = append(objs, o)
		}
	}
	return objs
}

func renderErr(t *testing.T, args ...string) (string, error) {
	helm := testenv.Tool(t, "helm")
	return runErr(nil, helm, append([]string{"template", "reg", chartDir(t), "--namespace", "mirror"}, args...)...)
}

// get walks a path of map keys and list indexes.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func byKind(objs []object) map[string][]object {
	m := map[string][]object{}
	for _, o := range objs {
		m[str(o["kind"])] = append(m[str(o["kind"])], o)
	}
	return m
}

func one(t *testing.T, objs map[string][]object, kind string) object {
	t.Helper()
	if len(objs[kind]) != 1 {
		t.Fatalf("the chart renders %d %s objects, want 1", len(objs[kind]), kind)
	}
	return objs[kind][0]
}

func TestChartLint(t *testing.T) {
	helm := testenv.Tool(t, "helm")
	dir := chartDir(t)
	for _, args := range [][]string{
		{"lint", "--strict", dir},
		{"lint", "--strict", dir, "-f", filepath.Join(dir, "ci/ha-values.yaml")},
		{"lint", "--strict", dir, "--set", "ingress.enabled=true,ingress.host=registry.example.com,ingress.tlsSecret=reg-tls"},
	} {
		if out, err := runErr(nil, helm, args...); err != nil {
			t.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// checkPod checks what every pod of the chart must have: the restricted
// security settings, and the secrets only from Secrets.
func checkPod(t *testing.T, what string, spec object, openshift bool) {
	t.Helper()
	psc := get(spec, "securityContext")
	if get(psc, "runAsNonRoot") != true || str(get(psc, "seccompProfile", "type")) != "RuntimeDefault" {
		t.Errorf("%s: pod securityContext %v lacks runAsNonRoot or the RuntimeDefault seccomp profile", what, psc)
	}
	if openshift && (get(psc, "runAsUser") != nil || get(psc, "fsGroup") != nil) {
		t.Errorf("%s: in OpenShift mode the pod fixes runAsUser or fsGroup (%v), which the restricted SCC refuses", what, psc)
	}
	if !openshift && get(psc, "runAsUser") != 65532 {
		t.Errorf("%s: runAsUser %v, want the image's 65532", what, get(psc, "runAsUser"))
	}
	for i := range get(spec, "containers").([]any) {
		c := get(spec, "containers", i)
		sc := get(c, "securityContext")
		if get(sc, "readOnlyRootFilesystem") != true || get(sc, "allowPrivilegeEscalation") != false ||
			str(get(sc, "capabilities", "drop")) != "[ALL]" || get(sc, "capabilities", "add") != nil {
			t.Errorf("%s: container securityContext %v: want a read-only root, no privilege escalation, all capabilities dropped", what, sc)
		}
		for _, e := range asList(get(c, "env")) {
			if strings.Contains(str(get(e, "name")), "SECRET") || str(get(e, "name")) == "AWS_ACCESS_KEY_ID" {
				if get(e, "value") != nil || get(e, "valueFrom", "secretKeyRef") == nil {
					t.Errorf("%s: %s is not taken from a Secret", what, get(e, "name"))
				}
			}
		}
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// secretValues returns the decoded values of every rendered Secret.
func secretValues(t *testing.T, objs map[string][]object) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, s := range objs["Secret"] {
		vals := map[string]string{}
		for k, v := range get(s, "data").(map[string]any) {
			b, err := base64.StdEncoding.DecodeString(str(v))
			if err != nil {
				t.Fatalf("Secret %s key %s is not base64: %v", get(s, "metadata", "name"), k, err)
			}
			vals[k] = string(b)
		}
		out[str(get(s, "metadata", "name"))] = vals
	}
	return out
}

// noSecretsInPlainSight fails if a Secret's value appears in a ConfigMap
// or anywhere in a workload (an env value, an argument).
func noSecretsInPlainSight(t *testing.T, objs map[string][]object, secrets map[string]map[string]string) {
	t.Helper()
	var plain []object
	for _, k := range []string{"ConfigMap", "Deployment", "CronJob", "Service", "Route", "Ingress", "NetworkPolicy"} {
		plain = append(plain, objs[k]...)
	}
	for _, o := range plain {
		b, _ := yaml.Marshal(o)
		for name, vals := range secrets {
			for k, v := range vals {
				if len(v) >= 4 && bytes.Contains(b, []byte(v)) {
					t.Errorf("the value of Secret %s key %s is in plain sight in %s %s", name, k, o["kind"], get(o, "metadata", "name"))
				}
			}
		}
	}
}

func TestChartDefault(t *testing.T) {
	objs := byKind(render(t))
	d := one(t, objs, "Deployment")
	if get(d, "spec", "replicas") != 1 || str(get(d, "spec", "strategy", "type")) != "Recreate" {
		t.Errorf("default Deployment: replicas %v, strategy %v; want 1 replica recreated (it owns a ReadWriteOnce volume)", get(d, "spec", "replicas"), get(d, "spec", "strategy", "type"))
	}
	pvc := one(t, objs, "PersistentVolumeClaim")
	pod := get(d, "spec", "template", "spec").(object)
	checkPod(t, "Deployment", pod, false)
	checkProbes(t, pod)
	if claim := str(findVolume(pod, "data", "persistentVolumeClaim", "claimName")); claim != str(get(pvc, "metadata", "name")) {
		t.Errorf("the data volume is claim %q, want the chart's PVC %v", claim, get(pvc, "metadata", "name"))
	}
	cj := one(t, objs, "CronJob")
	jobPod := get(cj, "spec", "jobTemplate", "spec", "template", "spec").(object)
	checkPod(t, "CronJob", jobPod, false)
	if str(get(jobPod, "containers", 0, "args", 0)) != "gc" || str(get(jobPod, "containers", 0, "image")) != str(get(pod, "containers", 0, "image")) {
		t.Errorf("the CronJob runs %v with %v, want ferry gc with the registry's image", get(jobPod, "containers", 0, "args"), get(jobPod, "containers", 0, "image"))
	}
	if findVolume(jobPod, "data", "persistentVolumeClaim", "claimName") != get(pvc, "metadata", "name") || get(jobPod, "affinity", "podAffinity") == nil {
		t.Error("the gc CronJob does not mount the registry's volume on the registry's node")
	}
	checkCommon(t, objs, d)
	if len(objs["Route"])+len(objs["Ingress"]) != 0 {
		t.Error("the default values render a Route or an Ingress")
	}
	noSecretsInPlainSight(t, objs, secretValues(t, objs))
	runRendered(t, objs)
}

func TestChartHA(t *testing.T) {
	ha := filepath.Join(chartDir(t), "ci/ha-values.yaml")
	objs := byKind(render(t, "-f", ha))
	d := one(t, objs, "Deployment")
	if get(d, "spec", "replicas") != 3 || str(get(d, "spec", "strategy", "type")) != "RollingUpdate" || get(d, "spec", "strategy", "rollingUpdate", "maxUnavailable") != 0 {
		t.Errorf("HA Deployment: replicas %v, strategy %v; want 3 replicas rolled with none unavailable", get(d, "spec", "replicas"), get(d, "spec", "strategy"))
	}
	if len(objs["PersistentVolumeClaim"]) != 0 {
		t.Error("the stateless HA deployment claims a volume")
	}
	pod := get(d, "spec", "template", "spec").(object)
	checkPod(t, "Deployment", pod, true)
	checkProbes(t, pod)
	anti := get(pod, "affinity", "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution", 0)
	if str(get(anti, "topologyKey")) != "kubernetes.io/hostname" || !sameLabels(get(anti, "labelSelector", "matchLabels"), get(d, "spec", "selector", "matchLabels")) {
		t.Errorf("antiAffinity hard: %v, want the replicas kept on distinct nodes", anti)
	}
	cj := one(t, objs, "CronJob")
	checkPod(t, "CronJob", get(cj, "spec", "jobTemplate", "spec", "template", "spec").(object), true)
	r := one(t, objs, "Route")
	if str(get(r, "spec", "tls", "termination")) != "passthrough" || str(get(r, "spec", "host")) != "registry.apps.example.com" {
		t.Errorf("Route %v: want passthrough TLS to the registry's host", get(r, "spec"))
	}
	checkCommon(t, objs, d)
	secrets := secretValues(t, objs)
	vals := secrets["reg-ferry"]
	for k, want := range map[string]string{"metadata-password": "chart-test-pg-password", "s3-secret-key": "chart-test-s3-secret", "secrets-key": "c2VjcmV0cy1rZXktb2YtdGhlLWNoYXJ0LXRlc3QtMzI="} {
		if vals[k] != want {
			t.Errorf("Secret key %s = %q, want %q", k, vals[k], want)
		}
	}
	noSecretsInPlainSight(t, objs, secrets)

	// The same values pointed at a real PostgreSQL and MinIO: two replicas
	// and the gc job, run as the kubelet would run them, share the stores.
	pg := testenv.StartPostgres(t)
	m := testenv.StartMinIO(t)
	dbURL := pg.NewDatabase(t)
	objs = byKind(render(t, "-f", ha,
		"--set", "metadata.url="+dbURL,
		"--set", "blobStore.url="+strings.ReplaceAll(m.BlobStoreURL(testenv.BucketName()), ",", `\,`),
		"--set", "blobStore.accessKey="+m.AccessKey, "--set", "blobStore.secretKey="+m.SecretKey))
	runRendered(t, objs)
}

func TestChartRefusals(t *testing.T) {
	for _, tc := range []struct {
		set  []string
		want string
	}{
		{[]string{"replicaCount=3"}, "replicaCount > 1 needs metadata.url"},
		{[]string{"metadata.url=postgres://ferry:hunter2@db/ferry", "metadata.password=x"}, "holds a password"},
		{[]string{"blobStore.url=s3://b?endpoint=minio:9000"}, "needs S3 credentials"},
		{[]string{"metadata.url=postgres://ferry@db/ferry"}, "needs the PostgreSQL password"},
		{[]string{"antiAffinity=maybe"}, "antiAffinity"},
	} {
		var args []string
		for _, s := range tc.set {
			args = append(args, "--set", s)
		}
		out, err := renderErr(t, args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("helm template --set %s: %v, want a failure saying %q:\n%s", strings.Join(tc.set, ","), err, tc.want, out)
		}
	}
}

func findVolume(pod object, name string, path ...any) any {
	for _, v := range asList(get(pod, "volumes")) {
		if str(get(v, "name")) == name {
			return get(v, path...)
		}
	}
	return nil
}

func checkProbes(t *testing.T, pod object) {
	t.Helper()
	c := get(pod, "containers", 0)
	if get(c, "ports", 0, "containerPort") != 8443 || str(get(c, "ports", 0, "name")) != "https" {
		t.Errorf("container ports %v: want https on 8443", get(c, "ports"))
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"} {
		g := get(c, probe, "httpGet")
		if str(get(g, "path")) != path || str(get(g, "scheme")) != "HTTPS" || str(get(g, "port")) != "https" {
			t.Errorf("%s %v: want GET %s over HTTPS on the https port", probe, g, path)
		}
	}
}

func sameLabels(a, b any) bool {
	am, _ := a.(map[string]any)
	bm, _ := b.(map[string]any)
	if len(am) == 0 || len(am) != len(bm) {
		return false
	}
	for k, v := range am {
		if bm[k] != v {
			return false
		}
	}
	return true
}

// checkCommon checks the objects around the Deployment: the Service, the
// PodDisruptionBudget and the NetworkPolicy select its pods.
func checkCommon(t *testing.T, objs map[string][]object, d object) {
	t.Helper()
	podLabels := get(d, "spec", "template", "metadata", "labels")
	svc := one(t, objs, "Service")
	if !sameLabels(get(svc, "spec", "selector"), podLabels) || str(get(svc, "spec", "ports", 0, "targetPort")) != "https" {
		t.Errorf("Service %v does not reach the registry pods (labels %v)", get(svc, "spec"), podLabels)
	}
	pdb := one(t, objs, "PodDisruptionBudget")
	if !sameLabels(get(pdb, "spec", "selector", "matchLabels"), podLabels) || get(pdb, "spec", "maxUnavailable") != 1 {
		t.Errorf("PodDisruptionBudget %v: want at most one registry pod disrupted at a time", get(pdb, "spec"))
	}
	np := one(t, objs, "NetworkPolicy")
	if !sameLabels(get(np, "spec", "podSelector", "matchLabels"), podLabels) || str(get(np, "spec", "ingress", 0, "ports", 0, "port")) != "https" {
		t.Errorf("NetworkPolicy %v: want the registry pods open on the https port only", get(np, "spec"))
	}
	for _, o := range objs["ConfigMap"] {
		for _, v := range get(o, "data").(map[string]any) {
			if strings.Contains(strings.ToLower(str(v)), "password:") {
				t.Errorf("ConfigMap %v holds a password", get(o, "metadata", "name"))
			}
		}
	}
}

// runRendered runs the rendered Deployment's container (replicas times, at
// most two) and the gc CronJob's with the ferry binary, as a kubelet would:
// the environment resolved from the rendered Secrets, the ConfigMap and
// Secret volumes as files, each mount path mapped to a directory. The
// replicas must become ready, share what is pushed, and gc must succeed.
func runRendered(t *testing.T, objs map[string][]object) {
	t.Helper()
	secrets := secretValues(t, objs)
	configMaps := map[string]map[string]any{}
	for _, c := range objs["ConfigMap"] {
		configMaps[str(get(c, "metadata", "name"))] = get(c, "data").(map[string]any)
	}
	claims := map[string]string{} // a PVC is one directory shared by pods
	bin := testenv.FerryBinary(t)
	startPod := func(name string, pod object) (argv, env []string) {
		dir := t.TempDir()
		c := get(pod, "containers", 0)
		mounts := map[string]string{}
		for _, vm := range asList(get(c, "volumeMounts")) {
			vol := str(get(vm, "name"))
			host := filepath.Join(dir, vol)
			if claim := str(findVolume(pod, vol, "persistentVolumeClaim", "claimName")); claim != "" {
				if claims[claim] == "" {
					claims[claim] = t.TempDir()
				}
				host = claims[claim]
			}
			mounts[str(get(vm, "mountPath"))] = host
			if err := os.MkdirAll(host, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		// One pass, longest mount path first: /tmp must not rewrite the
		// host paths other mounts were mapped to.
		var pairs []string
		for mp, host := range mounts {
			pairs = append(pairs, mp, host)
		}
		for i := 0; i < len(pairs); i += 2 {
			for j := i + 2; j < len(pairs); j += 2 {
				if len(pairs[j]) > len(pairs[i]) {
					pairs[i], pairs[i+1], pairs[j], pairs[j+1] = pairs[j], pairs[j+1], pairs[i], pairs[i+1]
				}
			}
		}
		mapPaths := strings.NewReplacer(pairs...).Replace
		for _, v := range asList(get(pod, "volumes")) {
			host := filepath.Join(dir, str(get(v, "name")))
			if cm := str(get(v, "configMap", "name")); cm != "" {
				for k, content := range configMaps[cm] {
					write(t, filepath.Join(host, k), mapPaths(str(content)))
				}
			}
			if sn := str(get(v, "secret", "secretName")); sn != "" {
				for _, it := range asList(get(v, "secret", "items")) {
					write(t, filepath.Join(host, str(get(it, "path"))), secrets[sn][str(get(it, "key"))])
				}
			}
		}
		env = []string{"PATH=/usr/bin:/bin"}
		for _, e := range asList(get(c, "env")) {
			val := str(get(e, "value"))
			if ref := get(e, "valueFrom", "secretKeyRef"); ref != nil {
				v, ok := secrets[str(get(ref, "name"))][str(get(ref, "key"))]
				if !ok {
					t.Fatalf("%s: env %v refers to a Secret key the chart does not render", name, get(e, "name"))
				}
				val = v
			}
			env = append(env, str(get(e, "name"))+"="+mapPaths(val))
		}
		argv = []string{bin}
		for _, a := range asList(get(c, "args")) {
			argv = append(argv, mapPaths(str(a)))
		}
		return argv, env
	}

	d := one(t, objs, "Deployment")
	pod := get(d, "spec", "template", "spec").(object)
	n := min(get(d, "spec", "replicas").(int), 2)
	var regs []registry
	var procs []*proc
	for i := 0; i < n; i++ {
		argv, env := startPod(fmt.Sprintf("replica %d", i), pod)
		port := strconv.Itoa(testenv.FreePort(t))
		// What a pod's own network namespace gives: its port, on loopback.
		env = append(env, "FERRY_LISTEN=127.0.0.1:"+port)
		p := startProc(t, env, argv...)
		procs = append(procs, p)
		regs = append(regs, registry{host: "127.0.0.1:" + port})
	}
	for i, r := range regs {
		// Probes over HTTPS without verification, as the kubelet's are.
		insecure := insecureTransport()
		if code := waitStatus(t, insecure, "https://"+r.host+"/readyz", procs[i]); code != http.StatusOK {
			t.Fatalf("replica %d: /readyz answers %d, want 200:\n%s", i, code, procs[i].log.String())
		}
		if code := waitStatus(t, insecure, "https://"+r.host+"/healthz", procs[i]); code != http.StatusOK {
			t.Fatalf("replica %d: /healthz answers %d", i, code)
		}
	}
	// The admin's password is left in the data dir of the replica that
	// created it.
	var pw string
	for _, p := range procs {
		if _, after, ok := strings.Cut(p.log.String(), `the initial admin user "admin" with password `); ok {
			pw = strings.Fields(after)[0]
		}
	}
	if pw == "" {
		t.Fatal("no replica created the initial admin")
	}
	for i := range regs {
		regs[i].tr = insecureTransport()
		regs[i].auth = &authn.Basic{Username: "admin", Password: pw}
	}
	images := pushImages(t, regs[0], 2)
	verifyImages(t, regs[len(regs)-1], images)

	if cj := objs["CronJob"]; len(cj) == 1 {
		jobPod := get(cj[0], "spec", "jobTemplate", "spec", "template", "spec").(object)
		argv, env := startPod("gc", jobPod)
		out, err := runErr(env, argv[0], append(argv[1:], "--grace=0s")...)
		if err != nil || !strings.Contains(out, "kept") {
			t.Fatalf("the gc CronJob's command %v: %v\n%s", argv, err, out)
		}
		verifyImages(t, regs[0], images)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// An Ingress, for clusters without Routes, sends HTTPS to the https port
// with no body size limit, and its host is in the certificate.
func TestChartIngress(t *testing.T) {
	objs := byKind(render(t, "--set", "ingress.enabled=true,ingress.host=registry.example.com,ingress.tlsSecret=reg-tls,ingress.className=nginx"))
	ing := one(t, objs, "Ingress")
	rule := get(ing, "spec", "rules", 0)
	backend := get(rule, "http", "paths", 0, "backend", "service")
	if str(get(rule, "host")) != "registry.example.com" || str(get(backend, "name")) != "reg-ferry" || str(get(backend, "port", "name")) != "https" {
		t.Errorf("Ingress rule %v: want registry.example.com to the https port of reg-ferry", rule)
	}
	ann := get(ing, "metadata", "annotations")
	if str(get(ann, "nginx.ingress.kubernetes.io/backend-protocol")) != "HTTPS" || str(get(ann, "nginx.ingress.kubernetes.io/proxy-body-size")) != "0" {
		t.Errorf("Ingress annotations %v: want an HTTPS backend and no body size limit", ann)
	}
	if str(get(ing, "spec", "tls", 0, "secretName")) != "reg-tls" {
		t.Errorf("Ingress TLS %v: want the secret reg-tls", get(ing, "spec", "tls"))
	}
	var cfg struct {
		Hostname []string `yaml:"hostname"`
	}
	if err := yaml.Unmarshal([]byte(str(get(one(t, objs, "ConfigMap"), "data", "ferry.yaml"))), &cfg); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cfg.Hostname, "registry.example.com") || !slices.Contains(cfg.Hostname, "reg-ferry.mirror.svc") {
		t.Errorf("the certificate names %v lack the Ingress host or the Service's name", cfg.Hostname)
	}
	if len(objs["Route"]) != 0 {
		t.Error("an Ingress deployment also renders a Route")
	}
}
