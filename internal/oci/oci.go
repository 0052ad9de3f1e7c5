// Package oci is the manifest vocabulary Ferry's registry and its client
// share: the media types, what a manifest refers to, read strictly (a
// push the registry stores) or leniently (what an upstream serves), and
// which layers are not copied.
package oci

import (
	"encoding/json"
	"fmt"
	"mime"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Manifest media types.
const (
	MediaTypeImageManifest  = ocispec.MediaTypeImageManifest
	MediaTypeImageIndex     = ocispec.MediaTypeImageIndex
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	// MediaTypeDockerSchema1 is read from upstreams, never stored.
	MediaTypeDockerSchema1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	// MediaTypeDockerForeignLayer is a layer fetched from its URLs
	// (Windows base layers).
	MediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// IsIndex reports whether mediaType is a list of manifests.
func IsIndex(mediaType string) bool {
	return mediaType == MediaTypeImageIndex || mediaType == MediaTypeDockerList
}

// Distributable reports whether a registry holds layer d. A layer of a
// non-distributable type (Docker foreign, OCI non-distributable) that
// names URLs is fetched from them: it is neither copied nor required when
// a manifest is pushed. Without URLs there is nowhere else to get it, so
// it is treated like any layer; a layer of an ordinary type is too, as
// its URLs are only other places to find it (as in distribution).
func Distributable(d ocispec.Descriptor) bool {
	switch d.MediaType {
	case MediaTypeDockerForeignLayer,
		ocispec.MediaTypeImageLayerNonDistributable,     //nolint:staticcheck // still seen in the wild
		ocispec.MediaTypeImageLayerNonDistributableGzip, //nolint:staticcheck
		ocispec.MediaTypeImageLayerNonDistributableZstd: //nolint:staticcheck
		return len(d.URLs) == 0
	}
	return true
}

// Manifest is what a manifest says about other content.
type Manifest struct {
	MediaType string
	// ArtifactType is the artifactType field, else the config's type.
	ArtifactType string
	Annotations  map[string]string
	Config       *ocispec.Descriptor
	// Layers holds the layers, the blobs of a draft OCI artifact
	// manifest and the fsLayers of Docker schema 1 (size -1).
	Layers   []ocispec.Descriptor
	Children []ocispec.Descriptor // index entries
	Subject  *ocispec.Descriptor
}

// Blobs returns the config then the layers.
func (m *Manifest) Blobs() []ocispec.Descriptor {
	var out []ocispec.Descriptor
	if m.Config != nil {
		out = append(out, *m.Config)
	}
	return append(out, m.Layers...)
}

// doc is every manifest shape's fields at once: Docker schema 2 and OCI
// share the names.
type doc struct {
	SchemaVersion *int                 `json:"schemaVersion"`
	MediaType     string               `json:"mediaType"`
	ArtifactType  string               `json:"artifactType"`
	Config        *ocispec.Descriptor  `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
	Blobs         []ocispec.Descriptor `json:"blobs"` // draft OCI artifact manifest
	Manifests     []ocispec.Descriptor `json:"manifests"`
	Subject       *ocispec.Descriptor  `json:"subject"`
	Annotations   map[string]string    `json:"annotations"`
	FSLayers      []struct {
		BlobSum digest.Digest `json:"blobSum"`
	} `json:"fsLayers"`
}

// ParseStrict checks a manifest pushed to a registry with Content-Type
// contentType, which types a manifest without a mediaType field (podman
// pushes that way). Only schema 2 image manifests and indexes, OCI or
// Docker, are accepted. Every error is the client's.
func ParseStrict(body []byte, contentType string) (*Manifest, error) {
	var d doc
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, fmt.Errorf("manifest is not valid JSON: %v", err)
	}
	ct, _, _ := mime.ParseMediaType(contentType)
	mt := d.MediaType
	switch {
	case mt == "" && ct != "":
		mt = ct
	case mt == "":
		// Neither field nor header: infer as OCI does.
		if d.Manifests != nil {
			mt = MediaTypeImageIndex
		} else {
			mt = MediaTypeImageManifest
		}
	case ct != "" && ct != mt && ct != "application/json" && ct != "application/octet-stream":
		return nil, fmt.Errorf("manifest mediaType %q does not match Content-Type %q", mt, ct)
	}
	if d.SchemaVersion == nil || *d.SchemaVersion != 2 {
		return nil, fmt.Errorf("manifest schemaVersion must be 2 (Docker schema 1 is not supported; push with a current client)")
	}
	m := &Manifest{MediaType: mt, ArtifactType: d.ArtifactType, Annotations: d.Annotations}
	switch mt {
	case MediaTypeImageManifest, MediaTypeDockerManifest:
		if d.Config == nil {
			return nil, fmt.Errorf("%s has no config descriptor", mt)
		}
		if d.Manifests != nil {
			return nil, fmt.Errorf("%s must not have a manifests list", mt)
		}
		if err := check(*d.Config, "config"); err != nil {
			return nil, err
		}
		m.Config = d.Config
		if m.ArtifactType == "" {
			m.ArtifactType = d.Config.MediaType
		}
		for i, l := range d.Layers {
			if err := check(l, fmt.Sprintf("layers[%d]", i)); err != nil {
				return nil, err
			}
		}
		m.Layers = d.Layers
	case MediaTypeImageIndex, MediaTypeDockerList:
		if d.Config != nil || d.Layers != nil {
			return nil, fmt.Errorf("%s must not have config or layers", mt)
		}
		for i, c := range d.Manifests {
			if err := check(c, fmt.Sprintf("manifests[%d]", i)); err != nil {
				return nil, err
			}
		}
		m.Children = d.Manifests
	default:
		return nil, fmt.Errorf("manifest media type %q is not supported (use %s, %s, %s or %s)",
			mt, MediaTypeImageManifest, MediaTypeImageIndex, MediaTypeDockerManifest, MediaTypeDockerList)
	}
	if d.Subject != nil {
		if err := check(*d.Subject, "subject"); err != nil {
			return nil, err
		}
		m.Subject = d.Subject
	}
	return m, nil
}

func check(d ocispec.Descriptor, where string) error {
	if err := d.Digest.Validate(); err != nil {
		return fmt.Errorf("%s: digest %q: %v", where, d.Digest, err)
	}
	if d.Size < 0 {
		return fmt.Errorf("%s: negative size", where)
	}
	return nil
}

// Parse reads a manifest an upstream served as mediaType, as leniently as
// a pull: any schema version, artifact blobs, Docker schema 1 layers. It
// still checks every digest it returns, since a digest that is not one
// would be fetched as a tag, unverified.
func Parse(body []byte, mediaType string) (*Manifest, error) {
	var d doc
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	m := &Manifest{MediaType: mediaType, ArtifactType: d.ArtifactType, Annotations: d.Annotations, Subject: d.Subject}
	if m.Subject != nil {
		if err := m.Subject.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("bad subject digest %q: %w", m.Subject.Digest, err)
		}
	}
	if IsIndex(mediaType) {
		for _, c := range d.Manifests {
			if err := c.Digest.Validate(); err != nil {
				return nil, fmt.Errorf("bad manifest digest %q: the upstream serves a corrupt index: %w", c.Digest, err)
			}
		}
		m.Children = d.Manifests
		return m, nil
	}
	m.Config = d.Config
	if m.ArtifactType == "" && d.Config != nil {
		m.ArtifactType = d.Config.MediaType
	}
	m.Layers = append(append(m.Layers, d.Layers...), d.Blobs...)
	for _, l := range d.FSLayers {
		m.Layers = append(m.Layers, ocispec.Descriptor{Digest: l.BlobSum, Size: -1})
	}
	for _, b := range m.Blobs() {
		if err := b.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("bad blob digest %q: %w", b.Digest, err)
		}
	}
	return m, nil
}
