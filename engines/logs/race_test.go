//go:build race

package logs

// raceEnabled: under the race detector pebble allocates some of its
// memory from Go's heap, so heap figures say nothing of this package's own.
const raceEnabled = true
