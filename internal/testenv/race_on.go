//go:build race

package testenv

// raceEnabled builds the ferry binary under test with -race too, so data
// races in the server fail the suite.
const raceEnabled = true
