//go:build !race

package kv

// raceEnabled: the race detector's instrumentation grows goroutine stacks,
// so stack figures say nothing of this package's own.
const raceEnabled = false
