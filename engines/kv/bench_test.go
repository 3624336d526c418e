package kv

import (
	"context"
	"fmt"
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
