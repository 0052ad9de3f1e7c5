// Package catalog reads, filters, writes and rebuilds operator file-based
// catalogs (FBC), the content of OLM catalog images.
//
// The flow a mirroring run uses:
//
//	cat, err := catalog.ReadImage(ctx, ref, img)           // or catalog.LoadFS for an oci:// layout or a folder
//	res, err := cat.Filter(catalog.Filter{...})            // oc-mirror v2's rules, see Filter
//	for _, im := range res.Images { ... }                  // bundle and related images, with the bundles that need them
//	rebuilt, err := catalog.Rebuild(ref, img, res.Catalog) // the catalog image to push
//	pkgs, err := cat.List("")                              // for `ferry list operators`
//
// The FBC schema is operator-registry's alpha/declcfg (olm.package,
// olm.channel, olm.bundle, olm.deprecations), followed here in small types of
// our own rather than imported: operator-registry's declcfg pulls in about 250
// modules (Kubernetes, containerd, gRPC, etcd's bbolt, ...) and an empty
// program importing it builds to 42 MB. Every document keeps its fields as
// read, so fields this package does not know survive a filter and a write.
//
// The filter follows the catalog-filter library oc-mirror v2 calls
// (github.com/sherine-k/catalog-filter, mirror-config/v1alpha1): heads by
// replaces and skips, version ranges as Masterminds semver constraints
// ">=min <=max" walked down the replaces chain, dangling replaces kept as
// they are. See Filter for the rules and where Ferry is stricter.
package catalog

// ConfigsLabel is the image label that names the folder holding the FBC.
const ConfigsLabel = "operators.operatorframework.io.index.configs.v1"
