package kv

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// benchEnv uses the real file system: durable puts must pay the fsync.
func benchEnv(b *testing.B) *env {
	e := &env{t: b, fs: vfs.Default, clock: &clock{t: time.Now()}, tick: time.Hour}
	dir := b.TempDir()
	e.fs = vfs.Default
	e.dir = dir
	e.open()
	b.Cleanup(e.close)
	return e
}

func BenchmarkPut(b *testing.B) {
	e := benchEnv(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := e.s.Put(ctx, actor, PutRequest{Key: fmt.Appendf(nil, "k%d", i%1000), Value: []byte("value")}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutParallel64 is the etcd benchmark's 64-client put load
// in-process: 64 writers, 256-byte values over 10,000 keys. On this
// 2-core machine the rate is bounded by CPU, so it also reports the
// process's CPU time per put (user+system), the figure to cut.
func BenchmarkPutParallel64(b *testing.B) {
	e := benchEnv(b)
	ctx := context.Background()
	val := bytes.Repeat([]byte("v"), 256)
	var next atomic.Int64
	b.SetParallelism(32) // 64 writers on 2 cores
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := next.Add(1)
			if _, err := e.s.Put(ctx, actor, PutRequest{Key: fmt.Appendf(nil, "par/%06d", n%10000), Value: val}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkRangeSerial(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	for i := range 1000 {
		if _, err := e.s.Put(ctx, actor, PutRequest{Key: fmt.Appendf(nil, "k%d", i), Value: []byte("value")}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := e.s.Range(ctx, RangeRequest{Key: fmt.Appendf(nil, "k%d", i%1000)}); err != nil {
			b.Fatal(err)
		}
	}
}

// fill writes n versions of one key (or n puts over keys) in big txns-free
// batches of concurrent puts to keep setup fast.
func fillVersions(b *testing.B, e *env, key string, n int) {
	ctx := context.Background()
	const workers = 64
	errc := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := w; i < n; i += workers {
				if _, err := e.s.Put(ctx, actor, PutRequest{Key: []byte(key), Value: fmt.Appendf(nil, "v%d", i)}); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for range workers {
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHistoryFirstPage(b *testing.B) {
	e := newEnv(b)
	fillVersions(b, e, "hot", 100_000)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		n := 0
		err := e.s.History(ctx, []byte("hot"), 100, false, func(*Version) error { n++; return nil })
		if err != nil || n != 100 {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkHistoryReverseFirstPage: kv history KEY reverse limit=10 on a
// key with 100k versions reads about 10 of them, not the whole history.
func BenchmarkHistoryReverseFirstPage(b *testing.B) {
	e := newEnv(b)
	fillVersions(b, e, "hot", 100_000)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		n := 0
		err := e.s.History(ctx, []byte("hot"), 10, true, func(*Version) error { n++; return nil })
		if err != nil || n != 10 {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkWatchCatchUp(b *testing.B) {
	e := newEnv(b)
	const n = 200_000
	fillVersions(b, e, "w", n)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		wctx, cancel := context.WithCancel(ctx)
		got := 0
		err := e.s.Watch(wctx, []byte("w"), nil, 1, false, func(rev int64, evs []Event) error {
			if got += len(evs); got >= n {
				cancel()
			}
			return nil
		})
		if err != context.Canceled {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkWatchFanOut measures a durable put's latency and the time from
// the put to its event at a watch of its key, with 0, 1,000 and 3,000 idle
// watches on other keys (half single keys, half prefixes): the put must not
// pay for them, and the event must not wait on them (issue 12, item 6).
func BenchmarkWatchFanOut(b *testing.B) {
	for _, idle := range []int{0, 1000, 3000} {
		b.Run(fmt.Sprintf("idle=%d", idle), func(b *testing.B) {
			e := benchEnv(b)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan struct{})
			defer func() { cancel(); <-done }()
			var wg sync.WaitGroup
			for i := range idle {
				key, end := fmt.Appendf(nil, "idle/%d", i), []byte(nil)
				if i%2 == 1 {
					key = fmt.Appendf(nil, "idle/%d/", i)
					end = fmt.Appendf(nil, "idle/%d0", i)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					e.s.Watch(ctx, key, end, 0, false, func(int64, []Event) error { return nil })
				}()
			}
			events := make(chan time.Time, 1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.s.Watch(ctx, []byte("hot"), nil, 0, false, func(int64, []Event) error {
					events <- time.Now()
					return nil
				})
			}()
			go func() { wg.Wait(); close(done) }()
			for e.s.hub.count.Load() < int64(idle+1) {
				time.Sleep(time.Millisecond)
			}
			var put, toEvent []time.Duration
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				t0 := time.Now()
				if _, err := e.s.Put(ctx, actor, PutRequest{Key: []byte("hot"), Value: fmt.Appendf(nil, "v%d", i)}); err != nil {
					b.Fatal(err)
				}
				put = append(put, time.Since(t0))
				toEvent = append(toEvent, (<-events).Sub(t0))
			}
			b.StopTimer()
			b.ReportMetric(float64(quantile(put, 0.5).Microseconds()), "put-p50-µs")
			b.ReportMetric(float64(quantile(put, 0.99).Microseconds()), "put-p99-µs")
			b.ReportMetric(float64(quantile(toEvent, 0.5).Microseconds()), "event-p50-µs")
			b.ReportMetric(float64(quantile(toEvent, 0.99).Microseconds()), "event-p99-µs")
		})
	}
}

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))]
}
