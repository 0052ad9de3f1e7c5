package release

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"sigs.k8s.io/yaml"
)

// Files a release image carries, relative to its root.
const (
	imageReferencesPath = "release-manifests/image-references"
	releaseMetadataPath = "release-manifests/release-metadata"
	bootImagesPath      = "release-manifests/0000_50_installer_coreos-bootimages.yaml"
	// versionLabel is the release image's config label holding its version.
	versionLabel = "io.openshift.release"
	// maxManifestSize bounds each file read from a release image.
	maxManifestSize = 32 << 20
)

// Contents is what a release image says about itself.
type Contents struct {
	// Version comes from the io.openshift.release label, or from
	// release-metadata when the label is missing.
	Version string
	// Previous lists the releases that may update to this one.
	Previous []string
	// Channels are the update channels release-metadata lists the release
	// in (metadata io.openshift.upgrades.graph.release.channels); empty
	// when it names none.
	Channels   []string
	Components []Component
	// KubeVirt maps a boot-image architecture key (x86_64, aarch64, ...)
	// to the KubeVirt container image for it, by digest.
	KubeVirt map[string]string
	// KubeVirtInvalid maps an architecture key to why its KubeVirt entry
	// cannot be used; key "" holds why the boot-images file as a whole
	// cannot be read. A bad entry fails nothing: only kubeVirtContainer
	// reads these files, and it skips what it cannot use.
	KubeVirtInvalid map[string]string
}

// Component is one image of a release, named by its image-references tag.
type Component struct {
	Name  string
	Image string // by digest
}

// ReadContents streams img's layers, top layer first, to read the release
// manifests as the image's file system shows them: a later layer replaces
// an earlier one and whiteouts delete. It stops as soon as every file is
// settled, which is normally after the top layer.
func ReadContents(img v1.Image, imageName string) (*Contents, error) {
	files, err := readFiles(img, []string{imageReferencesPath, releaseMetadataPath, bootImagesPath})
	if err != nil {
		return nil, fmt.Errorf("release image %s: %w", imageName, err)
	}
	refs, ok := files[imageReferencesPath]
	if !ok {
		return nil, fmt.Errorf("release image %s has no /%s: it is not an OpenShift release image (check the reference)", imageName, imageReferencesPath)
	}
	c := &Contents{}
	if c.Components, err = parseImageReferences(refs); err != nil {
		return nil, fmt.Errorf("release image %s: /%s: %w", imageName, imageReferencesPath, err)
	}
	var metaVersion string
	if data, ok := files[releaseMetadataPath]; ok {
		if metaVersion, c.Previous, err = parseReleaseMetadata(data); err != nil {
			return nil, fmt.Errorf("release image %s: /%s: %w", imageName, releaseMetadataPath, err)
		}
		c.Channels = releaseChannels(data)
	}
	if data, ok := files[bootImagesPath]; ok {
		c.KubeVirt, c.KubeVirtInvalid = parseBootImages(data)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("release image %s: config: %w", imageName, err)
	}
	label := cfg.Config.Labels[versionLabel]
	switch {
	case label != "" && metaVersion != "" && label != metaVersion:
		return nil, fmt.Errorf("release image %s: label %s says %s but release-metadata says %s; the image is inconsistent", imageName, versionLabel, label, metaVersion)
	case label != "":
		c.Version = label
	default:
		c.Version = metaVersion
	}
	if c.Version == "" {
		return nil, fmt.Errorf("release image %s has neither the %s label nor a release-metadata version", imageName, versionLabel)
	}
	return c, nil
}

// readFiles returns the content of the wanted files as the flattened image
// shows them; deleted or absent files are left out.
func readFiles(img v1.Image, wanted []string) (map[string][]byte, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("layers: %w", err)
	}
	found := map[string][]byte{}
	settled := map[string]bool{} // found, or deleted by an upper layer
	for i := len(layers) - 1; i >= 0 && len(settled) < len(wanted); i-- {
		// Whiteouts hide only lower layers, so they apply after this layer.
		var hidden []string
		var opaque []string
		err := eachEntry(layers[i], func(h *tar.Header, r io.Reader) error {
			p := cleanPath(h.Name)
			dir, base := path.Split(p)
			dir = strings.TrimSuffix(dir, "/")
			switch {
			case base == ".wh..wh..opq":
				opaque = append(opaque, dir)
			case strings.HasPrefix(base, ".wh."):
				hidden = append(hidden, path.Join(dir, strings.TrimPrefix(base, ".wh.")))
			default:
				for _, w := range wanted {
					if w != p || settled[w] {
						continue
					}
					settled[w] = true
					if h.Typeflag != tar.TypeReg {
						continue // a directory or link where a file was expected: treat as absent
					}
					data, err := io.ReadAll(io.LimitReader(r, maxManifestSize+1))
					if err != nil {
						return fmt.Errorf("reading /%s: %w", p, err)
					}
					if len(data) > maxManifestSize {
						return fmt.Errorf("/%s is larger than %d MiB", p, maxManifestSize>>20)
					}
					found[w] = data
				}
			}
			return nil
		})
		if err != nil {
			d, _ := layers[i].Digest()
			return nil, fmt.Errorf("layer %s: %w", d, err)
		}
		for _, w := range wanted {
			for _, h := range hidden {
				if w == h || strings.HasPrefix(w, h+"/") {
					settled[w] = true
				}
			}
			for _, o := range opaque {
				if strings.HasPrefix(w, o+"/") || o == "" {
					settled[w] = true
				}
			}
		}
	}
	return found, nil
}

