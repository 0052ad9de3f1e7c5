package release

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// Channel is one platform.channels entry of an ImageSetConfiguration.
type Channel struct {
	Name         string
	Type         string // ocp (default) or okd
	MinVersion   string
	MaxVersion   string
	ShortestPath bool
	Full         bool
}

// Release is one release picked for mirroring.
type Release struct {
	Version string
	// Payload is the release image as the graph names it.
	Payload string
	Arch    Arch
	Type    string
}

// selection is what one channel contributed, with the bounds it resolved.
type selection struct {
	ch       Channel
	graph    *Graph
	min, max *semver.Version
	nodes    []int
}

// Select returns the releases to mirror for channels on arch, lowest
// version first, as oc-mirror v2 selects them:
//   - neither bound and full unset: heads only, the channel's newest release;
//   - otherwise every release from minVersion (default the channel's
//     lowest) to maxVersion (default its highest), or only those on a
//     shortest upgrade path between them when shortestPath is set. A bound
//     need not be a release of the channel: it only limits the range;
//   - with several OCP channels, the releases on the upgrade path from the
//     lowest selected release to the highest, across the channels between
//     them, as oc-mirror computes it.
//
// A channel whose range holds no release is reported in the log; Select
// fails only when no channel selects anything.
func Select(ctx context.Context, src GraphSource, channels []Channel, arch Arch, log *slog.Logger) ([]Release, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if _, err := ParseArch(string(arch)); err != nil {
		return nil, err
	}
	picked := map[string]Release{}
	add := func(g *Graph, typ string, idx ...int) {
		for _, i := range idx {
			n := g.Nodes[i]
			picked[n.Version.String()+" "+n.Payload] = Release{Version: n.Version.String(), Payload: n.Payload, Arch: arch, Type: typ}
		}
	}
	var ocp []selection
	var empty []string
	for _, ch := range channels {
		if ch.Type == "" {
			ch.Type = TypeOCP
		}
		s, err := selectChannel(ctx, src, ch, arch, log)
		if err != nil {
			return nil, err
		}
		if len(s.nodes) == 0 {
			msg := fmt.Sprintf("channel %s has no release from %s to %s for %s; it offers %s", ch.Name, s.min, s.max, arch, describeVersions(s.graph.Versions(), ch.Name))
			log.Warn("channel selects no release", "channel", ch.Name, "arch", arch, "detail", msg)
			empty = append(empty, msg)
			continue
		}
		add(s.graph, ch.Type, s.nodes...)
		if ch.Type == TypeOCP {
			ocp = append(ocp, s)
		}
	}
	if len(ocp) > 1 {
		g, idx, err := crossChannel(ctx, src, ocp, arch, log)
		if err != nil {
			return nil, fmt.Errorf("upgrade path across channels: %w", err)
		}
		for i := range g {
			add(g[i], TypeOCP, idx[i]...)
		}
	}
	if len(picked) == 0 && len(empty) > 0 {
		return nil, fmt.Errorf("%s: widen minVersion and maxVersion", strings.Join(empty, "; "))
	}
	out := make([]Release, 0, len(picked))
	for _, r := range picked {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Release) int {
		if c := semver.MustParse(a.Version).Compare(semver.MustParse(b.Version)); c != 0 {
			return c
		}
		return strings.Compare(a.Payload, b.Payload)
	})
	return out, nil
}

// selectChannel picks one channel's releases. On return min and max are
// the lowest and highest releases selected, so the cross-channel path
// starts and ends on releases, whatever bounds were configured.
func selectChannel(ctx context.Context, src GraphSource, ch Channel, arch Arch, log *slog.Logger) (selection, error) {
	g, err := src.Graph(ctx, GraphKey{Type: ch.Type, Channel: ch.Name, Arch: arch})
	if err != nil {
		return selection{}, err
	}
	vs := g.Versions()
	if len(vs) == 0 {
		return selection{}, fmt.Errorf("channel %s has no releases for %s: check the channel name and architecture (ferry list releases --channels --version=<x.y> shows the channels)", ch.Name, arch)
	}
	s := selection{ch: ch, graph: g, min: vs[0], max: vs[len(vs)-1]}
	if ch.MaxVersion != "" {
		if s.max, err = bound(ch, "maxVersion", ch.MaxVersion); err != nil {
			return selection{}, err
		}
	}
	switch {
	case ch.MinVersion != "":
		if s.min, err = bound(ch, "minVersion", ch.MinVersion); err != nil {
			return selection{}, err
		}
	case !ch.Full && ch.MaxVersion == "":
		s.min = s.max // heads only
	}
	if s.max.LessThan(s.min) {
		return selection{}, fmt.Errorf("channel %s: maxVersion %s is below minVersion %s; swap them or widen the range", ch.Name, s.max, s.min)
	}
	var in []int
	for i, n := range g.Nodes {
		if !n.Version.LessThan(s.min) && !n.Version.GreaterThan(s.max) {
			in = append(in, i)
		}
	}
	if len(in) == 0 {
		return s, nil
	}
	slices.SortFunc(in, func(a, b int) int { return g.Nodes[a].Version.Compare(g.Nodes[b].Version) })
	from, to := in[0], in[len(in)-1]
	s.min, s.max = g.Nodes[from].Version, g.Nodes[to].Version
	if !ch.ShortestPath || from == to {
		s.nodes = in
		return s, nil
	}
	s.nodes = g.shortestPath(from, to)
	if s.nodes == nil {
		// oc-mirror keeps both ends when no path joins them.
		log.Warn("no upgrade path; mirroring both ends only", "channel", ch.Name, "from", s.min, "to", s.max, "arch", arch)
		s.nodes = []int{from, to}
	}
	return s, nil
}

