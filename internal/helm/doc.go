// Package helm finds the container images Helm charts reference, for the
// mirror.helm section of an ImageSetConfiguration, without the Helm SDK.
//
// Charts come from a classic chart repository (index.yaml plus .tgz files,
// chart URLs absolute or relative to the repository, basic auth from the
// containers auth file) or from a local folder or .tgz. A chart version is
// an exact version, a semver constraint such as "^1.2", or empty for the
// newest stable version, as `helm pull --version` reads it. A repository
// entry that lists no charts means every version of every application
// chart in its index, as oc-mirror v2 does. (oci:// repositories, charts
// pushed with `helm push`, are registries: internal/plan reads them with
// the registry client and hands the .tgz to LoadArchive.)
//
// Images are found the way oc-mirror v2 finds them (1), plus two safety
// nets (2, 3):
//
//  1. The chart and its subcharts (folders and .tgz files under charts/,
//     minus those whose dependency condition is false) are rendered with
//     text/template, default values (values.yaml with the config's values
//     merged over it; each subchart's own values under the parent's values
//     for its name, and globals) and the functions charts use most
//     (default, quote, include, tpl, toYaml, nindent, required, dict,
//     ternary, ...; see funcs.go). Any other function renders as "", so
//     one exotic call in _helpers.tpl does not lose every helper. Each
//     rendered YAML document is searched at the image paths: always the
//     four oc-mirror uses, {.spec.template.spec.initContainers[*].image},
//     {.spec.template.spec.containers[*].image},
//     {.spec.initContainers[*].image} and {.spec.containers[*].image}, plus
//     the chart's configured imagePaths. The supported path syntax is a
//     dotted field path in optional braces, each field optionally followed
//     by [*] (every element) or [N] (one element); filters, recursive
//     descent (..) and unions are errors naming the path.
//  2. A template that does not render (a required value left empty, a
//     missing helper, a nil map dereferenced) is scanned instead for
//     `image:` lines: literal references and simple {{ .Values.x.y }} and
//     {{ .Chart.AppVersion }} actions (with | default X, | quote) are
//     resolved; a line with any other action is skipped.
//  3. The merged values are walked for the two shapes charts use for
//     images: `image: "repo:tag"` (or @digest) and `image: {registry,
//     repository, tag, digest}` (an empty tag means the chart's
//     appVersion). Only references that name their registry count here
//     (registry.example.com/app:1, not app:1): a bare name in values is
//     often completed elsewhere, and guessing docker.io would ask for an
//     image that does not exist. This finds images of components disabled
//     by default, which oc-mirror misses, so a cluster that enables them
//     later finds them mirrored.
//
// Not found: images assembled by helpers from pieces the scan cannot
// resolve when a template does not render, images under keys other than
// `image` in values that no image path reaches, and images pulled at run
// time by operators the chart installs. Name those in additionalImages.
package helm
