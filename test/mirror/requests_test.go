package mirror_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestSourceWithoutTagListing: some registries refuse tags/list. Ferry
// finds signatures through one listing per repository where it can, so
// where it cannot it must fall back to asking for each tag, and still
// bring every signature and referrer. The source is also pinged once per
// run, not once per repository.
func TestSourceWithoutTagListing(t *testing.T) {
	src := testenv.StartDockerRegistry(t)
	u := buildUpstream(t, src.Host)
	var pings, listings atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: src.Host})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/":
			pings.Add(1)
		case strings.HasSuffix(r.URL.Path, "/tags/list"):
			listings.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"errors":[{"code":"DENIED","message":"tag listing is disabled"}]}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	via := *u
	via.Host = strings.TrimPrefix(front.URL, "http://")

	dst := startFerry(t)
	dir := t.TempDir()
	isc := writeFile(t, filepath.Join(dir, "isc.yaml"), via.isc(""))
	out, code := ferry(t, nil, "mirror", "-c", isc, "--workspace", "file://"+filepath.Join(dir, "ws"), "docker://"+dst.Host+"/mirror",
		"--dest-tls-verify=false", "--src-tls-verify=false")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	assertMirrored(t, dst.Host, "mirror", u)
	if listings.Load() == 0 {
		t.Error("ferry never tried to list tags; the fallback was not exercised")
	}
	if n := pings.Load(); n != 1 {
		t.Errorf("the source was pinged %d times for 6 repositories; want once per run", n)
	}
}
