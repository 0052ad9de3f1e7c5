package release

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// Graph is one channel's Cincinnati update graph for one architecture.
type Graph struct {
	Nodes []Node
	// Edges are upgrade paths as indexes into Nodes, from -> to. Conditional
	// edges are folded in: for mirroring, an update with known risks is
	// still a path a cluster may take.
	Edges [][2]int
	// Raw is the document as the server sent it, kept so that it can travel
	// in an archive and be read again with ParseGraph.
	Raw []byte
}

// Node is one release in a graph.
type Node struct {
	Version *semver.Version
	// Payload is the release image, normally pinned by digest.
	Payload  string
	Metadata map[string]string
}

// channelsMetadataKey lists, in a node's metadata, every channel the
// release belongs to.
const channelsMetadataKey = "io.openshift.upgrades.graph.release.channels"

type wireGraph struct {
	Nodes []struct {
		Version  string            `json:"version"`
		Payload  string            `json:"payload"`
		Metadata map[string]string `json:"metadata"`
	} `json:"nodes"`
	Edges            [][]int `json:"edges"`
	ConditionalEdges []struct {
		Edges []struct {
			From string `json:"from"`
			To   string `json:"to"`
		} `json:"edges"`
		Risks json.RawMessage `json:"risks"`
	} `json:"conditionalEdges"`
}

// ParseGraph reads a Cincinnati graph document and checks that every edge
// names a node.
func ParseGraph(data []byte) (*Graph, error) {
	var w wireGraph
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("not a Cincinnati graph (want JSON with nodes and edges): %w", err)
	}
	if w.Nodes == nil {
		return nil, errors.New(`not a Cincinnati graph: no "nodes" list`)
	}
	g := &Graph{Nodes: make([]Node, len(w.Nodes)), Raw: data}
	byVersion := make(map[string]int, len(w.Nodes))
	for i, n := range w.Nodes {
		v, err := semver.StrictNewVersion(n.Version)
		if err != nil {
			return nil, fmt.Errorf("graph node %d: version %q is not a semantic version", i, n.Version)
		}
		if n.Payload == "" {
			return nil, fmt.Errorf("graph node %s has no payload", n.Version)
		}
		g.Nodes[i] = Node{Version: v, Payload: n.Payload, Metadata: n.Metadata}
		byVersion[v.String()] = i
	}
	for _, e := range w.Edges {
		if len(e) != 2 || e[0] < 0 || e[1] < 0 || e[0] >= len(g.Nodes) || e[1] >= len(g.Nodes) {
			return nil, fmt.Errorf("graph edge %v does not join two of the %d nodes", e, len(g.Nodes))
		}
		g.Edges = append(g.Edges, [2]int{e[0], e[1]})
	}
	for _, ce := range w.ConditionalEdges {
		for _, e := range ce.Edges {
			from, okFrom := byVersion[canonical(e.From)]
			to, okTo := byVersion[canonical(e.To)]
			if !okFrom || !okTo {
				// Conditional edges may name releases outside this channel.
				continue
			}
			g.Edges = append(g.Edges, [2]int{from, to})
		}
	}
	return g, nil
}

// canonical returns the version string as Node versions print it, so that
// "4.16.03"-style oddities still match; unparsable text is kept as is.
func canonical(s string) string {
	if v, err := semver.StrictNewVersion(s); err == nil {
		return v.String()
	}
	return s
}

// Versions returns the graph's versions, lowest first.
func (g *Graph) Versions() []*semver.Version {
	vs := make([]*semver.Version, 0, len(g.Nodes))
	for _, n := range g.Nodes {
		vs = append(vs, n.Version)
	}
	slices.SortFunc(vs, func(a, b *semver.Version) int { return a.Compare(b) })
	return vs
}

// node returns the index of the node with version v, or -1.
func (g *Graph) node(v *semver.Version) int {
	return slices.IndexFunc(g.Nodes, func(n Node) bool { return n.Version.Equal(v) })
}

// Channels returns the channel names the graph's releases say they belong to.
func (g *Graph) Channels() []string {
	seen := map[string]bool{}
	for _, n := range g.Nodes {
		for c := range strings.SplitSeq(n.Metadata[channelsMetadataKey], ",") {
			if c = strings.TrimSpace(c); c != "" {
				seen[c] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// shortestPath returns the node indexes of a shortest upgrade path from
// node from to node to, both included, or nil when there is none. Among
// equally short paths it prefers higher versions at each step, as
// oc-mirror does, so the answer does not depend on edge order.
func (g *Graph) shortestPath(from, to int) []int {
	next := make(map[int][]int)
	for _, e := range g.Edges {
		next[e[0]] = append(next[e[0]], e[1])
	}
	for k, ds := range next {
		slices.SortFunc(ds, func(a, b int) int { return g.Nodes[b].Version.Compare(g.Nodes[a].Version) })
		next[k] = slices.Compact(ds)
	}
	prev := map[int]int{from: -1}
	queue := []int{from}
	for len(queue) > 0 && queue[0] != to {
		n := queue[0]
		queue = queue[1:]
		for _, d := range next[n] {
			if _, seen := prev[d]; !seen {
				prev[d] = n
				queue = append(queue, d)
			}
		}
	}
	if _, ok := prev[to]; !ok {
		return nil
	}
	var path []int
	for n := to; n != -1; n = prev[n] {
		path = append(path, n)
	}
	slices.Reverse(path)
	return path
}
