package archive

import (
	"bytes"
	"io"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/filter"
)

const benchEvents = 1 << 20

var (
	benchOnce sync.Once
	benchFile []byte
)

// benchCapture is a capture file of 1M varied events (a sixth of kind x.y).
func benchCapture(b *testing.B) []byte {
	benchOnce.Do(func() {
		var buf bytes.Buffer
		w, err := NewWriter(&buf, Header{Node: "bench", Stream: journal.Audit})
		if err != nil {
			b.Fatal(err)
		}
		g := newChainGen(journal.Audit, 0, journal.Hash{}, 42)
		for range benchEvents {
			if err := w.Write(g.next(b)); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		benchFile = buf.Bytes()
	})
	return benchFile
}

// BenchmarkRead1M reads a 1M-event capture file as `cairn read FILE where
// 'kind == "x.y"'` would: verified (every event's hash recomputed) or with
// SkipHashes (framing, links and the stream's SHA-256 only).
func BenchmarkRead1M(b *testing.B) {
	file := benchCapture(b)
	f, err := filter.Compile(`kind == "x.y"`)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		o    Options
		f    *filter.Filter
	}{
		{"verify+filter", Options{}, f},
		{"skiphashes+filter", Options{SkipHashes: true}, f},
		{"verify", Options{}, nil},
		{"skiphashes", Options{SkipHashes: true}, nil},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(file)))
			var events int64
			for b.Loop() {
				r, err := NewReader(bytes.NewReader(file), c.o)
				if err != nil {
					b.Fatal(err)
				}
				matched := 0
				for {
					ev, err := r.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					events++
					if c.f != nil && c.f.MatchRaw(ev) {
						matched++
					}
				}
				if c.f != nil && (matched < benchEvents/8 || matched > benchEvents/4) {
					b.Fatalf("%d of %d matched", matched, benchEvents)
				}
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
		})
	}
}

// BenchmarkWrite measures export: framing, SHA-256 and compression.
func BenchmarkWrite(b *testing.B) {
	g := newChainGen(journal.Audit, 0, journal.Hash{}, 1)
	evs := make([]*journal.Raw, 10000)
	for i := range evs {
		evs[i] = g.next(b)
	}
	var events int64
	for b.Loop() {
		w, _ := NewWriter(io.Discard, Header{Node: "bench", Stream: journal.Audit})
		for _, e := range evs {
			if err := w.Write(e); err != nil {
				b.Fatal(err)
			}
		}
		w.Close()
		events += int64(len(evs))
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}
