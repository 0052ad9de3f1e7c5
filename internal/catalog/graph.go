package catalog

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// node is one bundle name in a channel's upgrade graph. Edges come from
// replaces and skips only: like operator-registry, which decides channel
// heads the same way, skipRange adds no edge between catalog entries (it
// lets the cluster upgrade from installed versions the catalog may not hold).
type node struct {
	name     string
	inChan   bool // false for a replaces/skips target the channel does not list
	replaces *node
	skips    []*node
	in       int
}

type graph struct {
	head  *node
	nodes map[string]*node
}

// newGraph checks the channel the way opm validates one: every name once,
// no self edges, exactly one head (the entry nothing replaces or skips),
// and no cycle.
func newGraph(ch *Channel) (*graph, error) {
	if len(ch.Entries) == 0 {
		return nil, errors.New("channel has no entries")
	}
	g := &graph{nodes: make(map[string]*node, len(ch.Entries))}
	get := func(name string) *node {
		n := g.nodes[name]
		if n == nil {
			n = &node{name: name}
			g.nodes[name] = n
		}
		return n
	}
	var errs []error
	for _, e := range ch.Entries {
		n := get(e.Name)
		if n.inChan {
			errs = append(errs, fmt.Errorf("bundle %s is listed twice", e.Name))
			continue
		}
		n.inChan = true
		if e.Replaces != "" {
			if e.Replaces == e.Name {
				errs = append(errs, fmt.Errorf("bundle %s replaces itself", e.Name))
			} else {
				n.replaces = get(e.Replaces)
				n.replaces.in++
			}
		}
		seen := map[string]bool{}
		for _, s := range e.Skips {
			if s == e.Name {
				errs = append(errs, fmt.Errorf("bundle %s skips itself", e.Name))
				continue
			}
			if seen[s] {
				continue
			}
			seen[s] = true
			t := get(s)
			t.in++
			n.skips = append(n.skips, t)
		}
	}
	var heads []string
	for _, e := range ch.Entries {
		if n := g.nodes[e.Name]; n.in == 0 && g.head != n {
			heads = append(heads, e.Name)
			g.head = n
		}
	}
	switch {
	case len(heads) == 0:
		errs = append(errs, errors.New("no channel head: every bundle is replaced or skipped by another, so the upgrade graph has a cycle"))
	case len(heads) > 1:
		sort.Strings(heads)
		errs = append(errs, fmt.Errorf("multiple channel heads: %s; exactly one bundle may be neither replaced nor skipped", strings.Join(heads, ", ")))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := g.acyclic(); err != nil {
		return nil, err
	}
	return g, nil
}

// acyclic removes edges from the head down (Kahn's algorithm); an edge left
// over belongs to a cycle.
func (g *graph) acyclic() error {
	in := make(map[*node]int, len(g.nodes))
	for _, n := range g.nodes {
		in[n] = n.in
	}
	queue := []*node{g.head}
	visited := 0
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		visited++
		next := n.skips
		if n.replaces != nil {
			next = append([]*node{n.replaces}, n.skips...)
		}
		for _, t := range next {
			in[t]--
			if in[t] == 0 {
				queue = append(queue, t)
			}
		}
	}
	if visited != len(g.nodes) {
		var stuck []string
		for n, c := range in {
			if c > 0 {
				stuck = append(stuck, n.name)
			}
		}
		sort.Strings(stuck)
		return fmt.Errorf("the upgrade graph has a cycle through %s", strings.Join(stuck, ", "))
	}
	return nil
}

// chain is the replaces chain from the head down.
func (g *graph) chain() []*node {
	var c []*node
	for n := g.head; n != nil; n = n.replaces {
		c = append(c, n)
	}
	return c
}

// keepRange selects the bundles of a version range the way oc-mirror v2's
// filter does, so that the kept channel still has one head and no gap:
//   - down the replaces chain, each node counts the in-range bundles at or
//     below it (itself, its skips, and everything under its replaces), each
//     bundle counted once, at the lowest node that reaches it;
//   - the new head is the lowest node whose count is the total; the new tail
//     is the first node, from the top, whose count is 0 (it is not kept);
//   - kept: the chain from the new head down to the tail, plus the
//     in-range bundles those nodes skip.
//
// Chain nodes kept although outside the range (needed to link the range)
// are returned as warnings.
func (g *graph) keepRange(inRange func(name string) bool) (keep map[string]bool, warnings []string) {
	chain := g.chain()
	counts := make([]int, len(chain))
	counted := map[string]bool{}
	count := func(n *node) int {
		if n.inChan && !counted[n.name] && inRange(n.name) {
			counted[n.name] = true
			return 1
		}
		return 0
	}
	for i := len(chain) - 1; i >= 0; i-- {
		c := 0
		if i+1 < len(chain) {
			c = counts[i+1]
		}
		c += count(chain[i])
		for _, s := range chain[i].skips {
			c += count(s)
		}
		counts[i] = c
	}
	keep = map[string]bool{}
	if len(chain) == 0 || counts[0] == 0 {
		return keep, nil
	}
	head, tail := 0, len(chain)
	for i, c := range counts {
		if c == counts[0] {
			head = i
		}
		if c == 0 {
			tail = i
			break
		}
	}
	for _, n := range chain[head:tail] {
		if !n.inChan {
			continue
		}
		keep[n.name] = true
		if !inRange(n.name) {
			warnings = append(warnings, fmt.Sprintf("bundle %s is outside the version range but kept: it links the bundles in the range to the channel head", n.name))
		}
		for _, s := range n.skips {
			if s.inChan && inRange(s.name) {
				keep[s.name] = true
			}
		}
	}
	return keep, warnings
}
