package plan_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-mirror/ferry/internal/fixtures"
	"github.com/ferry-mirror/ferry/internal/imageset"
	"github.com/ferry-mirror/ferry/internal/plan"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// TestHelmCollectorAuth reads a chart repository behind basic auth with
// credentials from a containers auth.json, as podman and oc-mirror users
// already keep them, and dedupes images shared by charts.
func TestHelmCollectorAuth(t *testing.T) {
	u, err := fixtures.Generate(context.Background(), fixtures.Options{Host: "registry.example.com", Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	charts := u.ChartHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); !ok || user != "bob" || pass != "hunter2" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		charts.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	authFile := filepath.Join(t.TempDir(), "auth.json")
	cred := base64.StdEncoding.EncodeToString([]byte("bob:hunter2"))
	if err := os.WriteFile(authFile, []byte(`{"auths":{"`+host+`":{"auth":"`+cred+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	kc, err := transfer.LoadKeychain([]string{authFile}, true)
	if err != nil {
		t.Fatal(err)
	}
	cfg := imageset.Helm{Repositories: []imageset.HelmRepository{{Name: "fixtures", URL: srv.URL}}} // no charts: all of them
	reqs, err := plan.Helm{Config: cfg, Client: plan.NewHelmClient(kc, false)}.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, c := range u.Charts {
		for _, im := range c.Images {
			if !slices.Contains(want, im) {
				want = append(want, im)
			}
		}
	}
	for _, r := range reqs.Requests {
		if r.Section != plan.SectionHelm {
			t.Errorf("request %s in section %q, want %q", r.Name, r.Section, plan.SectionHelm)
		}
		got = append(got, r.Name)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("requests %q, want each chart image once: %q", got, want)
	}

	_, err = plan.Helm{Config: cfg, Client: plan.NewHelmClient(nil, false)}.Collect(context.Background())
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("without credentials: %v, want a 401 naming the repository", err)
	}
}
