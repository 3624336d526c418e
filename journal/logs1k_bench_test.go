package journal

import (
	"context"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// cpuTime is the process's user and system CPU time in ns.
func cpuTime() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkCaptureAppend1K appends batches of 500 events of about 1 KiB to
// a capture-like stream from 8 writers, as the logs engine's forward input
// does with 8 PackedForward clients; it reports pebble's write
// amplification beside the rate.
func BenchmarkCaptureAppend1K(b *testing.B) {
	j := benchJournal(b)
	defer j.Close()
	s := j.Stream(Capture)
	const writers, batch = 8, 500
	mk := func(w int) []*Body {
		out := make([]*Body, batch)
		for i := range out {
			out[i] = &Body{Kind: "logs.record", Subject: "bench.fwd", Node: "bench",
				Actor: Actor{UID: -1, GID: -1, Via: "forward", Addr: "127.0.0.1:5000"},
				Data: map[string]any{"tag": "bench.fwd", "time": int64(i), "record": map[string]any{
					"level": "info", "client": int64(w), "i": int64(i), "host": "web-01", "path": "/api/v1/orders",
					"status": int64(200), "latency_ms": 12.5, "user_agent": "Mozilla/5.0 (X11; Linux x86_64) bench",
					"msg": strings.Repeat("x", 800)}}}
		}
		return out
	}
	ctx := context.Background()
	cpu0 := cpuTime()
	b.ResetTimer()
	var wg sync.WaitGroup
	per := (b.N + writers - 1) / writers
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bodies := mk(w)
			for done := 0; done < per; done += batch {
				if _, err := s.Append(ctx, bodies[:min(batch, per-done)]...); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	reportRate(b, per*writers)
	b.ReportMetric(float64(cpuTime()-cpu0)/1e3/float64(per*writers), "cpu-µs/event")
	m := s.db.Metrics()
	tot := m.Total()
	b.ReportMetric(float64(tot.TableBytesFlushed+tot.TableBytesCompacted+tot.BlobBytesFlushed+tot.BlobBytesCompacted)/float64(max(m.WAL.BytesWritten, 1)), "w-amp")
	if testing.Verbose() {
		b.Logf("%s", m)
	}
}
