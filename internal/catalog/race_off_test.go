//go:build !race

package catalog

const raceBuild = false
