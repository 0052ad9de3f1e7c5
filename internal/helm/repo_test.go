package helm

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-mirror/ferry/internal/fixtures"
)

func TestFixtureRepository(t *testing.T) {
	u, err := fixtures.Generate(context.Background(), fixtures.Options{Host: "registry.example.com:5000", Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(u.ChartHandler())
	defer srv.Close()
	ctx := context.Background()
	c := &Client{}
	ix, err := c.Index(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range u.Charts {
		e, err := ix.Find(want.Name, want.Version)
		if err != nil {
			t.Fatal(err)
		}
		data, err := c.Download(ctx, ix, e) // relative URL, digest checked
		if err != nil {
			t.Fatal(err)
		}
		got := refs(t, Job{Archive: data})
		var norm []string
		for _, w := range want.Images {
			if !slices.Contains(norm, w) {
				norm = append(norm, w)
			}
		}
		assertRefs(t, got, norm...)
	}
	// Version selection, as helm pull --version reads it.
	for _, tc := range []struct{ version, want string }{{"", "0.2.0"}, {"0.1.0", "0.1.0"}, {"~0.1", "0.1.0"}, {">=0.1.0", "0.2.0"}} {
		e, err := ix.Find("ferry-demo", tc.version)
		if err != nil || e.Version != tc.want {
			t.Errorf("Find(ferry-demo, %q) = %s, %v; want %s", tc.version, e.Version, err, tc.want)
		}
	}
	if _, err := ix.Find("ferry-demo", "9.9.9"); err == nil || !strings.Contains(err.Error(), `"9.9.9"`) || !strings.Contains(err.Error(), "0.1.0, 0.2.0") {
		t.Errorf("unknown version: %v; want an error naming it and the versions there are", err)
	}
	if _, err := ix.Find("nope", ""); err == nil || !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), "busybox-job") {
		t.Errorf("unknown chart: %v; want an error naming it and the charts there are", err)
	}
	if n := len(ix.Applications()); n != len(u.Charts) {
		t.Errorf("%d application chart versions, want %d", n, len(u.Charts))
	}
}

func TestRepositoryErrors(t *testing.T) {
	ctx := context.Background()
	// An index with an absolute chart URL on another path, behind basic auth.
	mux := http.NewServeMux()
	var srv *httptest.Server
	mux.HandleFunc("/repo/index.yaml", func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "apiVersion: v1\nentries:\n  big:\n  - name: big\n    version: 1.0.0\n    urls: [%s/elsewhere/big-1.0.0.tgz]\n  bad:\n  - name: bad\n    version: 1.0.0\n    digest: %s\n    urls: [bad-1.0.0.tgz]\n", srv.URL, strings.Repeat("0", 64))
	})
	mux.HandleFunc("/elsewhere/big-1.0.0.tgz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 2048)))
	})
	mux.HandleFunc("/repo/bad-1.0.0.tgz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("tampered")) })
	srv = httptest.NewServer(mux)
	defer srv.Close()

	anon := &Client{}
	if _, err := anon.Index(ctx, srv.URL+"/repo"); err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "--authfile") {
		t.Errorf("no credentials: %v; want 401 and a hint about the auth file", err)
	}
	c := &Client{MaxChartBytes: 1024, Credentials: func(host string) (string, string, bool) {
		return "alice", "secret", host == strings.TrimPrefix(srv.URL, "http://")
	}}
	ix, err := c.Index(ctx, srv.URL+"/repo/")
	if err != nil {
		t.Fatal(err)
	}
	e, _ := ix.Find("big", "")
	if _, err := c.Download(ctx, ix, e); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("oversized chart: %v; want a size limit error", err)
	}
	e, _ = ix.Find("bad", "1.0.0")
	if _, err := c.Download(ctx, ix, e); err == nil || !strings.Contains(err.Error(), "digest") {
		t.Errorf("tampered chart: %v; want a digest mismatch", err)
	}
	if _, err := c.Index(ctx, "http://127.0.0.1:1/charts"); err == nil || !strings.Contains(err.Error(), "unreachable") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("unreachable repository: %v", err)
	}
	if _, err := c.Index(ctx, srv.URL+"/nothing"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("not a repository: %v", err)
	}
}

func TestLoadArchiveRejectsNonCharts(t *testing.T) {
	if _, err := LoadArchive([]byte("not gzip")); err == nil || !strings.Contains(err.Error(), "gzip") {
		t.Errorf("garbage: %v", err)
	}
	if _, err := Load("/nonexistent/chart.tgz"); err == nil || !strings.Contains(err.Error(), "/nonexistent/chart.tgz") {
		t.Errorf("missing path: %v", err)
	}
}
