// Package runreport is the record `ferry mirror` leaves in a Ferry
// destination after each run, and the web console reads: an OCI artifact
// tagged in the reserved repository ferry/runs.
package runreport

import "time"

const (
	// Header marks the answers of /v2/ from a Ferry registry: `ferry
	// mirror` records a report only in registries that send it.
	Header = "Ferry-Registry"
	// Repo is where reports are pushed, outside any mirror prefix.
	Repo = "ferry/runs"
	// ArtifactType is the manifest's artifactType.
	ArtifactType = "application/vnd.ferry.mirror.run.v1"
	// MediaType is the report layer's media type (JSON).
	MediaType = "application/vnd.ferry.mirror.run.v1+json"
	// MaxSize bounds a report: failures beyond it are counted, not listed.
	MaxSize = 1 << 20
	// MaxFailures is how many failure lines a report lists.
	MaxFailures = 200
)

// Report is one mirroring run as the destination saw it.
type Report struct {
	Workflow    string    `json:"workflow"` // mirrorToMirror or diskToMirror
	Destination string    `json:"destination"`
	Config      string    `json:"config"` // the ImageSetConfiguration's file name
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished"`
	Host        string    `json:"host,omitempty"` // where ferry mirror ran

	ImagesCopied  int64 `json:"imagesCopied"`
	ImagesPresent int64 `json:"imagesPresent"`
	ImagesFailed  int64 `json:"imagesFailed"`
	Missing       int   `json:"missing"`
	Blocked       int   `json:"blocked"`
	BytesCopied   int64 `json:"bytesCopied"`

	// Releases are the release images pushed, with whether their
	// signatures went into signature-configmap.yaml.
	Releases []Release `json:"releases,omitempty"`
	// Catalogs are the catalog images pushed.
	Catalogs []string `json:"catalogs,omitempty"`
	// SignatureConfigMap reports whether signature-configmap.yaml was written.
	SignatureConfigMap bool     `json:"signatureConfigMap"`
	ClusterResources   []string `json:"clusterResources,omitempty"` // file names written
	Failures           []string `json:"failures,omitempty"`
	MoreFailures       int      `json:"moreFailures,omitempty"`
}

// Release is a release image of a run.
type Release struct {
	Image  string `json:"image"` // destination reference, by tag
	Digest string `json:"digest"`
	Signed bool   `json:"signed"`
}

// Tag names a report by its run's start, so tags sort by time.
func Tag(started time.Time, suffix string) string {
	return "run-" + started.UTC().Format("20060102T150405Z") + "-" + suffix
}
