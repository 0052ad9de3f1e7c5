package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-mirror/ferry/internal/store"
)

// pageSize is the number of rows of every paged list.
const pageSize = 50

// untaggedScan bounds the manifests one page reads looking for those
// pushed by digest; the page offers to continue after them.
const untaggedScan = 2000

// maxScan bounds the repositories one request reads while filtering, so a
// search that matches little still answers quickly; the page then offers
// to continue from where the scan stopped.
const maxScan = 5000

type repoList struct {
	Query string
	Repos []store.RepositoryInfo
	Known bool   // sizes and push times are known (the store lists them)
	Next  string // ?after= of the next page, "" at the end
}

// visibleRepos returns up to n repositories after after that r may pull
// and whose name contains q, and where the next page starts.
func (c *Console) visibleRepos(ctx context.Context, r *request, q, after string, n int) ([]string, string, error) {
	var out []string
	scanned := 0
	for {
		batch, err := c.meta.Repositories(ctx, after, 1000)
		if err != nil {
			return nil, "", err
		}
		for _, name := range batch {
			after = name
			scanned++
			if r.canPull(name) && strings.Contains(name, q) {
				out = append(out, name)
				if len(out) == n {
					return out, after, nil
				}
			}
		}
		if len(batch) < 1000 {
			return out, "", nil
		}
		if scanned >= maxScan {
			return out, after, nil
		}
	}
}

func (c *Console) repositories(w http.ResponseWriter, r *request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	names, next, err := c.visibleRepos(r.Context(), r, q, r.URL.Query().Get("after"), pageSize)
	if err != nil {
		c.internal(w, r, "listing repositories", err)
		return
	}
	l := repoList{Query: q, Next: next}
	if lst, ok := c.meta.(store.Listing); ok {
		if l.Repos, err = lst.RepositoryInfos(r.Context(), names); err != nil {
			c.internal(w, r, "describing repositories", err)
			return
		}
		l.Known = true
	} else {
		for _, n := range names {
			l.Repos = append(l.Repos, store.RepositoryInfo{Name: n})
		}
	}
	c.render(w, r, http.StatusOK, "repositories", "Repositories", l)
}

// manifestDoc is the part of a manifest or index the console reads.
type manifestDoc struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType"`
	Config       *descriptor       `json:"config"`
	Layers       []descriptor      `json:"layers"`
	Manifests    []descriptor      `json:"manifests"`
	Subject      *descriptor       `json:"subject"`
	Annotations  map[string]string `json:"annotations"`
}

type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType"`
	Platform     *platform         `json:"platform"`
	Annotations  map[string]string `json:"annotations"`
}

type platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant"`
}

