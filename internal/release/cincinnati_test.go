package release

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testChannel describes one channel of the fake Cincinnati by versions.
type testChannel struct {
	versions []string
	edges    [][2]string
	cond     [][2]string // conditional edges
}

// The upstream the tests select from: 4.16.1..4.16.5 in stable-4.16,
// 4.17.0..4.17.2 in stable-4.17 (which, like the real one, also holds the
// 4.16 releases that update into 4.17), and stable-4.18 for a path that
// crosses a channel in between. Some edges are conditional only.
var testChannels = map[string]testChannel{
	"stable-4.16": {
		versions: []string{"4.16.1", "4.16.2", "4.16.3", "4.16.4", "4.16.5"},
		edges:    [][2]string{{"4.16.1", "4.16.2"}, {"4.16.2", "4.16.3"}, {"4.16.3", "4.16.4"}, {"4.16.4", "4.16.5"}, {"4.16.1", "4.16.3"}},
		// 4.16.3 -> 4.16.5 exists only as a conditional edge; the other one
		// names a release outside the channel and must be ignored.
		cond: [][2]string{{"4.16.3", "4.16.5"}, {"4.16.5", "4.17.0"}},
	},
	"stable-4.17": {
		versions: []string{"4.16.3", "4.16.4", "4.16.5", "4.17.0", "4.17.1", "4.17.2"},
		edges: [][2]string{{"4.16.3", "4.16.4"}, {"4.16.4", "4.16.5"}, {"4.16.4", "4.17.0"}, {"4.16.5", "4.17.1"},
			{"4.17.0", "4.17.1"}, {"4.17.1", "4.17.2"}},
		cond: [][2]string{{"4.17.0", "4.17.2"}},
	},
	// fast-4.16 runs ahead to 4.16.6, which fast-4.17 does not hold: the
	// path from 4.16 into 4.17 is blocked there.
	"fast-4.16": {
		versions: []string{"4.16.1", "4.16.2", "4.16.3", "4.16.4", "4.16.5", "4.16.6"},
		edges:    [][2]string{{"4.16.1", "4.16.2"}, {"4.16.2", "4.16.3"}, {"4.16.3", "4.16.4"}, {"4.16.4", "4.16.5"}, {"4.16.5", "4.16.6"}},
	},
	"fast-4.17": {
		versions: []string{"4.16.4", "4.17.0", "4.17.1", "4.17.2", "4.17.3"},
		edges:    [][2]string{{"4.16.4", "4.17.0"}, {"4.17.0", "4.17.1"}, {"4.17.1", "4.17.2"}, {"4.17.2", "4.17.3"}},
	},
	"stable-4.18": {
		versions: []string{"4.17.1", "4.17.2", "4.18.0", "4.18.1"},
		edges:    [][2]string{{"4.17.1", "4.17.2"}, {"4.17.2", "4.18.0"}, {"4.18.0", "4.18.1"}},
	},
	// candidate-4.19 has a release nothing updates to: no path reaches it.
	"candidate-4.19": {
		versions: []string{"4.19.0", "4.19.1", "4.19.2"},
		edges:    [][2]string{{"4.19.0", "4.19.1"}},
	},
}

// testPayload is the release image the fake graph names for a version.
func testPayload(version string, arch Arch) string {
	sum := sha256.Sum256([]byte(version + "/" + string(arch)))
	return fmt.Sprintf("quay.example/openshift-release-dev/ocp-release@sha256:%x", sum)
}

// graphJSON renders a channel as Cincinnati does, nodes in a shuffled
// order so that nothing depends on the server sorting them.
func graphJSON(name string, ch testChannel, arch Arch) []byte {
	order := slices.Clone(ch.versions)
	slices.Reverse(order)
	idx := map[string]int{}
	type node struct {
		Version  string            `json:"version"`
		Payload  string            `json:"payload"`
		Metadata map[string]string `json:"metadata"`
	}
	doc := struct {
		Nodes            []node  `json:"nodes"`
		Edges            [][]int `json:"edges"`
		ConditionalEdges []any   `json:"conditionalEdges"`
	}{Edges: [][]int{}, ConditionalEdges: []any{}}
	for i, v := range order {
		idx[v] = i
		channels := []string{name}
		for other, oc := range testChannels {
			if other != name && slices.Contains(oc.versions, v) {
				channels = append(channels, other)
			}
		}
		slices.Sort(channels)
		doc.Nodes = append(doc.Nodes, node{Version: v, Payload: testPayload(v, arch), Metadata: map[string]string{
			"io.openshift.upgrades.graph.release.channels": strings.Join(channels, ","),
			"url": "https://access.redhat.com/errata/RHBA-2024:0001",
		}})
	}
	for _, e := range ch.edges {
		doc.Edges = append(doc.Edges, []int{idx[e[0]], idx[e[1]]})
	}
	for _, e := range ch.cond {
		doc.ConditionalEdges = append(doc.ConditionalEdges, map[string]any{
			"edges": []map[string]string{{"from": e[0], "to": e[1]}},
			"risks": []map[string]any{{"name": "SomeRisk", "message": "may break", "url": "https://example.com",
				"matchingRules": []map[string]string{{"type": "Always"}}}},
		})
	}
	out, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return out
}

