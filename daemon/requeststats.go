package daemon

import (
	"sort"
	"sync"
	"time"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

// requestStats counts the socket's requests by verb, for the metrics
// engine's /metrics (engines.RequestsService).
type requestStats struct {
	mu   sync.Mutex
	verb map[string]*verbStat
}

type verbStat struct {
	count, errors uint64
	latency       *journal.Histogram
}

// latencyBounds are the request latency buckets, in seconds.
var latencyBounds = []float64{100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 5, 10}

// observe counts one statement of verb; a stream's time is not its
// latency, so it is counted only.
func (r *requestStats) observe(verb string, took time.Duration, stream, failed bool) {
	r.mu.Lock()
	if r.verb == nil {
		r.verb = map[string]*verbStat{}
	}
	v := r.verb[verb]
	if v == nil {
		v = &verbStat{latency: journal.NewHistogram(latencyBounds...)}
		r.verb[verb] = v
	}
	v.count++
	if failed {
		v.errors++
	}
	r.mu.Unlock()
	if !stream {
		v.latency.Observe(took.Seconds())
	}
}

// Requests returns every verb's figures, sorted by verb.
func (r *requestStats) Requests() []engines.RequestStat {
	r.mu.Lock()
	out := make([]engines.RequestStat, 0, len(r.verb))
	for name, v := range r.verb {
		out = append(out, engines.RequestStat{Verb: name, Count: v.count, Errors: v.errors, Latency: v.latency.Snapshot()})
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Verb < out[j].Verb })
	return out
}
