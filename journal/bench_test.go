package journal

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

const benchBatch = 1000

func benchBodies(n int) []*Body {
	out := make([]*Body, n)
	for i := range out {
		out[i] = &Body{
			Kind:    "bench.emit",
			Subject: fmt.Sprintf("key/%d", i%100),
			Node:    "bench",
			Actor:   Actor{UID: 1000, GID: 1000, PID: 4242, Via: "socket"},
			Data:    map[string]any{"i": int64(i)},
		}
	}
	return out
}

func benchJournal(b *testing.B) *Journal {
	b.Helper()
	// Signing as the daemon does: the signer must cost appends nothing.
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	j, err := Open(Options{Dir: b.TempDir(), Logger: quietLogger(), Signing: Signing{Key: key}})
	if err != nil {
		b.Fatal(err)
	}
	return j
}

func reportRate(b *testing.B, events int) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAppendBatched appends batches of 1000 small events, each batch
// one synced commit, encoding and hash chain included.
func BenchmarkAppendBatched(b *testing.B) {
	j := benchJournal(b)
	defer j.Close()
	s := j.Stream(Audit)
	bodies := benchBodies(benchBatch)
	ctx := context.Background()
	b.ResetTimer()
	for done := 0; done < b.N; done += benchBatch {
		if _, err := s.Append(ctx, bodies[:min(benchBatch, b.N-done)]...); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, b.N)
}

// BenchmarkPebbleRawBatched writes what BenchmarkAppendBatched writes (per
// event: the record under e/seq and its subject and kind index keys, same
// sizes) straight into pebble, in the same batches, synced. keys=1 writes
// only the record, the baseline.
func BenchmarkPebbleRawBatched(b *testing.B) {
	bodies := benchBodies(benchBatch)
	recs := make([][]byte, len(bodies))
	for i, bd := range bodies {
		p, err := EncodeBody(bd)
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = EncodeRecord(1, Hash{}, Hash{}, p)
	}
	for _, keys := range []int{1, 3} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			db, err := pebble.Open(b.TempDir(), &pebble.Options{
				Logger:             pebbleLogger{log: quietLogger()},
				FormatMajorVersion: pebble.FormatNewest,
			})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			var kbuf []byte
			b.ResetTimer()
			seq := int64(0)
			for done := 0; done < b.N; done += benchBatch {
				batch := db.NewBatch()
				for i := range min(benchBatch, b.N-done) {
					seq++
					kbuf = appendEventKey(kbuf[:0], seq)
					if err := batch.Set(kbuf, recs[i], nil); err != nil {
						b.Fatal(err)
					}
					if keys == 3 {
						kbuf = appendIndexKey(kbuf[:0], prefixSubject, bodies[i].Subject, seq)
						_ = batch.Set(kbuf, nil, nil)
						kbuf = appendIndexKey(kbuf[:0], prefixKind, bodies[i].Kind, seq)
						_ = batch.Set(kbuf, nil, nil)
					}
				}
				if err := batch.Commit(pebble.Sync); err != nil {
					b.Fatal(err)
				}
				batch.Close()
			}
			reportRate(b, b.N)
		})
	}
}

// BenchmarkAppendConcurrent64 has 64 writers each appending one event at a
// time and waiting for it to be durable.
func BenchmarkAppendConcurrent64(b *testing.B) {
	j := benchJournal(b)
	defer j.Close()
	s := j.Stream(Audit)
	bodies := benchBodies(64)
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := range 64 {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if _, err := s.Append(ctx, bodies[w]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	reportRate(b, b.N)
	b.ReportMetric(float64(b.N)/float64(s.commits.Load()), "events/commit")
}

// BenchmarkScan scans b.N stored events forward.
func BenchmarkScan(b *testing.B) {
	j := benchJournal(b)
	defer j.Close()
	s := j.Stream(Audit)
	bodies := benchBodies(benchBatch)
	for done := 0; done < b.N; done += benchBatch {
		if _, err := s.Append(context.Background(), bodies[:min(benchBatch, b.N-done)]...); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	n := 0
	it := s.Scan(Query{})
	for it.Next() {
		n++
	}
	if err := it.Close(); err != nil || n != b.N {
		b.Fatalf("scanned %d of %d: %v", n, b.N, err)
	}
	reportRate(b, n)
}

// BenchmarkScanKindGlob scans b.N events through a kind glob, which reads
// each event's kind without decoding its body.
func BenchmarkScanKindGlob(b *testing.B) {
	j := benchJournal(b)
	defer j.Close()
	s := j.Stream(Audit)
	bodies := benchBodies(benchBatch)
	for done := 0; done < b.N; done += benchBatch {
		if _, err := s.Append(context.Background(), bodies[:min(benchBatch, b.N-done)]...); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	n := 0
	it := s.Scan(Query{Kind: "bench.*", Subject: "key/1?"})
	for it.Next() {
		n++
	}
	if err := it.Close(); err != nil {
		b.Fatal(err)
	}
	reportRate(b, b.N)
}
