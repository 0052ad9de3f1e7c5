// Package release resolves OpenShift and OKD release payloads: it reads the
// Cincinnati update graph, picks versions as an ImageSetConfiguration asks,
// lists a release image's components, verifies release signatures, and
// builds the update-service graph-data image. It talks to no registry
// itself: callers hand it images and push what it builds.
//
// A mirror run uses it in this order:
//
//	graphs := release.NewGraphClient(release.GraphOptionsFromEnv(os.Getenv))
//	rels, err := release.Select(ctx, graphs, channels, arch, log)
//	// for each release: fetch r.Payload, then
//	contents, err := release.ReadContents(img, r.Payload)  // ImageForContents for a multi index
//	maps := release.Mappings(dest, r, contents, kubeVirtArches, log)
//	signed, err := verifier.FetchAndVerify(ctx, releaseDigest)
//	// after the copy:
//	yaml, err := release.SignatureConfigMaps(allSigned)
//
// and, for graph: true, DownloadGraphData, BuildGraphImage on the base
// image, a push to GraphImageRepo, and UpdateServiceYAML. Disk-to-mirror
// replays the graphs an archive carries with OfflineGraphs(graphs.Fetched()).
package release