// fakeCincinnati serves testChannels and counts requests.
type fakeCincinnati struct {
	*httptest.Server
	requests atomic.Int64
}

func startCincinnati(t *testing.T) *fakeCincinnati {
	t.Helper()
	f := &fakeCincinnati{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		if r.Header.Get("Accept") != "application/json" {
			http.Error(w, "want Accept: application/json", http.StatusNotAcceptable)
			return
		}
		arch, err := ParseArch(r.URL.Query().Get("arch"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		name := r.URL.Query().Get("channel")
		w.Header().Set("Content-Type", "application/json")
		ch, ok := testChannels[name]
		if !ok {
			fmt.Fprint(w, `{"nodes":[],"edges":[],"conditionalEdges":[]}`)
			return
		}
		w.Write(graphJSON(name, ch, arch))
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeCincinnati) client() *GraphClient {
	return NewGraphClient(GraphOptions{OCPURL: f.URL + "/api/upgrades_info/v1/graph", Attempts: 3, Backoff: time.Millisecond})
}

// --- independent expectations, computed from testChannels directly ---

// cmpVersion compares plain X.Y.Z versions numerically.
func cmpVersion(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range 3 {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			return x - y
		}
	}
	return 0
}

func inRange(ch testChannel, lo, hi string) []string {
	var out []string
	for _, v := range ch.versions {
		if cmpVersion(v, lo) >= 0 && cmpVersion(v, hi) <= 0 {
			out = append(out, v)
		}
	}
	return out
}

func newest(ch testChannel) string {
	return slices.MaxFunc(ch.versions, cmpVersion)
}

// onShortestPath computes distances by relaxing every edge (ordinary and
// conditional) until nothing changes, and returns the releases that lie on
// a shortest path from -> to. The test graph is built so that this path
// is unique; the function fails the test otherwise.
func onShortestPath(t *testing.T, ch testChannel, from, to string) []string {
	t.Helper()
	edges := append(slices.Clone(ch.edges), ch.cond...)
	const inf = 1 << 30
	dist := func(src string) map[string]int {
		d := map[string]int{}
		for _, v := range ch.versions {
			d[v] = inf
		}
		d[src] = 0
		for changed := true; changed; {
			changed = false
			for _, e := range edges {
				a, okA := d[e[0]]
				b, okB := d[e[1]]
				if okA && okB && a+1 < b {
					d[e[1]] = a + 1
					changed = true
				}
			}
		}
		return d
	}
	fromSrc := dist(from)
	total := fromSrc[to]
	if total == inf {
		t.Fatalf("test graph has no path %s -> %s", from, to)
	}
	var out []string
	for _, v := range ch.versions {
		if fromSrc[v] != inf && fromSrc[v]+dist(v)[to] == total {
			out = append(out, v)
		}
	}
	if len(out) != total+1 {
		t.Fatalf("test graph has several shortest paths %s -> %s: %v", from, to, out)
	}
	return out
}

func union(sets ...[]string) []string {
	var out []string
	for _, s := range sets {
		for _, v := range s {
			if !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	slices.SortFunc(out, cmpVersion)
	return out
}

func versionsOf(rs []Release) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Version
	}
	return out
}

func TestSelectModes(t *testing.T) {
	s16, s17, s18 := testChannels["stable-4.16"], testChannels["stable-4.17"], testChannels["stable-4.18"]
	f16, f17 := testChannels["fast-4.16"], testChannels["fast-4.17"]
	tests := []struct {
		name     string
		channels []Channel
		want     []string
	}{
		{"range", []Channel{{Name: "stable-4.16", MinVersion: "4.16.2", MaxVersion: "4.16.4"}},
			inRange(s16, "4.16.2", "4.16.4")},
		{"min only runs to the newest", []Channel{{Name: "stable-4.16", MinVersion: "4.16.3"}},
			inRange(s16, "4.16.3", newest(s16))},
		{"heads only", []Channel{{Name: "stable-4.16"}},
			[]string{newest(s16)}},
		{"max only starts at the channel's lowest", []Channel{{Name: "stable-4.16", MaxVersion: "4.16.3"}},
			inRange(s16, s16.versions[0], "4.16.3")},
		{"bounds outside the channel limit the range", []Channel{{Name: "stable-4.16", MinVersion: "4.15.9", MaxVersion: "4.16.3"}},
			inRange(s16, "4.15.9", "4.16.3")},
		{"max beyond the channel", []Channel{{Name: "stable-4.16", MinVersion: "4.16.2", MaxVersion: "4.17.9"}},
			inRange(s16, "4.16.2", "4.17.9")},
		{"bounds between releases", []Channel{{Name: "stable-4.17", MinVersion: "4.16.6", MaxVersion: "4.17.1"}},
			inRange(s17, "4.16.6", "4.17.1")},
		{"shortest path between bounds outside the channel", []Channel{{Name: "stable-4.17", MinVersion: "4.16.0", MaxVersion: "4.17.9", ShortestPath: true}},
			onShortestPath(t, s17, s17.versions[0], newest(s17))},
		{"full", []Channel{{Name: "stable-4.17", Full: true}},
			s17.versions},
		{"full with maxVersion", []Channel{{Name: "stable-4.17", Full: true, MaxVersion: "4.17.0"}},
			inRange(s17, "4.16.3", "4.17.0")},
		{"shortest path uses a conditional edge", []Channel{{Name: "stable-4.16", MinVersion: "4.16.1", MaxVersion: "4.16.5", ShortestPath: true}},
			onShortestPath(t, s16, "4.16.1", "4.16.5")},
		{"shortest path within 4.17", []Channel{{Name: "stable-4.17", MinVersion: "4.16.4", MaxVersion: "4.17.2", ShortestPath: true}},
			onShortestPath(t, s17, "4.16.4", "4.17.2")},
		{"two channels add the path across", []Channel{
			{Name: "stable-4.16", MinVersion: "4.16.2", MaxVersion: "4.16.3"},
			{Name: "stable-4.17"}},
			union(inRange(s16, "4.16.2", "4.16.3"), []string{newest(s17)},
				onShortestPath(t, s16, "4.16.2", newest(s16)),
				onShortestPath(t, s17, newest(s16), newest(s17)))},
		{"two channels, heads only, path crosses stable-4.17", []Channel{
			{Name: "stable-4.18"}, {Name: "stable-4.16"}},
			union([]string{newest(s16), newest(s18)},
				onShortestPath(t, s17, newest(s16), newest(s17)),
				onShortestPath(t, s18, newest(s17), newest(s18)))},
		{"two channels of one minor version", []Channel{
			{Name: "stable-4.16", MinVersion: "4.16.1", MaxVersion: "4.16.1"}, {Name: "fast-4.16"}},
			union([]string{"4.16.1", newest(f16)}, onShortestPath(t, f16, "4.16.1", newest(f16)))},
		{"path blocked: the newer channel lacks the older one's head", []Channel{
			{Name: "fast-4.16"}, {Name: "fast-4.17"}},
			[]string{newest(f16), newest(f17)}},
	}
	if slices.Contains(f17.versions, newest(f16)) {
		t.Fatal("test graph: fast-4.17 must not hold the head of fast-4.16")
	}
	f := startCincinnati(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Select(context.Background(), f.client(), tc.channels, AMD64, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(versionsOf(got), tc.want) {
				t.Fatalf("selected %v, want %v", versionsOf(got), tc.want)
			}
			for _, r := range got {
				if r.Payload != testPayload(r.Version, AMD64) || r.Arch != AMD64 {
					t.Errorf("%s: payload %s arch %s, want the graph's amd64 payload", r.Version, r.Payload, r.Arch)
				}
			}
		})
	}
}

// TestSelectWarnsWhenNoPathInChannel: shortestPath in one channel with no
// path between the ends keeps both ends, as oc-mirror does, and says so.
func TestSelectWarnsWhenNoPathInChannel(t *testing.T) {
	f := startCincinnati(t)
	ch := testChannels["candidate-4.19"]
	from, to := ch.versions[0], newest(ch)
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	got, err := Select(context.Background(), f.client(), []Channel{{Name: "candidate-4.19", MinVersion: from, MaxVersion: to, ShortestPath: true}}, AMD64, log)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{from, to}; !slices.Equal(versionsOf(got), want) {
		t.Errorf("selected %v, want both ends %v", versionsOf(got), want)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "no upgrade path") || !strings.Contains(logs.String(), "channel=candidate-4.19") {
		t.Errorf("log does not warn about the missing path in candidate-4.19:\n%s", logs.String())
	}
	// With a path, nothing is said.
	logs.Reset()
	if _, err := Select(context.Background(), f.client(), []Channel{{Name: "candidate-4.19", MinVersion: from, MaxVersion: "4.19.1", ShortestPath: true}}, AMD64, log); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "WARN") {
		t.Errorf("warning although a path exists:\n%s", logs.String())
	}
}

