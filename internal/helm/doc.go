// Package helm finds the container images Helm charts reference, for the
// mirror.helm section of an ImageSetConfiguration, by rendering them
// with Helm's own SDK (helm.sh/helm/v4).
//
// Charts come from a classic chart repository (index.yaml plus .tgz
// files, chart URLs absolute or relative to the repository, basic auth
// from the containers auth file) or from a local folder or .tgz; Helm's
// loader reads them (a folder's .helmignore applies, as for `helm
// template <folder>`). oci:// repositories, charts pushed with `helm
// push`, are registries: internal/plan reads them with the registry
// client and hands the .tgz over. A chart version is an exact version, a
// semver constraint such as "^1.2", or empty for the newest stable
// version, as `helm pull --version` reads it. A repository entry that
// lists no charts means every version of every application chart in its
// index, as oc-mirror v2 does.
//
// Render renders a chart as `helm template` does with the config's
// values as a values file: subchart defaults, globals, conditions, tags,
// import-values, library charts, .Subcharts, values.schema.json; release
// "release-name" in namespace "default"; .Capabilities are Helm's
// defaults (the Kubernetes version of the client-go Ferry is built with
// and its API versions); lookup answers an empty object, as with no
// cluster.
//
// Images reads the rendered manifests only: at oc-mirror v2's four image
// paths (DefaultImagePaths), at every other pod template (ephemeral
// containers, CronJobs' jobTemplate), and at the chart's configured
// imagePaths. Nothing is guessed from values.yaml and no tag is made from
// appVersion: an image the templates do not render is not mirrored, and
// a reference rendered without its tag is reported, not completed.
//
// Charts are code from elsewhere. Their size is checked before Helm
// loads them (one byte budget over a chart and all its nested subchart
// archives, and a nesting cap), functions that allocate from a number
// refuse huge ones, and a Sandbox runs the rendering in a child process
// it stops after a time limit, on Ctrl-C, or when its memory passes a
// limit.
package helm
