package ui

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/journal"
)

// benchEvents is how many events the timeline benchmarks write into the
// stream they read (CAIRN_UI_BENCH_EVENTS overrides: the figures in
// docs/benchmarks.md are for a million).
func benchEvents(b *testing.B) int {
	if v := os.Getenv("CAIRN_UI_BENCH_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	return 1_000_000
}

// fillStream appends n events to st over one hour, 2,000 a batch, with a
// handful of kinds and subjects.
func fillStream(b *testing.B, st *journal.Stream, now *atomic.Int64, n int, kinds []string) {
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	const batch = 2000
	bodies := make([]*journal.Body, 0, batch)
	actor := journal.SystemActor()
	for i := 0; i < n; i += batch {
		bodies = bodies[:0]
		for k := i; k < min(n, i+batch); k++ {
			bodies = append(bodies, &journal.Body{Kind: kinds[k%len(kinds)], Subject: fmt.Sprintf("pid/%d", k%500), Actor: actor, Data: map[string]any{"rss": int64(k), "cpu_s": float64(k) / 1000}})
		}
		now.Store(base + int64(time.Hour)*int64(i)/int64(n))
		if _, err := st.Append(context.Background(), bodies...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTimeline is /ui/api/timeline's work (120 buckets and the newest
// 200 events) over an hour holding a million events: in the capture stream
// (counted from the time index: a binary search per bucket boundary), and
// in the audit stream (read, to count by kind).
func BenchmarkTimeline(b *testing.B) {
	n := benchEvents(b)
	for _, stream := range []string{journal.Capture, journal.Audit} {
		b.Run(fmt.Sprintf("%s/events=%d", stream, n), func(b *testing.B) {
			j, now := testJournal(b)
			st := j.Stream(stream)
			kinds := []string{"capture.sample", "capture.cgroup_sample", "capture.exec"}
			if stream == journal.Audit {
				kinds = []string{"kv.put", "kv.delete", "infra.create", "deploy.update"}
			}
			fillStream(b, st, now, n, kinds)
			base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
			q := TimelineQuery{Since: base.UnixNano(), Until: base.Add(time.Hour).UnixNano(), Buckets: 120, Limit: 200}
			b.ResetTimer()
			for b.Loop() {
				tl, err := BuildTimeline(context.Background(), []*journal.Stream{st}, q)
				if err != nil {
					b.Fatal(err)
				}
				if tl.Streams[0].Total != int64(n) || len(tl.Events) != 200 {
					b.Fatalf("counted %d events and listed %d, want %d and 200", tl.Streams[0].Total, len(tl.Events), n)
				}
			}
		})
	}
}
