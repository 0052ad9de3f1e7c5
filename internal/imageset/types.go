// Package imageset reads and validates oc-mirror's ImageSetConfiguration and
// DeleteImageSetConfiguration (apiVersion mirror.openshift.io/v2alpha1), so
// that existing oc-mirror users can bring their files unchanged.
package imageset

// APIVersion is oc-mirror v2's apiVersion.
const APIVersion = "mirror.openshift.io/v2alpha1"

// legacyAPIVersion is oc-mirror v1's apiVersion, which oc-mirror v2 also
// reads when the file has the v2 layout.
const legacyAPIVersion = "mirror.openshift.io/v1alpha2"

// Kinds of configuration document.
const (
	KindImageSetConfiguration       = "ImageSetConfiguration"
	KindDeleteImageSetConfiguration = "DeleteImageSetConfiguration"
)

// ImageSetConfiguration says what to mirror.
type ImageSetConfiguration struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// ArchiveSize is the largest size of one archive chunk, in GiB.
	ArchiveSize int64  `json:"archiveSize,omitempty"`
	Mirror      Mirror `json:"mirror"`
	// Warnings are what the file should spell otherwise, though it is
	// read (a key in another case); callers log them.
	Warnings []error `json:"-"`
}

// DeleteImageSetConfiguration says what to delete from a mirror.
type DeleteImageSetConfiguration struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Delete     Delete `json:"delete"`
	// Warnings: see ImageSetConfiguration.Warnings.
	Warnings []error `json:"-"`
}

// Mirror lists the content to mirror, by kind.
type Mirror struct {
	Platform         Platform          `json:"platform,omitempty"`
	Operators        []Operator        `json:"operators,omitempty"`
	AdditionalImages []AdditionalImage `json:"additionalImages,omitempty"`
	Helm             Helm              `json:"helm,omitempty"`
	// BlockedImages are regular expressions; a matching image is never mirrored.
	BlockedImages []BlockedImage `json:"blockedImages,omitempty"`
	// Samples is accepted for compatibility; oc-mirror never implemented it.
	Samples []AdditionalImage `json:"samples,omitempty"`
}

// Delete lists the content to delete, by kind.
type Delete struct {
	Platform         Platform          `json:"platform,omitempty"`
	Operators        []Operator        `json:"operators,omitempty"`
	AdditionalImages []AdditionalImage `json:"additionalImages,omitempty"`
	Helm             Helm              `json:"helm,omitempty"`
	Samples          []AdditionalImage `json:"samples,omitempty"`
}

// Platform selects OpenShift or OKD releases.
type Platform struct {
	Channels []ReleaseChannel `json:"channels,omitempty"`
	// Graph builds the OpenShift Update Service graph-data image.
	Graph bool `json:"graph,omitempty"`
	// Release mirrors one release image by reference, with no graph lookup.
	Release string `json:"release,omitempty"`
	// KubeVirtContainer also mirrors the KubeVirt boot image a release names.
	KubeVirtContainer bool `json:"kubeVirtContainer,omitempty"`
	// Architectures: amd64, arm64, ppc64le, s390x or multi. Default amd64.
	Architectures []string `json:"architectures,omitempty"`
	// Platforms is an alternative to Architectures; the two exclude each other.
	Platforms []PlatformSpec `json:"platforms,omitempty"`
}

// PlatformSpec names an OS and CPU architecture, as in an OCI index.
type PlatformSpec struct {
	OS           string `json:"os,omitempty"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}

// ReleaseChannel selects versions of one update channel.
type ReleaseChannel struct {
	Name string `json:"name"`
	// Type is ocp (default) or okd.
	Type         string `json:"type,omitempty"`
	MinVersion   string `json:"minVersion,omitempty"`
	MaxVersion   string `json:"maxVersion,omitempty"`
	ShortestPath bool   `json:"shortestPath,omitempty"`
	Full         bool   `json:"full,omitempty"`
}

// Operator selects content of one operator catalog.
type Operator struct {
	// Catalog is an image reference, or oci://<path> for a local OCI layout.
	Catalog       string `json:"catalog"`
	TargetCatalog string `json:"targetCatalog,omitempty"`
	TargetTag     string `json:"targetTag,omitempty"`
	Full          bool   `json:"full,omitempty"`
	// SkipDependencies is accepted for compatibility with oc-mirror.
	SkipDependencies            bool           `json:"skipDependencies,omitempty"`
	TargetCatalogSourceTemplate string         `json:"targetCatalogSourceTemplate,omitempty"`
	Platforms                   []PlatformSpec `json:"platforms,omitempty"`
	Packages                    []Package      `json:"packages,omitempty"`
}

// Package selects bundles of one operator package.
type Package struct {
	Name           string    `json:"name"`
	DefaultChannel string    `json:"defaultChannel,omitempty"`
	MinVersion     string    `json:"minVersion,omitempty"`
	MaxVersion     string    `json:"maxVersion,omitempty"`
	Channels       []Channel `json:"channels,omitempty"`
	Bundles        []Bundle  `json:"bundles,omitempty"`
}

// Channel selects bundles of one channel of a package.
type Channel struct {
	Name       string `json:"name"`
	MinVersion string `json:"minVersion,omitempty"`
	MaxVersion string `json:"maxVersion,omitempty"`
}

// Bundle selects one bundle by name.
type Bundle struct {
	Name string `json:"name"`
}

// AdditionalImage is one image mirrored as it is.
type AdditionalImage struct {
	Name       string `json:"name"`
	TargetRepo string `json:"targetRepo,omitempty"`
	TargetTag  string `json:"targetTag,omitempty"`
	// Platforms filters a manifest list; empty keeps it whole.
	Platforms []PlatformSpec `json:"platforms,omitempty"`
}

// BlockedImage is a regular expression matched against source references.
type BlockedImage struct {
	Name string `json:"name"`
}

// Helm selects charts whose images are mirrored.
type Helm struct {
	Repositories []HelmRepository `json:"repositories,omitempty"`
	Local        []HelmChart      `json:"local,omitempty"`
}

// HelmRepository is a chart repository and the charts taken from it.
type HelmRepository struct {
	Name   string      `json:"name"`
	URL    string      `json:"url"`
	Charts []HelmChart `json:"charts,omitempty"`
}

// HelmChart is one chart, from a repository or a local path.
type HelmChart struct {
	Name       string         `json:"name"`
	Version    string         `json:"version,omitempty"`
	Path       string         `json:"path,omitempty"`
	ImagePaths []string       `json:"imagePaths,omitempty"`
	Values     map[string]any `json:"values,omitempty"`
	// Platforms filters the manifest lists of the chart's images, as
	// additionalImages platforms do.
	Platforms []PlatformSpec `json:"platforms,omitempty"`
}
