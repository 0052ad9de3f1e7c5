package transfer

import (
	"encoding/json"
	"fmt"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Manifest media types Ferry understands.
const (
	MediaTypeOCIManifest    = ocispec.MediaTypeImageManifest
	MediaTypeOCIIndex       = ocispec.MediaTypeImageIndex
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// Manifest is a manifest's exact bytes; the digest is of those bytes, so
// they are never re-encoded.
type Manifest struct {
	MediaType string        `json:"mediaType"`
	Digest    digest.Digest `json:"digest"`
	Data      []byte        `json:"data"`
}

// IsIndex reports whether m lists other manifests.
func (m Manifest) IsIndex() bool {
	return m.MediaType == MediaTypeOCIIndex || m.MediaType == MediaTypeDockerList
}

// Descriptor returns the descriptor that points at m.
func (m Manifest) Descriptor() ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: int64(len(m.Data))}
}

// Parsed is the part of a manifest the copy needs: children for an index,
// config and layers for an image, and the subject of a referrer.
type Parsed struct {
	Children []ocispec.Descriptor // index entries
	Blobs    []ocispec.Descriptor // config then layers
	Subject  *ocispec.Descriptor
}

// Parse reads m's references. Docker schema 2 and OCI share the field names.
func (m Manifest) Parse() (Parsed, error) {
	var doc struct {
		Manifests []ocispec.Descriptor `json:"manifests"`
		Config    *ocispec.Descriptor  `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
		Blobs     []ocispec.Descriptor `json:"blobs"` // OCI artifact manifest (draft) carried blobs here
		Subject   *ocispec.Descriptor  `json:"subject"`
		FSLayers  []struct {
			BlobSum digest.Digest `json:"blobSum"`
		} `json:"fsLayers"`
	}
	if err := json.Unmarshal(m.Data, &doc); err != nil {
		return Parsed{}, fmt.Errorf("manifest %s (%s) is not valid JSON: %w", m.Digest, m.MediaType, err)
	}
	p := Parsed{Subject: doc.Subject}
	if p.Subject != nil {
		if err := p.Subject.Digest.Validate(); err != nil {
			return Parsed{}, fmt.Errorf("manifest %s names a bad subject digest %q: %w", m.Digest, p.Subject.Digest, err)
		}
	}
	if m.IsIndex() {
		// Every child is checked before any is used: a digest that is not
		// one would be fetched as a tag, unverified, or panic go-digest.
		for _, c := range doc.Manifests {
			if err := c.Digest.Validate(); err != nil {
				return Parsed{}, fmt.Errorf("index %s names a bad manifest digest %q; the upstream serves a corrupt index: %w", m.Digest, c.Digest, err)
			}
		}
		p.Children = doc.Manifests
		return p, nil
	}
	if doc.Config != nil {
		p.Blobs = append(p.Blobs, *doc.Config)
	}
	p.Blobs = append(p.Blobs, doc.Layers...)
	p.Blobs = append(p.Blobs, doc.Blobs...)
	for _, l := range doc.FSLayers {
		p.Blobs = append(p.Blobs, ocispec.Descriptor{Digest: l.BlobSum, Size: -1})
	}
	for _, b := range p.Blobs {
		if err := b.Digest.Validate(); err != nil {
			return Parsed{}, fmt.Errorf("manifest %s names a bad blob digest %q: %w", m.Digest, b.Digest, err)
		}
	}
	return p, nil
}

// sniffMediaType guesses the type of a manifest served without one.
func sniffMediaType(data []byte) string {
	var doc struct {
		MediaType     string          `json:"mediaType"`
		Manifests     json.RawMessage `json:"manifests"`
		SchemaVersion int             `json:"schemaVersion"`
	}
	if json.Unmarshal(data, &doc) != nil {
		return ""
	}
	switch {
	case doc.MediaType != "":
		return doc.MediaType
	case doc.Manifests != nil:
		return MediaTypeOCIIndex
	default:
		return MediaTypeOCIManifest
	}
}

// Foreign reports whether a layer must not be copied (Windows base layers
// that registries are not allowed to redistribute).
func Foreign(d ocispec.Descriptor) bool {
	switch d.MediaType {
	case "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
		ocispec.MediaTypeImageLayerNonDistributable,     //nolint:staticcheck // still seen in the wild
		ocispec.MediaTypeImageLayerNonDistributableGzip, //nolint:staticcheck
		ocispec.MediaTypeImageLayerNonDistributableZstd: //nolint:staticcheck
		return len(d.URLs) > 0
	}
	return false
}
