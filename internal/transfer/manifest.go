package transfer

import (
	"encoding/json"
	"fmt"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-mirror/ferry/internal/oci"
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
	return oci.IsIndex(m.MediaType)
}

// Descriptor returns the descriptor that points at m.
func (m Manifest) Descriptor() ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: int64(len(m.Data))}
}

// Parse reads m's references. A manifest a registry served is read
// leniently (see oci.Parse).
func (m Manifest) Parse() (*oci.Manifest, error) {
	p, err := oci.Parse(m.Data, m.MediaType)
	if err != nil {
		return nil, fmt.Errorf("manifest %s (%s): %w", m.Digest, m.MediaType, err)
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
		return oci.MediaTypeImageIndex
	default:
		return oci.MediaTypeImageManifest
	}
}
