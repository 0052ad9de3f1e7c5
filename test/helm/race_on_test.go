//go:build race

package helm_test

// raceBuild: the ferry binary under test is built with -race too, whose
// shadow memory makes its RSS no measure of Ferry's own.
const raceBuild = true
