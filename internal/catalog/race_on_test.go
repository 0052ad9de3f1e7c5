//go:build race

package catalog

// raceBuild: the race detector multiplies memory use, so RSS bounds do not
// apply.
const raceBuild = true
