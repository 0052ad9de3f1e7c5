package registry

import (
	"github.com/ferry-mirror/ferry/internal/oci"
	"github.com/ferry-mirror/ferry/internal/store"
)

// parseManifest checks a manifest body and extracts what the registry
// stores about it: the blobs it needs present (config and distributable
// layers), its children and subject. contentType is the request's
// Content-Type. The digest is not computed here. Every error is a client
// error.
func parseManifest(body []byte, contentType string) (*store.Manifest, error) {
	om, err := oci.ParseStrict(body, contentType)
	if err != nil {
		return nil, err
	}
	m := &store.Manifest{MediaType: om.MediaType, ArtifactType: om.ArtifactType, Annotations: om.Annotations}
	for _, b := range om.Blobs() {
		if oci.Distributable(b) { // the others live at their URLs
			m.Blobs = append(m.Blobs, b.Digest)
		}
	}
	for _, c := range om.Children {
		m.Children = append(m.Children, c.Digest)
	}
	if om.Subject != nil {
		m.Subject = om.Subject.Digest
	}
	return m, nil
}
