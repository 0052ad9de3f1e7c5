package release

import (
	"fmt"
	"log/slog"
	"slices"
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
// <dest>/openshift/release:<version>-<arch>-<component>, and the KubeVirt
// boot image of each architecture in kubeVirt as component
// kube-virt-container. As in oc-mirror, Multi in kubeVirt stands for
// x86_64 and s390x, the architectures RHCOS ships KubeVirt images for
// (and any other the release names one for), and the component name gets
// the architecture key as a suffix when more than one is asked for.
//
// An architecture whose KubeVirt image is absent or unusable is skipped
// with a warning: the boot image is an extra, and the release itself is
// still complete.
func Mappings(dest string, r Release, c *Contents, kubeVirt []Arch, log *slog.Logger) []Mapping {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dest = strings.TrimSuffix(dest, "/")
	tag := ReleaseTag(r.Version, r.Arch)
	out := []Mapping{mapping(dest, r.Payload, ReleaseImagesRepo, tag, "")}
	for _, comp := range c.Components {
		out = append(out, mapping(dest, comp.Image, ComponentsRepo, tag+"-"+comp.Name, comp.Name))
	}
	if len(kubeVirt) == 0 {
		return out
	}
	if why, ok := c.KubeVirtInvalid[""]; ok {
		log.Warn("KubeVirt container skipped: the release's boot-images file cannot be read", "release", r.Version, "arch", r.Arch, "reason", why)
		return out
	}
	var keys []string
	for _, a := range kubeVirt {
		if a != Multi {
			keys = append(keys, a.bootImageKey())
			continue
		}
		keys = append(keys, AMD64.bootImageKey(), S390X.bootImageKey())
		for k := range c.KubeVirt {
			keys = append(keys, k)
		}
		for k := range c.KubeVirtInvalid {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	keys = slices.Compact(keys)
	for _, k := range keys {
		ref, ok := c.KubeVirt[k]
		if !ok {
			why, bad := c.KubeVirtInvalid[k]
			if !bad {
				why = fmt.Sprintf("/%s names no KubeVirt container for %s", bootImagesPath, k)
			}
			log.Warn("KubeVirt container skipped; the release is mirrored without it", "release", r.Version, "arch", k, "reason", why)
			continue
		}
		comp := KubeVirtComponent
		if len(keys) > 1 {
			comp += "-" + k
		}
		out = append(out, mapping(dest, ref, ComponentsRepo, tag+"-"+comp, comp))
	}
	return out
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
