package release_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestBadInput checks that each broken input gives a message naming the
// problem and the next step, and oc-mirror's exit code (2: the release
// section failed; 1: the configuration is wrong).
func TestBadInput(t *testing.T) {
	up := startUpstream(t)
	dst := testenv.StartFerry(t, testenv.FerryOptions{})
	heads := "  platform:\n    channels:\n    - name: stable-4.16\n"
	head, _ := up.u.ReleaseFor("4.16.5", "x86_64")

	closed := closedURL(t)
	malformed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"nodes": [{"version": "4.16.5", "payload": `))
	}))
	t.Cleanup(malformed.Close)
	otherKey := otherKeySignatures(t)
	noSignatures := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(noSignatures.Close)

	cases := []struct {
		name   string
		config string
		env    []string
		args   []string
		code   int
		want   []string // regular expressions the output must match
		absent bool     // the head release must not be mirrored
	}{
		{
			name: "graph-down", config: heads, env: []string{"UPDATE_URL_OVERRIDE=" + closed}, code: 2,
			want: []string{`msg=retrying`, `unreachable after 4 attempts`, `UPDATE_URL_OVERRIDE names another graph server`},
		},
		{
			name: "malformed-graph", config: heads, env: []string{"UPDATE_URL_OVERRIDE=" + malformed.URL}, code: 2,
			want: []string{`channel stable-4.16 \(amd64\) from http://127\.0\.0\.1:\d+.*not a Cincinnati graph`},
		},
		{
			name: "signature-other-key", config: heads, env: []string{"OCP_SIGNATURE_URL=" + otherKey}, code: 2, absent: true,
			want: []string{`release 4\.16\.5 \(amd64\): .*signed by key [0-9A-F]+, which is not one of the key in [^ ]+release-key\.asc \(fingerprints [0-9A-F]{40}\)`, `--ignore-release-signature`},
		},
		{
			name: "signature-other-key-ignored", config: heads, env: []string{"OCP_SIGNATURE_URL=" + otherKey}, args: []string{"--ignore-release-signature"}, code: 0,
		},
		{
			name: "no-signature", config: heads, env: []string{"OCP_SIGNATURE_URL=" + noSignatures.URL + "/"}, code: 2, absent: true,
			want: []string{`has no signature at http://127\.0\.0\.1:\d+/sha256=[0-9a-f]{64}/signature-1; set OCP_SIGNATURE_URL`},
		},
		{
			// No key set: Red Hat's built-in keys verify, and refuse the
			// fixture's signatures, naming the keys they are.
			name: "no-key-uses-builtin", config: heads, env: []string{"OCP_SIGNATURE_VERIFICATION_PK="}, code: 2, absent: true,
			want: []string{
				`keys="the built-in Red Hat release keys" fingerprints=567E347AD0044ADE55BA8A5F199E2F91FD431D51,B08B659EE86AF623BC90E8DB938A80CAF21541EB`,
				`release 4\.16\.5 \(amd64\): .*signed by key [0-9A-F]+, which is not one of the built-in Red Hat release keys \(fingerprints 567E347AD0044ADE55BA8A5F199E2F91FD431D51, B08B659EE86AF623BC90E8DB938A80CAF21541EB\)`,
				`set OCP_SIGNATURE_VERIFICATION_PK`,
			},
		},
		{
			name: "fixture-key-env", config: heads, code: 0,
			want: []string{`keys="the key in [^"]+release-key\.asc"`},
		},
		{
			name: "key-flag", config: heads, env: []string{"OCP_SIGNATURE_VERIFICATION_PK="}, args: []string{"--release-signature-key", up.keyFile}, code: 0,
		},
		{
			name: "no-image-references", config: fmt.Sprintf("  platform:\n    release: %s\n", up.u.Additional[2].ByTag()), code: 2,
			want: []string{`has no /release-manifests/image-references: it is not an OpenShift release image`},
		},
		{
			name: "unknown-architecture", config: heads + "    architectures: [sparc64]\n", code: 1,
			want: []string{`"sparc64" is not a release architecture; allowed: amd64, arm64, ppc64le, s390x, multi`},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testenv.WriteImageSetConfig(t, c.config)
			prefix := "bad-" + c.name
			args := append([]string{"mirror", "-c", cfg, "--workspace", "file://" + t.TempDir(), "docker://" + dst.Host + "/" + prefix,
				"--src-tls-verify=false", "--dest-tls-verify=false"}, c.args...)
			out, code := ferry(t, append(up.env(), c.env...), args...)
			if code != c.code {
				t.Errorf("exit code %d, want %d", code, c.code)
			}
			if strings.Contains(out, "panic") {
				t.Errorf("ferry panicked")
			}
			for _, w := range c.want {
				if !regexp.MustCompile(w).MatchString(out) {
					t.Errorf("output does not match %q", w)
				}
			}
			if c.code == 0 && headDigest(t, dst.Host, prefix+"/openshift/release-images", head.Image.Digest) != head.Image.Digest {
				t.Errorf("release %s was not mirrored", head.Version)
			}
			if c.absent && headDigest(t, dst.Host, prefix+"/openshift/release-images", head.Image.Digest) != "" {
				t.Errorf("release %s was mirrored although it failed", head.Version)
			}
		})
	}
}

// closedURL is a loopback URL nothing listens on.
func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/graph"
}

// otherKeySignatures serves, for any release digest, a well-formed atomic
// container signature made with a key other than the fixture's.
func otherKeySignatures(t *testing.T) string {
	t.Helper()
	key, err := openpgp.NewEntity("someone else", "", "other@example.invalid", nil)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`/sha256=([0-9a-f]{64})/signature-1$`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := re.FindStringSubmatch(r.URL.Path)
		if m == nil {
			http.NotFound(w, r)
			return
		}
		body, _ := json.Marshal(map[string]any{"critical": map[string]any{
			"type":     "atomic container signature",
			"image":    map[string]string{"docker-manifest-digest": "sha256:" + m[1]},
			"identity": map[string]string{"docker-reference": "quay.io/openshift-release-dev/ocp-release:x"},
		}})
		var buf bytes.Buffer
		sw, err := openpgp.Sign(&buf, key, nil, nil)
		if err == nil {
			sw.Write(body)
			err = sw.Close()
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(buf.Bytes())
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}
