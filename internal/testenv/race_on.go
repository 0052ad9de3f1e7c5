//go:build race

package testenv

// RaceEnabled: the tests, and so the ferry binary they build
// (FerryBinary), run under the race detector, so that data races in the
// server fail the suite. Its shadow memory makes a process's RSS no
// measure of Ferry's own, and it slows CPU-bound work several times.
const RaceEnabled = true
