package release

import (
	"fmt"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Destination repositories under the mirror, as oc-mirror lays them out so
// that clusters' existing mirror sets keep working.
const (
	ReleaseImagesRepo = "openshift/release-images"
	ComponentsRepo    = "openshift/release"
	GraphImageRepo    = "openshift/graph-image"
	// KubeVirtComponent names the KubeVirt boot image among components.
	KubeVirtComponent = "kube-virt-container"
)

// Mapping is one image to copy.
type Mapping struct {
	Source string
	// Destination is <dest>/<Repo>:<Tag>.
	Destination string
	// Repo and Tag place the image under the destination root.
	Repo, Tag string
	// Component is the image-references tag name; empty for the release
	// image itself.
	Component string
}

func mapping(dest, src, repo, tag, component string) Mapping {
	full := repo
	if dest != "" {
		full = dest + "/" + repo
	}
	return Mapping{Source: src, Destination: full + ":" + tag, Repo: repo, Tag: tag, Component: component}
}

// ReleaseTag is the tag of a release under the mirror: <version>-<arch>.
func ReleaseTag(version string, arch Arch) string {
	return version + "-" + arch.TagSuffix()
}

// Mappings lists what to copy for one release into dest (a registry and
// optional path, such as mirror.lan:8443/ocp): the release image to
// <dest>/openshift/release-images:<version>-<arch>, each component to
// <dest>/openshift/release:<version>-<arch>-<component>, and, when
// kubeVirt is set, the KubeVirt boot image as component
// kube-virt-container (suffixed with the architecture key when a multi
// release carries several).
func Mappings(dest string, r Release, c *Contents, kubeVirt bool) ([]Mapping, error) {
	dest = strings.TrimSuffix(dest, "/")
	tag := ReleaseTag(r.Version, r.Arch)
	out := []Mapping{mapping(dest, r.Payload, ReleaseImagesRepo, tag, "")}
	for _, comp := range c.Components {
		out = append(out, mapping(dest, comp.Image, ComponentsRepo, tag+"-"+comp.Name, comp.Name))
	}
	if !kubeVirt {
		return out, nil
	}
	var keys []string
	if k := r.Arch.bootImageKey(); k != "" {
		if _, ok := c.KubeVirt[k]; !ok {
			return nil, fmt.Errorf("release %s (%s) names no KubeVirt container for %s in /%s; drop kubeVirtContainer for this architecture", r.Version, r.Arch, k, bootImagesPath)
		}
		keys = []string{k}
	} else {
		for k := range c.KubeVirt {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(keys) == 0 {
			return nil, fmt.Errorf("release %s (%s) names no KubeVirt container in /%s; drop kubeVirtContainer", r.Version, r.Arch, bootImagesPath)
		}
	}
	for _, k := range keys {
		comp := KubeVirtComponent
		if len(keys) > 1 {
			comp += "-" + k
		}
		out = append(out, mapping(dest, c.KubeVirt[k], ComponentsRepo, tag+"-"+comp, comp))
	}
	return out, nil
}

// ImageForContents picks the image to read from a multi-architecture
// release: every child carries the same manifests, so linux/amd64 when
// present, else the first.
func ImageForContents(idx v1.ImageIndex) (v1.Image, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("release index: %w", err)
	}
	if len(m.Manifests) == 0 {
		return nil, fmt.Errorf("release index lists no images")
	}
	pick := m.Manifests[0]
	for _, d := range m.Manifests {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == "amd64" {
			pick = d
			break
		}
	}
	img, err := idx.Image(pick.Digest)
	if err != nil {
		return nil, fmt.Errorf("release index child %s: %w", pick.Digest, err)
	}
	return img, nil
}