func eachEntry(l v1.Layer, fn func(*tar.Header, io.Reader) error) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("not a readable tar layer: %w", err)
		}
		if err := fn(h, tr); err != nil {
			return err
		}
	}
}

// cleanPath makes "./a/b", "/a/b" and "a/b/" all "a/b".
func cleanPath(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

type imageStream struct {
	Kind string `json:"kind"`
	Spec struct {
		Tags []struct {
			Name string `json:"name"`
			From *struct {
				Kind string `json:"kind"`
				Name string `json:"name"`
			} `json:"from"`
		} `json:"tags"`
	} `json:"spec"`
}

func parseImageReferences(data []byte) ([]Component, error) {
	var is imageStream
	if err := json.Unmarshal(data, &is); err != nil {
		return nil, fmt.Errorf("not an ImageStream JSON document: %w", err)
	}
	if is.Kind != "ImageStream" {
		return nil, fmt.Errorf("kind is %q, want ImageStream", is.Kind)
	}
	if len(is.Spec.Tags) == 0 {
		return nil, errors.New("spec.tags is empty: the release names no components")
	}
	seen := map[string]bool{}
	out := make([]Component, 0, len(is.Spec.Tags))
	for i, t := range is.Spec.Tags {
		if t.Name == "" {
			return nil, fmt.Errorf("spec.tags[%d] has no name", i)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("component %s is listed twice", t.Name)
		}
		seen[t.Name] = true
		if t.From == nil || t.From.Name == "" {
			return nil, fmt.Errorf("component %s has no from.name image", t.Name)
		}
		if _, err := name.NewDigest(t.From.Name); err != nil {
			return nil, fmt.Errorf("component %s: image %q is not a reference by digest: %w", t.Name, t.From.Name, err)
		}
		out = append(out, Component{Name: t.Name, Image: t.From.Name})
	}
	return out, nil
}

func parseReleaseMetadata(data []byte) (string, []string, error) {
	var m struct {
		Kind     string   `json:"kind"`
		Version  string   `json:"version"`
		Previous []string `json:"previous"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return "", nil, fmt.Errorf("not JSON: %w", err)
	}
	if m.Kind != "cincinnati-metadata-v0" {
		return "", nil, fmt.Errorf("kind is %q, want cincinnati-metadata-v0", m.Kind)
	}
	return m.Version, m.Previous, nil
}

// channelsKey is the release-metadata key listing a release's channels,
// comma-separated, as OpenShift's release tooling writes it.
const channelsKey = "io.openshift.upgrades.graph.release.channels"

// releaseChannels reads the channels from release-metadata, which
// parseReleaseMetadata has already checked; none when absent.
func releaseChannels(data []byte) []string {
	var m struct {
		Metadata map[string]string `json:"metadata"`
	}
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	var out []string
	for _, ch := range strings.Split(m.Metadata[channelsKey], ",") {
		if ch = strings.TrimSpace(ch); ch != "" {
			out = append(out, ch)
		}
	}
	return out
}

// parseBootImages reads the CoreOS boot-images ConfigMap, whose
// data.stream is a JSON document of per-architecture artifacts. Each
// architecture is read on its own, so a placeholder or a broken entry of
// one architecture leaves the others usable.
func parseBootImages(data []byte) (valid, invalid map[string]string) {
	invalid = map[string]string{}
	var cm struct {
		Data struct {
			Stream string `json:"stream"`
		} `json:"data"`
	}
	if err := yaml.Unmarshal(data, &cm); err != nil {
		invalid[""] = fmt.Sprintf("/%s is not a ConfigMap: %v", bootImagesPath, err)
		return nil, invalid
	}
	if cm.Data.Stream == "" {
		return nil, nil
	}
	var stream struct {
		Architectures map[string]json.RawMessage `json:"architectures"`
	}
	if err := json.Unmarshal([]byte(cm.Data.Stream), &stream); err != nil {
		invalid[""] = fmt.Sprintf("/%s: data.stream is not a CoreOS stream JSON document: %v", bootImagesPath, err)
		return nil, invalid
	}
	valid = map[string]string{}
	for arch, raw := range stream.Architectures {
		var a struct {
			Images struct {
				KubeVirt *struct {
					DigestRef string `json:"digest-ref"`
				} `json:"kubevirt"`
			} `json:"images"`
		}
		if err := json.Unmarshal(raw, &a); err != nil {
			invalid[arch] = fmt.Sprintf("architectures.%s in /%s is not a stream entry: %v", arch, bootImagesPath, err)
			continue
		}
		if a.Images.KubeVirt == nil {
			continue // this architecture has no KubeVirt image
		}
		ref := a.Images.KubeVirt.DigestRef
		if _, err := name.NewDigest(ref, name.StrictValidation); err != nil {
			invalid[arch] = fmt.Sprintf("architectures.%s.images.kubevirt.digest-ref %q in /%s is not a reference by digest", arch, ref, bootImagesPath)
			continue
		}
		valid[arch] = ref
	}
	if len(invalid) == 0 {
		invalid = nil
	}
	return valid, invalid
}
