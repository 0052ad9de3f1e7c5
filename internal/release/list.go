package release

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// OCPReleaseRepo is where OpenShift release images are published; its tags
// tell which X.Y versions exist.
const OCPReleaseRepo = "quay.io/openshift-release-dev/ocp-release"

// ListQuery is `ferry list releases` as oc-mirror's `list releases` reads
// its flags.
type ListQuery struct {
	Channel  string // --channel
	Version  string // --version, X.Y
	Channels bool   // --channels
	Arches   []Arch // --filter-by-archs; default amd64
}

// ListMode says what a query lists.
type ListMode int

// What `list releases` prints, depending on the flags.
const (
	// ListMinorVersions: no flags; the X.Y versions of OCPReleaseRepo.
	ListMinorVersions ListMode = iota
	// ListChannelNames: --channels --version=X.Y; the channels of X.Y.
	ListChannelNames
	// ListChannelVersions: --channel, or --version alone for stable-X.Y.
	ListChannelVersions
)

// Resolve checks the flags and fills in the defaults: --version alone
// means --channel=stable-<version>; --channels needs --version.
func (q ListQuery) Resolve() (ListQuery, ListMode, error) {
	if q.Channels && q.Version == "" {
		return q, 0, errors.New("--channels needs --version, such as --version=4.16")
	}
	if q.Version != "" && !regexp.MustCompile(`^\d+\.\d+$`).MatchString(q.Version) {
		return q, 0, fmt.Errorf("--version %q: want major.minor, such as 4.16", q.Version)
	}
	if q.Version != "" && q.Channel == "" {
		q.Channel = "stable-" + q.Version
	}
	if len(q.Arches) == 0 {
		q.Arches = []Arch{AMD64}
	}
	for _, a := range q.Arches {
		if _, err := ParseArch(string(a)); err != nil {
			return q, 0, err
		}
	}
	switch {
	case q.Channels:
		return q, ListChannelNames, nil
	case q.Channel != "":
		return q, ListChannelVersions, nil
	default:
		return q, ListMinorVersions, nil
	}
}

// ChannelVersions returns the versions a channel offers for arch, lowest
// first.
func ChannelVersions(ctx context.Context, src GraphSource, typ, channel string, arch Arch) ([]string, error) {
	g, err := src.Graph(ctx, GraphKey{Type: typ, Channel: channel, Arch: arch})
	if err != nil {
		return nil, err
	}
	vs := g.Versions()
	if len(vs) == 0 {
		return nil, fmt.Errorf("channel %s has no releases for %s; ferry list releases --channels --version=<x.y> shows the channels", channel, arch)
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.String()
	}
	return out, nil
}

// ChannelNames returns the channels that the releases of channel (for
// --channels --version=X.Y, stable-X.Y) belong to, as their graph
// metadata says. Channels are the same for every architecture.
func ChannelNames(ctx context.Context, src GraphSource, channel string) ([]string, error) {
	g, err := src.Graph(ctx, GraphKey{Type: TypeOCP, Channel: channel, Arch: AMD64})
	if err != nil {
		return nil, err
	}
	names := g.Channels()
	if len(names) == 0 {
		return nil, fmt.Errorf("no channels found from %s; check the version", channel)
	}
	return names, nil
}

// MinorVersions returns the X.Y versions found in release image tags
// (4.16.3-x86_64, ...), lowest first; signature tags and tags that are
// not X.Y.Z... are skipped.
func MinorVersions(tags []string) []string {
	re := regexp.MustCompile(`^(\d+)\.(\d+)\.`)
	type xy struct{ x, y int }
	seen := map[xy]bool{}
	for _, t := range tags {
		if strings.HasSuffix(t, ".sig") {
			continue
		}
		m := re.FindStringSubmatch(t)
		if m == nil {
			continue
		}
		x, _ := strconv.Atoi(m[1])
		y, _ := strconv.Atoi(m[2])
		seen[xy{x, y}] = true
	}
	vs := make([]xy, 0, len(seen))
	for v := range seen {
		vs = append(vs, v)
	}
	slices.SortFunc(vs, func(a, b xy) int {
		if a.x != b.x {
			return a.x - b.x
		}
		return a.y - b.y
	})
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fmt.Sprintf("%d.%d", v.x, v.y)
	}
	return out
}
