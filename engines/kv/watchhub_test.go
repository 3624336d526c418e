package kv

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestRangeIndexStab checks the interval index against a scan of every
// range, for single points, prefixes, from-key ranges and empty ranges.
func TestRangeIndexStab(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	word := func() []byte { return fmt.Appendf(nil, "%c%c", 'a'+rng.IntN(6), 'a'+rng.IntN(6)) }
	for round := range 50 {
		set := map[*watcher]struct{}{}
		n := rng.IntN(40)
		for range n {
			w := &watcher{key: word()}
			switch rng.IntN(3) {
			case 0:
				w.end = []byte{0}
			case 1:
				w.end = PrefixEnd(w.key[:1])
			default:
				w.end = word() // may end before it starts: holds nothing
			}
			set[w] = struct{}{}
		}
		var x rangeIndex
		x.build(set)
		for a := 'a' - 1; a <= 'g'; a++ {
			for b := 'a' - 1; b <= 'g'; b++ {
				key := []byte{byte(a), byte(b)}
				got := map[*watcher]bool{}
				x.stab(key, func(w *watcher) {
					if got[w] {
						t.Fatalf("round %d key %q: a range found twice", round, key)
					}
					got[w] = true
				})
				for w := range set {
					if inRange(key, w.key, w.end) != got[w] {
						t.Fatalf("round %d key %q: range [%q, %q) found %v", round, key, w.key, w.end, got[w])
					}
				}
			}
		}
	}
}

// fanWatch is one watch of a fan-out test and what it received.
type fanWatch struct {
	key, end []byte
	from     int64
	mu       sync.Mutex
	got      []string
}

func (f *fanWatch) record(rev int64, evs []Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range evs {
		f.got = append(f.got, fmt.Sprintf("%d %v %s=%s", rev, e.Type, e.KV.Key, e.KV.Value))
	}
	return nil
}

func (f *fanWatch) snapshot() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

