package journal

import (
	"math"
	"sync/atomic"
	"time"
)

// Histogram counts observations into fixed buckets with atomics: the
// committer records into it and a metrics collector reads a snapshot,
// without the journal depending on a metrics library.
type Histogram struct {
	bounds []float64 // upper bounds, ascending
	counts []atomic.Uint64
	sum    atomic.Uint64 // float64 bits
	count  atomic.Uint64
}

// NewHistogram makes a histogram with the given ascending upper bounds.
func NewHistogram(bounds ...float64) *Histogram { return newHistogram(bounds...) }

func newHistogram(bounds ...float64) *Histogram {
	return &Histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds))}
}

// Observe records v.
func (h *Histogram) Observe(v float64) {
	for i, b := range h.bounds {
		if v <= b {
			h.counts[i].Add(1)
			break
		}
	}
	h.count.Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, f64bits(f64frombits(old)+v)) {
			return
		}
	}
}

// HistogramSnapshot is a histogram's state: Buckets maps each upper bound
// to the count of observations at or below it (cumulative, as
// Prometheus's buckets), with Count and Sum over all.
type HistogramSnapshot struct {
	Buckets map[float64]uint64
	Count   uint64
	Sum     float64
}

// Snapshot reads the histogram.
func (h *Histogram) Snapshot() HistogramSnapshot {
	s := HistogramSnapshot{Buckets: make(map[float64]uint64, len(h.bounds))}
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i].Load()
		s.Buckets[b] = cum
	}
	s.Count = h.count.Load()
	s.Sum = f64frombits(h.sum.Load())
	return s
}

// commitStats are a stream's commit figures.
type commitStats struct {
	sync    *Histogram // seconds from handing the batch to pebble to its fsync's end
	batch   *Histogram // events per committed group
	lagging atomic.Uint64
}

func newCommitStats() *commitStats {
	return &commitStats{
		sync:  newHistogram(50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1),
		batch: newHistogram(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
	}
}

// CommitStats are a stream's commit and subscription figures, for
// /metrics: how long each group's WAL write and fsync took, how many
// events each group held, and how its live subscribers keep up.
type CommitStats struct {
	Sync  HistogramSnapshot // seconds
	Batch HistogramSnapshot // events per group
	// Subscribers are the live subscriptions; MaxBuffered the most events
	// one of them holds delivered but not yet read; Lagged how many times
	// one fell so far behind that it went back to reading from disk.
	Subscribers int
	MaxBuffered int
	Lagged      uint64
}

// CommitStats returns the stream's commit and subscription figures.
func (s *Stream) CommitStats() CommitStats {
	st := CommitStats{Sync: s.cstats.sync.Snapshot(), Batch: s.cstats.batch.Snapshot(), Lagged: s.cstats.lagging.Load()}
	s.mu.Lock()
	st.Subscribers = len(s.subs)
	for sub := range s.subs {
		st.MaxBuffered = max(st.MaxBuffered, len(sub.ch))
	}
	s.mu.Unlock()
	return st
}

func (c *commitStats) observeCommit(took time.Duration, events int) {
	c.sync.Observe(took.Seconds())
	c.batch.Observe(float64(events))
}

func f64bits(f float64) uint64     { return math.Float64bits(f) }
func f64frombits(b uint64) float64 { return math.Float64frombits(b) }
