// Package capture observes the host the way sysdig and cAdvisor do, without
// a kernel module, and records what it sees in the capture stream with the
// names sysdig users know (evt, proc, user, fd, container).
//
// Each source (proc, net, conn, res, …) lives in its own file and registers
// itself by name; sources are started and stopped one by one, and one
// source failing never stops the others.
package capture

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/cairnhq/cairn/journal"
)

// Emit hands one observed event to the capture pipeline. It never blocks:
// when the pipeline's buffer is full the event is dropped and counted.
// Emit reports whether the event was accepted.
type Emit func(b *journal.Body) bool

// SourceConfig is what a source is started with.
type SourceConfig struct {
	// Interval is the sampling period of polling sources (res, conn).
	Interval time.Duration
	// Namespace is a named network namespace to observe (net source), ""
	// for the daemon's own.
	Namespace string
	// Rate is the synthetic source's events a second; 0 is full speed.
	Rate int64
	// Snaplen gives each synthetic event an I/O buffer of that many bytes
	// (data.data), as a traced read of sysdig's snaplen carries.
	Snaplen int
	Logger  *slog.Logger
}

// Source is one kind of observation.
type Source interface {
	// Start begins observing and returns once the source is receiving
	// (so `capture start` answers only when nothing more can be missed).
	// Events go to emit; goroutines end when ctx ends. A source that cannot
	// run here (no root, a kernel feature missing, not the initial network
	// namespace) returns an error that says why.
	Start(ctx context.Context, cfg SourceConfig, emit Emit) error
	// Stop stops observing and returns once everything the source saw has
	// been handed to emit.
	Stop() error
}

// SourceStats are a source's counters, as capture status shows them.
type SourceStats struct {
	Events int64 // handed to emit and accepted
	Drops  int64 // lost: rejected by a full buffer, or lost by the kernel (ENOBUFS)
	Errors int64
}

// StatsSource is a Source that counts losses of its own (kernel drops).
type StatsSource interface {
	Source
	// KernelDrops reports events the kernel dropped before the source
	// could read them (ENOBUFS on a netlink socket).
	KernelDrops() int64
}

var (
	sourcesMu sync.Mutex
	sources   = map[string]func() Source{}
)

// RegisterSource makes a source known under name; it panics on a duplicate.
func RegisterSource(name string, newSource func() Source) {
	sourcesMu.Lock()
	defer sourcesMu.Unlock()
	if _, dup := sources[name]; dup {
		panic(fmt.Sprintf("capture: source %q registered twice", name))
	}
	sources[name] = newSource
}

// SourceNames lists the registered sources, sorted.
func SourceNames() []string {
	sourcesMu.Lock()
	defer sourcesMu.Unlock()
	names := make([]string, 0, len(sources))
	for n := range sources {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// newSource returns a fresh instance of the named source.
func newSource(name string) (Source, bool) {
	sourcesMu.Lock()
	defer sourcesMu.Unlock()
	f, ok := sources[name]
	if !ok {
		return nil, false
	}
	return f(), true
}
