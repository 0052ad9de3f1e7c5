package registry

import (
	"encoding/json"
	"fmt"
	"mime"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/store"
)

// Manifest media types Ferry stores.
const (
	mediaOCIManifest   = "application/vnd.oci.image.manifest.v1+json"
	mediaOCIIndex      = "application/vnd.oci.image.index.v1+json"
	mediaDockerV2      = "application/vnd.docker.distribution.manifest.v2+json"
	mediaDockerList    = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaDockerForeign = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

func isIndex(mt string) bool { return mt == mediaOCIIndex || mt == mediaDockerList }

type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	URLs         []string          `json:"urls,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

type manifestDoc struct {
	SchemaVersion *int              `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *descriptor       `json:"config"`
	Layers        []descriptor      `json:"layers"`
	Manifests     []descriptor      `json:"manifests"`
	Subject       *descriptor       `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
}

// parseManifest checks a manifest body and extracts what the registry
// stores about it. contentType is the request's Content-Type, which types a
// manifest that has no mediaType field (podman pushes that way). The digest
// is not computed here. Every error is a client error.
func parseManifest(body []byte, contentType string) (*store.Manifest, error) {
	var doc manifestDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("manifest is not valid JSON: %v", err)
	}
	ct, _, _ := mime.ParseMediaType(contentType)
	mt := doc.MediaType
	switch {
	case mt == "" && ct != "":
		mt = ct
	case mt == "":
		// Neither field nor header: infer as OCI does.
		if doc.Manifests != nil {
			mt = mediaOCIIndex
		} else {
			mt = mediaOCIManifest
		}
	case ct != "" && ct != mt && ct != "application/json" && ct != "application/octet-stream":
		return nil, fmt.Errorf("manifest mediaType %q does not match Content-Type %q", mt, ct)
	}
	if doc.SchemaVersion == nil || *doc.SchemaVersion != 2 {
		return nil, fmt.Errorf("manifest schemaVersion must be 2 (Docker schema 1 is not supported; push with a current client)")
	}
	m := &store.Manifest{MediaType: mt, ArtifactType: doc.ArtifactType, Annotations: doc.Annotations}
	switch mt {
	case mediaOCIManifest, mediaDockerV2:
		if doc.Config == nil {
			return nil, fmt.Errorf("%s has no config descriptor", mt)
		}
		if doc.Manifests != nil {
			return nil, fmt.Errorf("%s must not have a manifests list", mt)
		}
		d, err := checkDescriptor(doc.Config, "config")
		if err != nil {
			return nil, err
		}
		m.Blobs = append(m.Blobs, d)
		if m.ArtifactType == "" {
			m.ArtifactType = doc.Config.MediaType
		}
		for i := range doc.Layers {
			d, err := checkDescriptor(&doc.Layers[i], fmt.Sprintf("layers[%d]", i))
			if err != nil {
				return nil, err
			}
			// Foreign layers live at their URLs, not in this registry.
			if len(doc.Layers[i].URLs) > 0 || doc.Layers[i].MediaType == mediaDockerForeign {
				continue
			}
			m.Blobs = append(m.Blobs, d)
		}
	case mediaOCIIndex, mediaDockerList:
		if doc.Config != nil || doc.Layers != nil {
			return nil, fmt.Errorf("%s must not have config or layers", mt)
		}
		for i := range doc.Manifests {
			d, err := checkDescriptor(&doc.Manifests[i], fmt.Sprintf("manifests[%d]", i))
			if err != nil {
				return nil, err
			}
			m.Children = append(m.Children, d)
		}
	default:
		return nil, fmt.Errorf("manifest media type %q is not supported (use %s, %s, %s or %s)",
			mt, mediaOCIManifest, mediaOCIIndex, mediaDockerV2, mediaDockerList)
	}
	if doc.Subject != nil {
		d, err := checkDescriptor(doc.Subject, "subject")
		if err != nil {
			return nil, err
		}
		m.Subject = d
	}
	return m, nil
}

func checkDescriptor(d *descriptor, where string) (digest.Digest, error) {
	dg, err := digest.Parse(d.Digest)
	if err != nil {
		return "", fmt.Errorf("%s: digest %q: %v", where, d.Digest, err)
	}
	if !dg.Algorithm().Available() {
		return "", fmt.Errorf("%s: digest algorithm %q is not supported", where, dg.Algorithm())
	}
	if d.Size < 0 {
		return "", fmt.Errorf("%s: negative size", where)
	}
	return dg, nil
}
