// Package release_test mirrors OpenShift release payloads end to end: the
// real ferry binary, a synthetic upstream (internal/fixtures) pushed into
// Debian's docker-registry, its Cincinnati graph and signature servers on
// loopback, and a Ferry registry as the destination.
package release_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"

	"github.com/ferry-mirror/ferry/internal/fixtures"
	"github.com/ferry-mirror/ferry/internal/testenv"
)

// upstream is the synthetic upstream with its servers running.
type upstream struct {
	u       *fixtures.Upstream
	reg     *testenv.Server
	srv     *fixtures.Servers
	keyFile string
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	up := testenv.StartUpstream(t, fixtures.Options{Seed: 7})
	return &upstream{u: up.Upstream, reg: up.Registry, srv: up.Servers, keyFile: up.KeyFile}
}

// env points ferry at the upstream's servers.
func (up *upstream) env() []string {
	return up.srv.Env(up.keyFile)
}

// ferry runs the built binary and returns its combined output and exit code.
func ferry(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	return testenv.RunFerry(t, env, args...)
}

// graph is a Cincinnati document as the test reads it, independently of
// internal/release.
type graph struct {
	Nodes []struct {
		Version string `json:"version"`
		Payload string `json:"payload"`
	} `json:"nodes"`
	Edges            [][2]int `json:"edges"`
	ConditionalEdges []struct {
		Edges []struct{ From, To string } `json:"edges"`
	} `json:"conditionalEdges"`
}

func (up *upstream) graph(t *testing.T, channel string) graph {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, up.srv.GraphURL+"?channel="+channel+"&arch=amd64", nil)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var g graph
	if err := json.NewDecoder(resp.Body).Decode(&g); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g graph) versions() []string {
	var vs []string
	for _, n := range g.Nodes {
		vs = append(vs, n.Version)
	}
	sortVersions(vs)
	return vs
}

// inRange lists the graph's versions from min to max, both included.
func (g graph) inRange(min, max string) []string {
	lo, hi := semver.MustParse(min), semver.MustParse(max)
	var out []string
	for _, v := range g.versions() {
		sv := semver.MustParse(v)
		if !sv.LessThan(lo) && !sv.GreaterThan(hi) {
			out = append(out, v)
		}
	}
	return out
}

// path is a shortest upgrade path from -> to along edges and conditional
// edges, preferring the higher version at each step (as oc-mirror does).
func (g graph) path(t *testing.T, from, to string) []string {
	t.Helper()
	next := map[string][]string{}
	for _, e := range g.Edges {
		next[g.Nodes[e[0]].Version] = append(next[g.Nodes[e[0]].Version], g.Nodes[e[1]].Version)
	}
	for _, ce := range g.ConditionalEdges {
		for _, e := range ce.Edges {
			next[e.From] = append(next[e.From], e.To)
		}
	}
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 && queue[0] != to {
		n := queue[0]
		queue = queue[1:]
		ds := slices.Clone(next[n])
		sortVersions(ds)
		slices.Reverse(ds)
		for _, d := range ds {
			if _, seen := prev[d]; !seen {
				prev[d] = n
				queue = append(queue, d)
			}
		}
	}
	if _, ok := prev[to]; !ok {
		t.Fatalf("no upgrade path %s -> %s in the graph", from, to)
	}
	var out []string
	for n := to; n != ""; n = prev[n] {
		out = append(out, n)
	}
	sortVersions(out)
	return out
}

// hasPath reports whether any upgrade path leads from -> to.
func (g graph) hasPath(from, to string) bool {
	next := map[string][]string{}
	for _, e := range g.Edges {
		next[g.Nodes[e[0]].Version] = append(next[g.Nodes[e[0]].Version], g.Nodes[e[1]].Version)
	}
	for _, ce := range g.ConditionalEdges {
		for _, e := range ce.Edges {
			next[e.From] = append(next[e.From], e.To)
		}
	}
	seen := map[string]bool{from: true}
	for queue := []string{from}; len(queue) > 0; queue = queue[1:] {
		for _, d := range next[queue[0]] {
			if !seen[d] {
				seen[d] = true
				queue = append(queue, d)
			}
		}
	}
	return seen[to]
}