// TestWatchFanOut runs many watches of every shape, some from the past and
// some created while writes go on, over puts, txns and range deletes, and
// checks each received exactly its range's changes from its start, in
// order, against the journal read back.
func TestWatchFanOut(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := e.s
	rng := rand.New(rand.NewPCG(3, 4))
	key := func() []byte { return fmt.Appendf(nil, "k%02d", rng.IntN(40)) }
	write := func() {
		var err error
		switch rng.IntN(4) {
		case 0, 1:
			_, err = s.Put(ctx, actor, PutRequest{Key: key(), Value: fmt.Appendf(nil, "v%d", rng.IntN(1000))})
		case 2:
			var ops []Op
			seen := map[string]bool{}
			for range 1 + rng.IntN(10) {
				k := key()
				if !seen[string(k)] {
					seen[string(k)] = true
					ops = append(ops, Op{Put: &PutRequest{Key: k, Value: []byte("t")}})
				}
			}
			_, err = s.Txn(ctx, actor, TxnRequest{Success: ops})
		case 3:
			k := key()
			_, err = s.Delete(ctx, actor, DeleteRequest{Key: k, End: PrefixEnd(k[:2])})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for range 50 {
		write()
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		watches []*fanWatch
		wg      sync.WaitGroup
		errs    = make(chan error, 1000)
	)
	start := func() {
		f := &fanWatch{key: key(), from: rng.Int64N(s.Rev() + 2)}
		switch rng.IntN(3) {
		case 0:
			f.end = []byte{0}
		case 1:
			f.end = PrefixEnd(f.key[:2])
		}
		if f.from == 0 {
			// From now: the events after the current revision.
			f.from = s.st.DurableSeq() + 1
		}
		watches = append(watches, f)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Watch(wctx, f.key, f.end, f.from, false, f.record); !errors.Is(err, context.Canceled) {
				errs <- err
			}
		}()
	}
	for range 300 {
		start()
	}
	for i := range 200 {
		write()
		if i%4 == 0 {
			start()
		}
	}
	last := s.Rev()
	// What each watch must have received, from the journal.
	want := func(f *fanWatch) []string {
		var out []string
		w := &watcher{key: f.key, end: f.end, next: f.from}
		for w.next <= last {
			chunk, _, err := s.readChunk(w, last)
			if err != nil {
				t.Fatal(err)
			}
			for _, ro := range chunk {
				evs, err := s.expand(ro.seq, ro.ops, f.key, f.end, false)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range evs {
					out = append(out, fmt.Sprintf("%d %v %s=%s", ro.seq, e.Type, e.KV.Key, e.KV.Value))
				}
			}
		}
		return out
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, f := range watches {
		w := want(f)
		for {
			got := f.snapshot()
			if len(got) >= len(w) || time.Now().After(deadline) {
				if !slices.Equal(got, w) {
					t.Fatalf("watch [%s, %q) from %d: got %d events, want %d\ngot  %q\nwant %q", f.key, f.end, f.from, len(got), len(w), got, w)
				}
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := s.hub.count.Load(); n != 0 {
		t.Errorf("%d watches still in the hub after they ended", n)
	}
}

// TestWatchSlowFallsBack: a watch that does not take its events while many
// revisions go by is dropped back to unsynced, without holding up writes or
// a watch that keeps up, and still receives every revision once, in order.
func TestWatchSlowFallsBack(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := e.s
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const n = 3 * watchBuffer
	release := make(chan struct{})
	slowDone, fastDone := make(chan []int64, 1), make(chan []int64, 1)
	watch := func(block bool, out chan []int64) {
		var revs []int64
		err := s.Watch(wctx, []byte("k"), nil, 0, false, func(rev int64, evs []Event) error {
			if block && len(revs) == 0 {
				<-release
			}
			revs = append(revs, rev)
			if len(revs) == n {
				out <- revs
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Error(err)
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); watch(true, slowDone) }()
	go func() { defer wg.Done(); watch(false, fastDone) }()
	for s.hub.count.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	var puts []int64
	for i := range n {
		r, err := s.Put(ctx, actor, PutRequest{Key: []byte("k"), Value: fmt.Appendf(nil, "%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		puts = append(puts, r.Rev)
	}
	// The fast watch has everything while the slow one still blocks.
	if got := <-fastDone; !slices.Equal(got, puts) {
		t.Fatalf("fast watch: %v, want %v", got, puts)
	}
	// The slow one was dropped to unsynced (the fast one may be too, on a
	// busy machine: that is allowed, and it still got everything).
	if d := s.hub.drops.Load(); d < 1 {
		t.Fatalf("%d watches dropped to unsynced, want at least the slow one", d)
	}
	close(release)
	if got := <-slowDone; !slices.Equal(got, puts) {
		t.Fatalf("slow watch: %v, want %v", got, puts)
	}
	// It is back in the synced group, and live.
	for s.hub.count.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
}

// TestIdleWatchesKeepSmallStacks: a watch from now on, honouring
// compaction as the etcd API's do, joins the hub without reading the
// projection. Such a read left each watch's goroutine parked on a stack
// grown for pebble's lookup, which the next collection had to scan and
// shrink: 3,000 at a time in etcd's fan-out benchmark, where that
// collection took 40-90 ms instead of 14.
func TestIdleWatchesKeepSmallStacks(t *testing.T) {
	if raceEnabled {
		t.Skip("stack figures are the race detector's too; make unit runs this test without it")
	}
	e := newEnv(t)
	s := e.s
	ctx := context.Background()
	for i := range 20 {
		if _, err := s.Put(ctx, actor, PutRequest{Key: fmt.Appendf(nil, "k%02d", i), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Compact(ctx, actor, s.Rev(), false); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range n {
		wg.Go(func() {
			s.WatchWith(wctx, fmt.Appendf(nil, "w%04d", i), nil, 0, WatchOptions{Compaction: true}, func(int64, []Event) error { return nil })
		})
	}
	for deadline := time.Now().Add(10 * time.Second); s.hub.count.Load() < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d watches joined the hub in 10s", s.hub.count.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
	runtime.ReadMemStats(&after)
	if per := (after.StackInuse - before.StackInuse) / n; per > 3072 {
		t.Fatalf("%d bytes of stack per idle watch, want at most 3072 (one that read the projection holds 4.5-5 KiB)", per)
	}
}
