package console

import (
	"context"
	"net/http"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/release"
	"github.com/ferry-mirror/ferry/internal/store"
)

// releaseFacts is what a release image says about itself; it never
// changes for a digest, so it is cached by digest.
type releaseFacts struct {
	Version    string
	Channels   []string
	Arches     []string
	Components []release.Component
	Err        string
}

// releaseRow is one mirrored release as the page shows it.
type releaseRow struct {
	Repo, Tag, Digest string
	Version           string
	Arches            []string
	Channel           string
	Components        int
	Missing           []string // components not in the mirror, by name
	Hidden            bool     // the user may not pull the components repository
	Complete          bool
	Err               string
	// Signature: "written" when a run report says its signature went into
	// signature-configmap.yaml, "not written", or "" when no report is known.
	Signature string
}

// releaseRepos finds the repositories oc-mirror and ferry mirror put
// release images in: <prefix>/openshift/release-images.
func (c *Console) releaseRepos(ctx context.Context, r *request) ([]string, error) {
	return c.allRepos(ctx, func(name string) bool {
		return (name == release.ReleaseImagesRepo || strings.HasSuffix(name, "/"+release.ReleaseImagesRepo)) && r.canPull(name)
	})
}

// allRepos lists, in order, every repository of the mirror that keep
// says to, reading the names a page at a time.
func (c *Console) allRepos(ctx context.Context, keep func(name string) bool) ([]string, error) {
	var out []string
	last := ""
	for {
		batch, err := c.meta.Repositories(ctx, last, 1000)
		if err != nil {
			return nil, err
		}
		for _, name := range batch {
			if keep(name) {
				out = append(out, name)
			}
		}
		if len(batch) < 1000 {
			return out, nil
		}
		last = batch[len(batch)-1]
	}
}

// facts reads a release image (the first platform of a multi-arch index).
func (c *Console) releaseFacts(ctx context.Context, repo string, m *store.Manifest) *releaseFacts {
	if f := c.releases.get(m.Digest); f != nil {
		return f
	}
	f := &releaseFacts{}
	d, err := parseManifest(m)
	img := m
	if err == nil && d.isIndex() {
		for _, ch := range d.Manifests {
			if p := ch.Platform; p != nil {
				f.Arches = append(f.Arches, p.Architecture)
			}
		}
		if len(d.Manifests) == 0 {
			f.Err = "empty index"
		} else if cd, perr := digest.Parse(d.Manifests[0].Digest); perr != nil {
			err = perr
		} else {
			img, err = c.meta.Manifest(ctx, repo, cd)
		}
	}
	if err == nil && f.Err == "" {
		var contents *release.Contents
		vi, verr := c.v1Image(ctx, repo, img)
		if verr != nil {
			err = verr
		} else if contents, err = release.ReadContents(vi, repo+"@"+img.Digest.String()); err == nil {
			f.Version, f.Components, f.Channels = contents.Version, contents.Components, contents.Channels
			if len(f.Arches) == 0 {
				if cfg, cerr := vi.ConfigFile(); cerr == nil {
					f.Arches = []string{cfg.Architecture}
				}
			}
		}
	}
	if err != nil {
		f.Err = err.Error()
		return f // not cached: a missing blob may arrive later
	}
	c.releases.put(m.Digest, f)
	return f
}

func (c *Console) releasesView(w http.ResponseWriter, r *request) {
	ctx := r.Context()
	repos, err := c.releaseRepos(ctx, r)
	if err != nil {
		c.internal(w, r, "finding release repositories", err)
		return
	}
	signed, reported := c.signedReleases(ctx, r)
	var rows []releaseRow
	for _, repo := range repos {
		tags, err := c.meta.Tags(ctx, repo, "", 1000)
		if err != nil {
			c.internal(w, r, "listing releases", err)
			return
		}
		compRepo := strings.TrimSuffix(repo, release.ReleaseImagesRepo) + release.ComponentsRepo
		for _, tag := range tags {
			m, err := c.meta.TaggedManifest(ctx, repo, tag)
			if err != nil {
				continue // deleted since listed
			}
			f := c.releaseFacts(ctx, repo, m)
			row := releaseRow{Repo: repo, Tag: tag, Digest: m.Digest.String(), Version: f.Version,
				Arches: f.Arches, Components: len(f.Components), Err: f.Err, Channel: strings.Join(f.Channels, ", ")}
			if f.Err == "" {
				if !r.canPull(compRepo) {
					row.Hidden = true
				} else if row.Missing, err = c.missingComponents(ctx, compRepo, f.Components); err != nil {
					c.internal(w, r, "checking release components", err)
					return
				}
				row.Complete = !row.Hidden && len(row.Missing) == 0
			}
			switch {
			case signed[row.Digest]:
				row.Signature = "written"
			case reported:
				row.Signature = "not written"
			}
			rows = append(rows, row)
		}
	}
	sort.SliceStable(rows, func(i, j int) bool { return newer(rows[i].Version, rows[j].Version) })
	c.render(w, r, http.StatusOK, "releases", "Releases", rows)
}

// missingComponents names the components whose manifest is not in repo.
func (c *Console) missingComponents(ctx context.Context, repo string, comps []release.Component) ([]string, error) {
	byDigest := map[digest.Digest][]string{}
	var ds []digest.Digest
	for _, comp := range comps {
		_, dg, _ := strings.Cut(comp.Image, "@")
		d, err := digest.Parse(dg)
		if err != nil {
			continue
		}
		if _, ok := byDigest[d]; !ok {
			ds = append(ds, d)
		}
		byDigest[d] = append(byDigest[d], comp.Name)
	}
	missing, err := c.meta.MissingManifests(ctx, repo, ds)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, d := range missing {
		names = append(names, byDigest[d]...)
	}
	sort.Strings(names)
	return names, nil
}

// newer orders versions newest first: by semver when both parse, else as
// strings.
func newer(a, b string) bool {
	va, erra := semver.NewVersion(a)
	vb, errb := semver.NewVersion(b)
	if erra != nil || errb != nil {
		return a > b
	}
	return va.GreaterThan(vb)
}