func sortVersions(vs []string) {
	sort.Slice(vs, func(i, j int) bool { return semver.MustParse(vs[i]).LessThan(semver.MustParse(vs[j])) })
}

func union(lists ...[]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range lists {
		for _, v := range l {
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	sortVersions(out)
	return out
}

// headDigest returns the digest ref names in repo, or "" when absent.
func headDigest(t *testing.T, host, repo, ref string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, "http://"+host+"/v2/"+repo+"/manifests/"+ref, nil)
	req.Header.Set("Accept", testenv.ManifestAccept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return resp.Header.Get("Docker-Content-Digest")
}

// assertReleases checks that exactly the x86_64 releases of versions and
// their components landed under prefix on host, each by digest.
func (up *upstream) assertReleases(t *testing.T, host, prefix string, versions []string, kubeVirt bool) {
	t.Helper()
	up.assertArchReleases(t, host, prefix, "x86_64", versions, kubeVirt)
}

// assertArchReleases is assertReleases for arch x86_64 or multi.
func (up *upstream) assertArchReleases(t *testing.T, host, prefix, arch string, versions []string, kubeVirt bool) {
	t.Helper()
	kv := ""
	if kubeVirt {
		kv = "kube-virt-container"
	}
	up.assertMirrored(t, host, prefix, arch, versions, kv)
}

// assertMirrored checks that exactly the releases of versions for arch
// (x86_64 or multi) and their components landed under prefix on host, by
// digest, with the x86_64 KubeVirt image as component kubeVirt when that
// is not empty.
func (up *upstream) assertMirrored(t *testing.T, host, prefix, arch string, versions []string, kubeVirt string) {
	t.Helper()
	var wantRel, wantComp []string
	for _, v := range versions {
		r, ok := up.u.ReleaseFor(v, arch)
		if !ok {
			t.Fatalf("fixture has no release %s for %s", v, arch)
		}
		tag := v + "-" + arch
		wantRel = append(wantRel, tag)
		if got := headDigest(t, host, prefix+"/openshift/release-images", r.Image.Digest); got != r.Image.Digest {
			t.Errorf("release %s: %s not present by digest (got %q)", v, r.Image.Digest, got)
		}
		if got := headDigest(t, host, prefix+"/openshift/release-images", tag); got != r.Image.Digest {
			t.Errorf("release %s: tag %s is %q, want %s", v, tag, got, r.Image.Digest)
		}
		for _, c := range r.Components {
			wantComp = append(wantComp, tag+"-"+c.Name)
			if got := headDigest(t, host, prefix+"/openshift/release", tag+"-"+c.Name); got != c.Image.Digest {
				t.Errorf("component %s of %s: got %q, want %s", c.Name, v, got, c.Image.Digest)
			}
		}
		if kubeVirt != "" {
			wantComp = append(wantComp, tag+"-"+kubeVirt)
			d := r.KubeVirt[strings.Index(r.KubeVirt, "@")+1:]
			if got := headDigest(t, host, prefix+"/openshift/release", tag+"-"+kubeVirt); got != d {
				t.Errorf("kubevirt container of %s: got %q, want %s", v, got, d)
			}
		}
	}
	sort.Strings(wantRel)
	sort.Strings(wantComp)
	if got := testenv.Tags(t, host, prefix+"/openshift/release-images"); !slices.Equal(got, wantRel) {
		t.Errorf("release images mirrored: %v\nwant exactly: %v", got, wantRel)
	}
	if got := testenv.Tags(t, host, prefix+"/openshift/release"); !slices.Equal(got, wantComp) {
		t.Errorf("components mirrored: %d tags %v\nwant exactly %d: %v", len(got), got, len(wantComp), wantComp)
	}
}

func fmtList(vs []string) string { return fmt.Sprint(vs) }
