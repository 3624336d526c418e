package journal

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is an injectable Options.Now that tests can move.
type fakeClock struct{ ns atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testOptions returns options on fs with plenty of free space.
func testOptions(fs vfs.FS) Options {
	return Options{
		Dir:      "/data",
		FS:       fs,
		Node:     "testnode",
		Logger:   quietLogger(),
		DiskFree: func(string) (uint64, error) { return math.MaxUint64, nil },
	}
}

func mustOpen(t testing.TB, opts Options) *Journal {
	t.Helper()
	j, err := Open(opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return j
}

func body(kind, subject string, data map[string]any) *Body {
	return &Body{Kind: kind, Subject: subject, Actor: Actor{UID: 1000, GID: 1000, PID: 42, Via: "socket"}, Data: data}
}

func mustAppend(t testing.TB, s *Stream, bodies ...*Body) []Committed {
	t.Helper()
	c, err := s.Append(context.Background(), bodies...)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return c
}

// collect reads a whole query into cloned Raws.
func collect(t testing.TB, it *Iter) []*Raw {
	t.Helper()
	var out []*Raw
	for it.Next() {
		out = append(out, it.Raw().Clone())
	}
	if err := it.Close(); err != nil {
		t.Fatalf("iter: %v", err)
	}
	return out
}

// checkChain checks that raws are seqs from..from+len-1 with a valid chain.
func checkChain(t testing.TB, raws []*Raw, from int64) {
	t.Helper()
	for i, r := range raws {
		if r.Seq != from+int64(i) {
			t.Fatalf("raw %d: seq %d, want %d", i, r.Seq, from+int64(i))
		}
		if r.ComputeHash() != r.Hash() {
			t.Fatalf("seq %d: hash mismatch", r.Seq)
		}
		if i > 0 && r.Prev() != raws[i-1].Hash() {
			t.Fatalf("seq %d: prev does not chain", r.Seq)
		}
		if i > 0 && r.Time() < raws[i-1].Time() {
			t.Fatalf("seq %d: time goes backwards", r.Seq)
		}
	}
}

func seqs(raws []*Raw) string {
	s := ""
	for _, r := range raws {
		s += fmt.Sprint(r.Seq, " ")
	}
	return s
}