func (p *platform) String() string {
	if p == nil {
		return ""
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// imageConfig is the part of an image config the console shows.
type imageConfig struct {
	Architecture string    `json:"architecture"`
	OS           string    `json:"os"`
	Variant      string    `json:"variant"`
	Created      time.Time `json:"created"`
	Config       struct {
		Labels map[string]string `json:"Labels"`
	} `json:"config"`
}

func parseManifest(m *store.Manifest) (*manifestDoc, error) {
	var d manifestDoc
	if err := json.Unmarshal(m.Content, &d); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", m.Digest, err)
	}
	if d.MediaType == "" {
		d.MediaType = m.MediaType
	}
	return &d, nil
}

func (d *manifestDoc) isIndex() bool { return d.Config == nil && d.Manifests != nil }

// size is what pulling the manifest fetches besides itself: config and
// layers, or the children's manifests of an index.
func (d *manifestDoc) size() int64 {
	var n int64
	if d.Config != nil {
		n += d.Config.Size
	}
	for _, l := range d.Layers {
		n += l.Size
	}
	for _, m := range d.Manifests {
		n += m.Size
	}
	return n
}

// configMediaTypes are configs that are image configs (others, such as
// an artifact's, are not read).
var configMediaTypes = map[string]bool{
	"application/vnd.oci.image.config.v1+json":       true,
	"application/vnd.docker.container.image.v1+json": true,
}

// readBlob reads a small blob linked in repo.
func (c *Console) readBlob(ctx context.Context, repo, dg string, limit int64) ([]byte, error) {
	d, err := digest.Parse(dg)
	if err != nil {
		return nil, err
	}
	size, err := c.meta.BlobLink(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	if size > limit {
		return nil, fmt.Errorf("blob %s is %d bytes, more than %d", d, size, limit)
	}
	b, err := c.blobs.Open(ctx, d)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	return io.ReadAll(io.LimitReader(b, limit))
}

// config reads an image's config; nil for artifacts or unreadable ones.
func (c *Console) config(ctx context.Context, repo string, d *manifestDoc) *imageConfig {
	if d.Config == nil || !configMediaTypes[d.Config.MediaType] {
		return nil
	}
	b, err := c.readBlob(ctx, repo, d.Config.Digest, 4<<20)
	if err != nil {
		return nil
	}
	var cfg imageConfig
	if json.Unmarshal(b, &cfg) != nil {
		return nil
	}
	return &cfg
}

// platforms lists an image's platforms: its index's, or its config's.
func (c *Console) platforms(ctx context.Context, repo string, d *manifestDoc) []string {
	var out []string
	if d.isIndex() {
		for _, m := range d.Manifests {
			if p := m.Platform.String(); p != "" && p != "unknown/unknown" {
				out = append(out, p)
			}
		}
		return out
	}
	if cfg := c.config(ctx, repo, d); cfg != nil && cfg.OS != "" {
		p := platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
		out = append(out, p.String())
	}
	return out
}

type tagRow struct {
	Tag       string // "" for a manifest pushed by digest
	Digest    string
	MediaType string
	Kind      string
	Platforms []string
	Size      int64
	Pushed    time.Time
}

type repoView struct {
	Name     string
	Tags     []tagRow
	Next     string // ?after= of the next page of tags
	Untagged []tagRow
	NextM    string // ?mafter= of the next page of untagged manifests
	Known    bool   // push times and untagged manifests are known
}

// describe fills a row from the manifest it names.
func (c *Console) describe(ctx context.Context, repo string, row *tagRow, m *store.Manifest) {
	row.Digest, row.MediaType = m.Digest.String(), m.MediaType
	if d, err := parseManifest(m); err == nil {
		row.Kind, row.Size, row.Platforms = kind(d), d.size(), c.platforms(ctx, repo, d)
	}
	if strings.HasPrefix(row.Tag, "sha256-") && strings.HasSuffix(row.Tag, ".sig") {
		row.Kind = "signature" // cosign's tag scheme
	}
}

func (c *Console) repository(w http.ResponseWriter, r *request) {
	name := r.URL.Query().Get("name")
	if name == "" || !r.canPull(name) {
		// The same answer whether it exists or not: no hint to those who
		// may not pull it.
		c.fail(w, r, http.StatusNotFound, "No repository "+name+" that you may pull.")
		return
	}
	ctx := r.Context()
	v := repoView{Name: name}
	lst, listing := c.meta.(store.Listing)
	var err error
	if listing {
		err = c.repositoryListed(ctx, r, lst, &v)
	} else {
		err = c.repositoryTags(ctx, r, &v)
	}
	if errors.Is(err, store.ErrNotFound) {
		c.fail(w, r, http.StatusNotFound, "No repository "+name+" that you may pull.")
		return
	}
	if err != nil {
		c.internal(w, r, "listing the repository", err)
		return
	}
	c.render(w, r, http.StatusOK, "repository", name, v)
}

// repositoryListed fills v with tags and push times, and a page of the
// manifests pushed by digest.
func (c *Console) repositoryListed(ctx context.Context, r *request, lst store.Listing, v *repoView) error {
	q := r.URL.Query()
	tags, err := lst.TagInfos(ctx, v.Name, q.Get("after"), pageSize)
	if err != nil {
		return err
	}
	v.Known = true
	for _, t := range tags {
		row := tagRow{Tag: t.Name, Pushed: t.Updated}
		if m, err := c.meta.Manifest(ctx, v.Name, t.Digest); err == nil {
			c.describe(ctx, v.Name, &row, m)
		}
		v.Tags = append(v.Tags, row)
	}
	if len(tags) == pageSize {
		v.Next = tags[len(tags)-1].Name
	}
	untagged, next, err := lst.UntaggedManifests(ctx, v.Name, digest.Digest(q.Get("mafter")), untaggedScan)
	if err != nil {
		return err
	}
	if len(untagged) > pageSize {
		untagged = untagged[:pageSize]
		next = untagged[pageSize-1].Digest
	}
	for _, mi := range untagged {
		row := tagRow{Pushed: mi.Pushed}
		if m, err := c.meta.Manifest(ctx, v.Name, mi.Digest); err == nil {
			c.describe(ctx, v.Name, &row, m)
		}
		v.Untagged = append(v.Untagged, row)
	}
	v.NextM = next.String()
	return nil
}

// repositoryTags fills v from a store without store.Listing: tags only.
func (c *Console) repositoryTags(ctx context.Context, r *request, v *repoView) error {
	tags, err := c.meta.Tags(ctx, v.Name, r.URL.Query().Get("after"), pageSize)
	if err != nil {
		return err
	}
	for _, t := range tags {
		row := tagRow{Tag: t}
		if m, err := c.meta.TaggedManifest(ctx, v.Name, t); err == nil {
			c.describe(ctx, v.Name, &row, m)
		}
		v.Tags = append(v.Tags, row)
	}
	if len(tags) == pageSize {
		v.Next = tags[len(tags)-1]
	}
	return nil
}

func kind(d *manifestDoc) string {
	switch {
	case d.isIndex():
		return "index"
	case d.ArtifactType != "":
		return "artifact"
	case d.Config != nil && !configMediaTypes[d.Config.MediaType]:
		return "artifact"
	}
	return "image"
}

type imageView struct {
	Repo, Ref, Tag string
	Digest         string
	MediaType      string
	Kind           string
	Size           int64
	ContentSize    int
	Children       []descriptor
	Layers         []descriptor
	Config         *imageConfig
	ArtifactType   string
	Subject        string
	Annotations    map[string]string
	Referrers      []ocispec.Descriptor
	SignatureTag   string
	PullTag        string
	PullDigest     string
}

func (c *Console) image(w http.ResponseWriter, r *request) {
	q := r.URL.Query()
	repo, ref := q.Get("repo"), q.Get("ref")
	if repo == "" || ref == "" || !r.canPull(repo) {
		c.fail(w, r, http.StatusNotFound, "No image "+repo+" "+ref+" that you may pull.")
		return
	}
	ctx := r.Context()
	var m *store.Manifest
	var err error
	v := imageView{Repo: repo, Ref: ref}
	if d, perr := digest.Parse(ref); perr == nil {
		m, err = c.meta.Manifest(ctx, repo, d)
	} else {
		v.Tag = ref
		m, err = c.meta.TaggedManifest(ctx, repo, ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		c.fail(w, r, http.StatusNotFound, "No image "+repo+" "+ref+" that you may pull.")
		return
	}
	if err != nil {
		c.internal(w, r, "reading the manifest", err)
		return
	}
	d, err := parseManifest(m)
	if err != nil {
		c.fail(w, r, http.StatusUnprocessableEntity, "The manifest of "+repo+" "+ref+" is not valid JSON: "+err.Error())
		return
	}
	v.Digest, v.MediaType, v.Kind, v.Size, v.ContentSize = m.Digest.String(), m.MediaType, kind(d), d.size(), len(m.Content)
	v.Children, v.Layers, v.ArtifactType, v.Annotations = d.Manifests, d.Layers, d.ArtifactType, d.Annotations
	if d.Subject != nil {
		v.Subject = d.Subject.Digest
	}
	v.Config = c.config(ctx, repo, d)
	if v.Referrers, err = c.meta.Referrers(ctx, repo, m.Digest, ""); err != nil {
		c.internal(w, r, "listing referrers", err)
		return
	}
	// cosign's tag scheme: sha256-<hex>.sig beside the image.
	sig := strings.Replace(m.Digest.String(), ":", "-", 1) + ".sig"
	if _, err := c.meta.TaggedManifest(ctx, repo, sig); err == nil {
		v.SignatureTag = sig
	}
	host := r.Host
	if v.Tag != "" {
		v.PullTag = host + "/" + repo + ":" + v.Tag
	}
	v.PullDigest = host + "/" + repo + "@" + v.Digest
	c.render(w, r, http.StatusOK, "image", repo+"@"+v.Digest, v)
}