// bound parses a configured minVersion or maxVersion. It need not be a
// release of the channel: oc-mirror uses it as a range bound.
func bound(ch Channel, field, value string) (*semver.Version, error) {
	v, err := semver.StrictNewVersion(value)
	if err != nil {
		return nil, fmt.Errorf("channel %s: %s %q is not a version (want major.minor.patch, e.g. 4.16.3)", ch.Name, field, value)
	}
	return v, nil
}

// describeVersions lists a channel's versions, shortened when long.
func describeVersions(vs []*semver.Version, channel string) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = v.String()
	}
	if len(s) <= 12 {
		return strings.Join(s, ", ")
	}
	return fmt.Sprintf("%s, %s, ..., %s (%d releases; ferry list releases --channel=%s shows them all)",
		s[0], s[1], s[len(s)-1], len(s), channel)
}

// crossChannel follows oc-mirror: from the lowest selected release, along
// the lower channel to its newest release, then channel by channel one
// minor version at a time (prefix-X.Y+1, ...) to the highest selected
// release. A channel that does not hold the release reached so far blocks
// the path; then only the target release is added. It returns, per graph
// visited, the node indexes to add.
func crossChannel(ctx context.Context, src GraphSource, sels []selection, arch Arch, log *slog.Logger) ([]*Graph, [][]int, error) {
	first, last := sels[0], sels[0]
	for _, s := range sels[1:] {
		if s.min.LessThan(first.min) {
			first = s
		}
		if s.max.GreaterThan(last.max) {
			last = s
		}
	}
	if first.ch.Name == last.ch.Name {
		return nil, nil, nil
	}
	var graphs []*Graph
	var nodes [][]int
	path := func(g *Graph, from, to *semver.Version) {
		f, t := g.node(from), g.node(to)
		if f < 0 || t < 0 {
			return
		}
		p := g.shortestPath(f, t)
		if p == nil {
			log.Warn("no upgrade path", "from", from, "to", to)
			p = []int{f, t}
		}
		graphs, nodes = append(graphs, g), append(nodes, p)
	}
	prefix, srcMinor, err := channelMinor(first.ch.Name)
	if err != nil {
		return nil, nil, err
	}
	_, dstMinor, err := channelMinor(last.ch.Name)
	if err != nil {
		return nil, nil, err
	}
	if srcMinor[0] != dstMinor[0] {
		return nil, nil, fmt.Errorf("channels %s and %s differ in major version; list the releases of each channel separately", first.ch.Name, last.ch.Name)
	}
	if srcMinor[1] == dstMinor[1] {
		// Same X.Y under other names (fast-4.16, stable-4.16).
		if last.graph.node(first.min) < 0 {
			log.Warn("no upgrade path", "from", first.min, "channel", last.ch.Name)
			return nil, nil, nil
		}
		path(last.graph, first.min, last.max)
		return graphs, nodes, nil
	}
	if srcMinor[1] > dstMinor[1] {
		return nil, nil, nil // the lowest release sits in the higher channel: nothing to bridge
	}
	start := first.graph.Versions()
	at := start[len(start)-1]
	path(first.graph, first.min, at)
	for minor := srcMinor[1] + 1; minor <= dstMinor[1]; minor++ {
		g, target := last.graph, last.max
		if minor < dstMinor[1] {
			name := fmt.Sprintf("%s-%d.%d", prefix, srcMinor[0], minor)
			if g, err = src.Graph(ctx, GraphKey{Type: TypeOCP, Channel: name, Arch: arch}); err != nil {
				return nil, nil, err
			}
			vs := g.Versions()
			if len(vs) == 0 {
				return nil, nil, fmt.Errorf("the path from %s to %s passes through channel %s, which has no releases for %s; check it with ferry list releases --channel=%s", first.ch.Name, last.ch.Name, name, arch, name)
			}
			target = vs[len(vs)-1]
		}
		if g.node(at) < 0 {
			log.Warn("upgrade path blocked", "release", at, "target", target)
			idx := last.graph.node(last.max)
			graphs, nodes = append(graphs, last.graph), append(nodes, []int{idx})
			return graphs, nodes, nil
		}
		path(g, at, target)
		at = target
	}
	return graphs, nodes, nil
}

// channelMinor splits "stable-4.16" into "stable" and [4 16].
func channelMinor(name string) (string, [2]int, error) {
	i := strings.LastIndex(name, "-")
	if i < 0 {
		return "", [2]int{}, fmt.Errorf("channel name %q has no -X.Y version suffix, so no upgrade path can be planned across it", name)
	}
	major, minor, ok := strings.Cut(name[i+1:], ".")
	a, errA := strconv.Atoi(major)
	b, errB := strconv.Atoi(minor)
	if !ok || errA != nil || errB != nil {
		return "", [2]int{}, fmt.Errorf("channel name %q does not end in -X.Y, so no upgrade path can be planned across it", name)
	}
	return name[:i], [2]int{a, b}, nil
}
