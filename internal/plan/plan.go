// Package plan turns an ImageSetConfiguration into a plan: every source
// image pinned to a digest, its destination, the manifests it needs and
// the deduplicated set of blobs. Collectors, one per config section, feed
// it; the copy engine (internal/transfer) executes it.
package plan

import (
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/transfer"
)

// Version of the plan's JSON form, stored in archives.
const Version = 1

// Sections of the configuration, which name errors and cluster resources.
const (
	SectionRelease    = "release"
	SectionOperator   = "operator"
	SectionAdditional = "additional"
	SectionHelm       = "helm"
)

// Plan is everything a copy needs, serializable so an archive carries it.
type Plan struct {
	Version int     `json:"version"`
	Images  []Image `json:"images"`
	// Manifests lists every manifest of every image (digest and type), so
	// an archive reader knows them without a registry.
	Manifests []Descriptor `json:"manifests"`
	// Synthesized are manifests Ferry wrote (platform-filtered lists,
	// referrers indexes), found in no source.
	Synthesized []transfer.Manifest `json:"synthesized,omitempty"`
	Blobs       []Descriptor        `json:"blobs"`
	Missing     []Missing           `json:"missing,omitempty"`
	Blocked     []string            `json:"blocked,omitempty"`
}

// Descriptor is a digest with its size and type.
type Descriptor struct {
	MediaType string        `json:"mediaType,omitempty"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
}

// Image is one source image and where it goes.
type Image struct {
	Section string `json:"section"`
	// Source is the reference as configured, normalized (docker.io/library/...).
	Source string `json:"source"`
	// SourceRepo is host/path of the source repository.
	SourceRepo string `json:"sourceRepo"`
	// SourceDigest is what Source resolved to.
	SourceDigest digest.Digest `json:"sourceDigest"`
	// Digest is what is pushed: SourceDigest unless a list was filtered.
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	// DestRepo is the repository path under the destination root.
	DestRepo string `json:"destRepo"`
	// DestTag is the destination tag: the source's tag, targetTag, or
	// DigestTag for a digest source; empty means pushed by digest alone.
	DestTag string `json:"destTag,omitempty"`
	// Filtered notes the platforms kept when a list was rewritten.
	Filtered []string `json:"filtered,omitempty"`
	Extras   []Extra  `json:"extras,omitempty"`
	// Generated marks an image Ferry built (see Generated): it has no
	// source reference, so no mirror set names it.
	Generated bool `json:"generated,omitempty"`
	// Origin is what a generated image was made from, for mapping.txt
	// (see Generated.Origin).
	Origin string `json:"origin,omitempty"`
}

// Extra travels with an image: a cosign signature, attestation or SBOM
// tag, or the image's referrers index (the referrers tag schema).
type Extra struct {
	Kind   string        `json:"kind"` // signature, attestation, sbom, referrers
	Tag    string        `json:"tag"`
	Digest digest.Digest `json:"digest"`
}

// Missing is a configured image that could not be resolved.
type Missing struct {
	Section string `json:"section"`
	Source  string `json:"source"`
	Reason  string `json:"reason"`
}

// DigestTag is the destination tag of an image configured by digest alone:
// sha256_<hex>. It keeps the manifest alive in registries that collect
// untagged manifests; clusters still pull by digest through the IDMS. It
// is not sha256-<hex>, the OCI referrers fallback tag (and the stem of
// cosign's .sig/.att/.sbom tags) of the same image: a referrers index
// pushed there would replace the image, or the image the index. A tag
// holds at most 128 characters, so a sha512 digest is cut short there.
func DigestTag(d digest.Digest) string {
	t := d.Algorithm().String() + "_" + d.Encoded()
	return t[:min(len(t), 128)]
}

// SetDigestTags tags (on) or untags (off) the images configured by digest
// alone, for an archive's plan made with the other setting.
func (p *Plan) SetDigestTags(on bool) {
	for i, im := range p.Images {
		switch {
		case im.Generated:
		case on && im.DestTag == "":
			p.Images[i].DestTag = DigestTag(im.Digest)
		case !on && im.DestTag == DigestTag(im.Digest):
			p.Images[i].DestTag = ""
		}
	}
}

// ByTag reports whether the image is mirrored by tag.
func (i Image) ByTag() bool { return i.DestTag != "" }

// SourceRef is Source pinned for mappings: by tag when configured by tag.
func (i Image) SourceRef() string { return i.Source }

// DestRef is the full destination reference under root (host[/prefix]).
func (i Image) DestRef(root string, maxNested int) string {
	repo := DestPath(root, i.DestRepo, maxNested)
	if i.DestTag != "" {
		return repo + ":" + i.DestTag
	}
	return repo + "@" + i.Digest.String()
}

// DestPath joins root (host[/prefix]) and repo, folding the path so it has
// at most maxNested components below the host when maxNested > 0, as
// oc-mirror's --max-nested-paths does: the tail components are joined
// with "-".
func DestPath(root, repo string, maxNested int) string {
	host, prefix, _ := strings.Cut(root, "/")
	p := strings.Trim(path.Join(prefix, repo), "/")
	if maxNested > 0 {
		parts := strings.Split(p, "/")
		if len(parts) > maxNested {
			head := parts[:maxNested-1]
			tail := strings.Join(parts[maxNested-1:], "-")
			parts = append(append([]string{}, head...), tail)
			p = strings.Join(parts, "/")
		}
	}
	return host + "/" + p
}

// Jobs turns the plan into copy jobs for a destination under root, one
// per image, in plan order.
func (p *Plan) Jobs(root string, maxNested int, withExtras bool) []transfer.Job {
	jobs := make([]transfer.Job, 0, len(p.Images))
	for _, im := range p.Images {
		jobs = append(jobs, im.Job(root, maxNested, withExtras))
	}
	return jobs
}

// Job is the copy job of the image for a destination under root
// (host[/prefix]): the image, then its extras when withExtras.
func (i Image) Job(root string, maxNested int, withExtras bool) transfer.Job {
	host, _, _ := strings.Cut(root, "/")
	dst := strings.TrimPrefix(DestPath(root, i.DestRepo, maxNested), host+"/")
	j := transfer.Job{Name: i.Source, Items: []transfer.Item{{SrcRepo: i.SourceRepo, DstRepo: dst, Ref: i.DestTag, Digest: i.Digest}}}
	if withExtras {
		for _, x := range i.Extras {
			j.Items = append(j.Items, transfer.Item{SrcRepo: i.SourceRepo, DstRepo: dst, Ref: x.Tag, Digest: x.Digest})
		}
	}
	return j
}

// Key tells images apart: the same source to the same destination
// reference is one image, however many requests name it.
func (i Image) Key() string {
	return i.Source + "=" + i.DestRepo + ":" + i.DestTag + "@" + i.Digest.String()
}

// TotalBytes is the size of the unique blobs.
func (p *Plan) TotalBytes() int64 {
	var n int64
	for _, b := range p.Blobs {
		n += b.Size
	}
	return n
}

// WriteMapping writes oc-mirror's mapping.txt: source=destination lines,
// dest naming each image's destination. An image Ferry built (a rebuilt
// catalog, the graph image) has its origin as source, as oc-mirror lists
// the catalog it filtered.
func (p *Plan) WriteMapping(w io.Writer, dest func(Image) string) error {
	for _, im := range p.Images {
		src := "docker://" + im.SourceRef()
		if im.Generated {
			src = im.Origin
			if src == "" { // a plan from before origins were recorded
				src = "generated://" + im.DestRepo + "@" + im.Digest.String()
			}
		}
		if _, err := fmt.Fprintf(w, "%s=%s\n", src, dest(im)); err != nil {
			return err
		}
	}
	return nil
}

// WriteMissing writes missing.txt: one unresolvable image per line.
func (p *Plan) WriteMissing(w io.Writer) error {
	for _, m := range p.Missing {
		if _, err := fmt.Fprintf(w, "docker://%s\t%s\n", m.Source, m.Reason); err != nil {
			return err
		}
	}
	return nil
}

// finish sorts and deduplicates the blob and manifest sets.
func (p *Plan) finish(manifests map[digest.Digest]transfer.Manifest, blobs map[digest.Digest]int64) {
	p.Version = Version
	p.Manifests = p.Manifests[:0]
	for d, m := range manifests {
		p.Manifests = append(p.Manifests, Descriptor{MediaType: m.MediaType, Digest: d, Size: int64(len(m.Data))})
	}
	sort.Slice(p.Manifests, func(i, j int) bool { return p.Manifests[i].Digest < p.Manifests[j].Digest })
	p.Blobs = p.Blobs[:0]
	for d, n := range blobs {
		p.Blobs = append(p.Blobs, Descriptor{Digest: d, Size: n})
	}
	sort.Slice(p.Blobs, func(i, j int) bool { return p.Blobs[i].Digest < p.Blobs[j].Digest })
	sort.SliceStable(p.Images, func(i, j int) bool { return p.Images[i].Source < p.Images[j].Source })
}
