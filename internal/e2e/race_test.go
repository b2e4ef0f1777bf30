//go:build race

package e2e

// raceEnabled makes TestMain build the CLI with -race too.
const raceEnabled = true
