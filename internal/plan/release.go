package plan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-mirror/ferry/internal/imageset"
	"github.com/ferry-mirror/ferry/internal/release"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// Releases collects mirror.platform: the release images the channels
// select (or platform.release), every component their image-references
// name, and the KubeVirt boot image when asked. A release whose contents
// cannot be read or whose signature does not verify is listed as missing,
// with its components, and the others go on.
type Releases struct {
	Platform imageset.Platform
	Graphs   release.GraphSource
	Src      Source
	// Verifier checks signatures; nil skips the check
	// (--ignore-release-signature).
	Verifier *release.Verifier
	Parallel int
	Log      *slog.Logger

	mu sync.Mutex
	// Signed holds the verified signatures of the collected releases.
	Signed []release.Signed
	// Picked lists the releases collected, with the versions their images
	// state.
	Picked []release.Release
}

// Section implements Collector.
func (*Releases) Section() string { return SectionRelease }

// Arches returns the release architectures the platform section names.
// platforms selects the multi payload, as in oc-mirror: it is the one
// release that is a manifest list of every architecture.
func Arches(p imageset.Platform) ([]release.Arch, error) {
	if len(p.Platforms) > 0 {
		return []release.Arch{release.Multi}, nil
	}
	names := p.Architectures
	if len(names) == 0 {
		names = []string{string(release.AMD64)}
	}
	var out []release.Arch
	seen := map[release.Arch]bool{}
	for _, n := range names {
		a, err := release.ParseArch(n)
		if err != nil {
			return nil, fmt.Errorf("mirror.platform: %w", err)
		}
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out, nil
}

// Collect implements Collector.
func (c *Releases) Collect(ctx context.Context) (Collected, error) {
	reqs, err := c.requests(ctx)
	return Collected{Requests: reqs}, err
}

func (c *Releases) requests(ctx context.Context) ([]Request, error) {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	arches, err := Arches(c.Platform)
	if err != nil {
		return nil, err
	}
	var rels []release.Release
	switch {
	case c.Platform.Release != "":
		// As in oc-mirror, one release by reference replaces the channels.
		if len(c.Platform.Channels) > 0 {
			c.Log.Warn("mirror.platform.release is set, so channels are ignored", "release", c.Platform.Release, "channels", len(c.Platform.Channels))
		}
		rels = append(rels, release.Release{Payload: c.Platform.Release, Type: release.TypeOCP})
	case len(c.Platform.Channels) > 0:
		chans := make([]release.Channel, 0, len(c.Platform.Channels))
		for _, ch := range c.Platform.Channels {
			chans = append(chans, release.Channel{Name: ch.Name, Type: ch.Type, MinVersion: ch.MinVersion, MaxVersion: ch.MaxVersion, ShortestPath: ch.ShortestPath, Full: ch.Full})
		}
		for _, a := range arches {
			rs, err := release.Select(ctx, c.Graphs, chans, a, c.Log)
			if err != nil {
				return nil, err
			}
			for _, r := range rs {
				c.Log.Info("release selected", "version", r.Version, "arch", r.Arch, "payload", r.Payload)
			}
			rels = append(rels, rs...)
		}
	case c.Platform.Graph:
		// graph: true alone mirrors the update graph image only.
		c.Log.Info("mirror.platform lists no channels or release: only the update graph image is mirrored")
		return nil, nil
	}
	if len(rels) == 0 {
		return nil, errors.New("mirror.platform selects no release: add channels or release")
	}
	if len(c.Platform.Platforms) > 0 {
		c.Log.Warn("mirror.platform.platforms: the multi-architecture payload is mirrored with every platform it holds; "+
			"clusters and release signatures pin its manifest lists by digest, which a list cut down to some platforms would change",
			"platforms", platformNames(c.Platform.Platforms))
	}
	kubeVirt := c.kubeVirtArches()
	out := make([][]Request, len(rels))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(c.Parallel, 1))
	for i, r := range rels {
		g.Go(func() error {
			reqs, err := c.collectOne(gctx, r, kubeVirt)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				c.Log.Error("release cannot be mirrored", "release", r.Payload, "version", r.Version, "arch", r.Arch, "error", err)
				reqs = []Request{{Section: SectionRelease, Name: r.Payload, Failed: err.Error()}}
			}
			out[i] = reqs
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var reqs []Request
	for _, rs := range out {
		reqs = append(reqs, rs...)
	}
	return reqs, nil
}

// collectOne reads one release image and returns its requests, with the
// KubeVirt images of the kubeVirt architectures.
func (c *Releases) collectOne(ctx context.Context, r release.Release, kubeVirt []release.Arch) ([]Request, error) {
	sr, err := splitRef(r.Payload)
	if err != nil {
		return nil, fmt.Errorf("release image %q is not a valid reference: %w", r.Payload, err)
	}
	host, path, ref := sr.host, sr.path, sr.ref
	reg, err := c.Src.Registry(host)
	if err != nil {
		return nil, err
	}
	m, err := reg.GetManifest(ctx, path, ref)
	if transfer.IsNotFound(err) {
		return nil, fmt.Errorf("release image %s not found in %s", r.Payload, host)
	}
	if err != nil {
		return nil, fmt.Errorf("release image %s: %w", r.Payload, err)
	}
	// Pinned by digest, so mirror sets are IDMS entries and the
	// signature is checked for exactly what is copied.
	pinned := host + "/" + path + "@" + m.Digest.String()
	var img v1.Image
	byRef := r.Arch == ""
	if m.IsIndex() {
		if byRef {
			r.Arch = release.Multi
		}
		if r.Arch != release.Multi {
			return nil, fmt.Errorf("release image %s is a manifest list, but architecture %s asks for a single-architecture release; use architectures: [multi]", r.Payload, r.Arch)
		}
		idx, err := RemoteIndex(ctx, reg, path, m)
		if err != nil {
			return nil, err
		}
		if img, err = release.ImageForContents(idx); err != nil {
			return nil, fmt.Errorf("release image %s: %w", r.Payload, err)
		}
	} else if img, err = RemoteImage(ctx, reg, path, m); err != nil {
		return nil, err
	} else if byRef {
		// platform.release names the architecture only through the image.
		if r.Arch, err = imageArch(img); err != nil {
			return nil, fmt.Errorf("release image %s: %w", r.Payload, err)
		}
	}
	contents, err := release.ReadContents(img, r.Payload)
	if err != nil {
		return nil, err
	}
	if r.Version != "" && contents.Version != r.Version {
		return nil, fmt.Errorf("release image %s says it is %s, but the graph lists it as %s; the graph server or the image is wrong", r.Payload, contents.Version, r.Version)
	}
	r.Version, r.Payload = contents.Version, pinned
	if c.Verifier != nil {
		h, err := v1.NewHash(m.Digest.String())
		if err != nil {
			return nil, err
		}
		signed, err := c.Verifier.FetchAndVerify(ctx, h)
		if err != nil {
			return nil, fmt.Errorf("release %s (%s): %w", r.Version, r.Arch, err)
		}
		c.mu.Lock()
		c.Signed = append(c.Signed, *signed)
		c.mu.Unlock()
	}
	maps := release.Mappings("", r, contents, kubeVirt, c.Log)
	reqs := make([]Request, 0, len(maps))
	for _, mp := range maps {
		reqs = append(reqs, Request{Section: SectionRelease, Name: mp.Source, TargetRepo: mp.Repo, TargetTag: mp.Tag})
	}
	c.mu.Lock()
	c.Picked = append(c.Picked, r)
	c.mu.Unlock()
	c.Log.Info("release read", "version", r.Version, "arch", r.Arch, "components", len(contents.Components))
	return reqs, nil
}

// kubeVirtArches lists the architectures whose KubeVirt image is wanted
// with every release, as oc-mirror asks: none without kubeVirtContainer,
// else those of platforms, or of architectures (default amd64).
func (c *Releases) kubeVirtArches() []release.Arch {
	if !c.Platform.KubeVirtContainer {
		return nil
	}
	if len(c.Platform.Platforms) == 0 {
		arches, err := Arches(c.Platform)
		if err != nil {
			return nil // Collect has refused the architectures already
		}
		return arches
	}
	var out []release.Arch
	for _, p := range c.Platform.Platforms {
		a, err := release.ParseArch(p.Architecture)
		if err != nil || a == release.Multi {
			c.Log.Warn("kubeVirtContainer: no KubeVirt image exists for this platform; skipped", "architecture", p.Architecture)
			continue
		}
		out = append(out, a)
	}
	return out
}

// imageArch maps a single-architecture release image's config to the
// release architecture.
func imageArch(img v1.Image) (release.Arch, error) {
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	a, err := release.ParseArch(cfg.Architecture)
	if err != nil {
		return "", fmt.Errorf("image architecture: %w", err)
	}
	return a, nil
}

func platformNames(ps []imageset.PlatformSpec) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, strings.Trim(p.OS+"/"+p.Architecture+"/"+p.Variant, "/"))
	}
	return out
}