func TestSelectPassesArchitecture(t *testing.T) {
	f := startCincinnati(t)
	got, err := Select(context.Background(), f.client(), []Channel{{Name: "stable-4.16"}}, ARM64, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Payload != testPayload("4.16.5", ARM64) {
		t.Fatalf("got %+v, want the arm64 payload of 4.16.5", got)
	}
	if tag := ReleaseTag(got[0].Version, got[0].Arch); tag != "4.16.5-aarch64" {
		t.Errorf("tag %s, want 4.16.5-aarch64", tag)
	}
}

func TestSelectAsksEachGraphOnceAndReplaysOffline(t *testing.T) {
	f := startCincinnati(t)
	c := f.client()
	chs := []Channel{{Name: "stable-4.16", MinVersion: "4.16.1"}, {Name: "stable-4.18", ShortestPath: true, MinVersion: "4.17.1"}}
	online, err := Select(context.Background(), c, chs, AMD64, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := f.requests.Load(); n != 3 {
		t.Errorf("%d graph requests, want 3 (4.16, 4.18 and 4.17 on the path)", n)
	}
	saved := c.Fetched()
	f.Close() // disk-to-mirror has no network
	offline, err := Select(context.Background(), OfflineGraphs(saved), chs, AMD64, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(online, offline) {
		t.Fatalf("offline selection %v differs from online %v", versionsOf(offline), versionsOf(online))
	}
	_, err = Select(context.Background(), OfflineGraphs(saved), []Channel{{Name: "fast-4.16"}}, AMD64, nil)
	if err == nil || !strings.Contains(err.Error(), "fast-4.16") || !strings.Contains(err.Error(), "no graph saved") {
		t.Fatalf("error %v, want one naming the missing channel", err)
	}
}

func TestGraphURLFromEnvironment(t *testing.T) {
	f := startCincinnati(t)
	env := map[string]string{"UPDATE_URL_OVERRIDE": f.URL + "/graph"}
	opts := GraphOptionsFromEnv(func(k string) string { return env[k] })
	got, err := ChannelVersions(context.Background(), NewGraphClient(opts), TypeOCP, "stable-4.16", AMD64)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, testChannels["stable-4.16"].versions) || f.requests.Load() != 1 {
		t.Fatalf("got %v after %d requests", got, f.requests.Load())
	}
}

func TestOKDChannelsUseTheOKDGraph(t *testing.T) {
	ocp, okd := startCincinnati(t), startCincinnati(t)
	c := NewGraphClient(GraphOptions{OCPURL: ocp.URL, OKDURL: okd.URL})
	got, err := Select(context.Background(), c, []Channel{{Name: "stable-4.17", Type: TypeOKD}, {Name: "stable-4.16"}}, AMD64, nil)
	if err != nil {
		t.Fatal(err)
	}
	// OKD channels take no part in the cross-channel path.
	if want := []string{"4.16.5", "4.17.2"}; !slices.Equal(versionsOf(got), want) {
		t.Fatalf("selected %v, want %v", versionsOf(got), want)
	}
	if ocp.requests.Load() != 1 || okd.requests.Load() != 1 {
		t.Fatalf("requests: ocp %d okd %d, want one each", ocp.requests.Load(), okd.requests.Load())
	}
}

func TestSelectErrors(t *testing.T) {
	f := startCincinnati(t)
	tests := []struct {
		name     string
		channels []Channel
		arch     Arch
		want     []string
	}{
		{"range holds no release", []Channel{{Name: "stable-4.16", MinVersion: "4.15.1", MaxVersion: "4.15.9"}}, AMD64,
			[]string{"channel stable-4.16 has no release from 4.15.1 to 4.15.9", "4.16.1, 4.16.2, 4.16.3, 4.16.4, 4.16.5", "widen minVersion and maxVersion"}},
		{"max below min", []Channel{{Name: "stable-4.16", MinVersion: "4.16.4", MaxVersion: "4.16.2"}}, AMD64,
			[]string{"stable-4.16", "maxVersion 4.16.2 is below minVersion 4.16.4"}},
		{"not a version", []Channel{{Name: "stable-4.16", MinVersion: "4.16"}}, AMD64,
			[]string{"stable-4.16", `minVersion "4.16" is not a version`}},
		{"empty channel", []Channel{{Name: "stable-4.99"}}, AMD64,
			[]string{"channel stable-4.99 has no releases for amd64"}},
		{"unknown arch", []Channel{{Name: "stable-4.16"}}, Arch("x86"),
			[]string{`unknown architecture "x86"`, "amd64, arm64, ppc64le, s390x, multi"}},
		{"unknown type", []Channel{{Name: "stable-4.16", Type: "fcos"}}, AMD64,
			[]string{`unknown type "fcos"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Select(context.Background(), f.client(), tc.channels, tc.arch, nil)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestGraphServerDownIsRetriedThenReported(t *testing.T) {
	f := startCincinnati(t)
	url := f.URL + "/graph"
	f.Close()
	c := NewGraphClient(GraphOptions{OCPURL: url, Attempts: 3, Backoff: time.Millisecond})
	_, err := Select(context.Background(), c, []Channel{{Name: "stable-4.16"}}, AMD64, nil)
	if err == nil {
		t.Fatal("no error with the graph server down")
	}
	for _, w := range []string{url, "unreachable after 3 attempts", "stable-4.16"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

func TestGraphServerErrors(t *testing.T) {
	var hits atomic.Int64
	var fail atomic.Int64 // how many requests answer 503 before one succeeds
	body := atomic.Value{}
	body.Store(`{"nodes":[{"version":"4.16.1","payload":"q.example/r@sha256:` + strings.Repeat("a", 64) + `"}],"edges":[]}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if fail.Add(-1) >= 0 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Query().Get("channel") == "forbidden" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		fmt.Fprint(w, body.Load())
	}))
	defer srv.Close()
	client := func() *GraphClient {
		return NewGraphClient(GraphOptions{OCPURL: srv.URL, Attempts: 3, Backoff: time.Millisecond})
	}
	ctx := context.Background()

	t.Run("5xx is retried", func(t *testing.T) {
		hits.Store(0)
		fail.Store(2)
		v, err := ChannelVersions(ctx, client(), TypeOCP, "stable-4.16", AMD64)
		if err != nil || !slices.Equal(v, []string{"4.16.1"}) || hits.Load() != 3 {
			t.Fatalf("versions %v, err %v after %d requests; want success on the third", v, err, hits.Load())
		}
	})
	t.Run("5xx every time", func(t *testing.T) {
		hits.Store(0)
		fail.Store(100)
		_, err := ChannelVersions(ctx, client(), TypeOCP, "stable-4.16", AMD64)
		if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), srv.URL) || hits.Load() != 3 {
			t.Fatalf("err %v after %d requests; want a 503 naming the URL after 3", err, hits.Load())
		}
	})
	t.Run("4xx is not retried", func(t *testing.T) {
		hits.Store(0)
		fail.Store(0)
		_, err := ChannelVersions(ctx, client(), TypeOCP, "forbidden", AMD64)
		if err == nil || !strings.Contains(err.Error(), "403") || hits.Load() != 1 {
			t.Fatalf("err %v after %d requests; want a 403 after 1", err, hits.Load())
		}
	})
	for name, doc := range map[string]string{
		"malformed JSON":       `{"nodes": [`,
		"not a graph":          `[1,2,3]`,
		"no nodes":             `{"edges":[]}`,
		"edge out of range":    `{"nodes":[{"version":"4.16.1","payload":"x@sha256:` + strings.Repeat("a", 64) + `"}],"edges":[[0,5]]}`,
		"version not a semver": `{"nodes":[{"version":"four","payload":"x"}],"edges":[]}`,
	} {
		t.Run(name, func(t *testing.T) {
			fail.Store(0)
			body.Store(doc)
			_, err := Select(ctx, client(), []Channel{{Name: "stable-4.16"}}, AMD64, nil)
			if err == nil || !strings.Contains(err.Error(), "stable-4.16") || !strings.Contains(err.Error(), srv.URL) {
				t.Fatalf("err %v, want a graph error naming the channel and URL", err)
			}
			t.Log(err)
		})
	}
}
