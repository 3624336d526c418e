package journal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// writeUntil appends one event at a time until ctx ends.
func writeUntil(ctx context.Context, t *testing.T, s *Stream, wg *sync.WaitGroup) {
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			kind := "test.emit"
			if i%3 == 0 {
				kind = "test.other"
			}
			if _, err := s.Append(ctx, body(kind, fmt.Sprint(i), nil)); err != nil && ctx.Err() == nil {
				t.Error(err)
			}
		}
	})
}

func TestSubscribeCatchUpThenLive(t *testing.T) {
	opts := testOptions(vfs.NewMem())
	j := mustOpen(t, opts)
	defer j.Close()
	s := j.Stream(Audit)
	for i := range 1000 {
		mustAppend(t, s, body("test.emit", fmt.Sprint(i), nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	writeUntil(ctx, t, s, &wg)

	sub := s.Subscribe(ctx, 10, nil)
	next := int64(10)
	for next < 5000 {
		it, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if it.Lagged {
			continue
		}
		if it.Raw.Seq != next {
			t.Fatalf("got seq %d, want %d", it.Raw.Seq, next)
		}
		if it.Raw.Seq > s.DurableSeq() {
			t.Fatalf("seq %d beyond durable", it.Raw.Seq)
		}
		next++
	}
	if !sub.live {
		t.Fatal("subscriber never went live")
	}
	// A filtered subscriber sees exactly the matching events.
	fsub := s.Subscribe(ctx, 1, func(r *Raw) bool {
		k, _, _ := peekEnvelope(r.Body())
		return string(k) == "test.other"
	})
	for range 200 {
		it, err := fsub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if it.Raw != nil {
			if ev, _ := it.Raw.Decode(); ev.Kind != "test.other" {
				t.Fatalf("filter let %s through", ev.Kind)
			}
		}
	}
	fsub.Close()
	if _, err := fsub.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
	cancel()
	wg.Wait()
	sub.Close()
}

// auditWithBuffer opens a journal whose subscribers buffer n live events
// and returns its audit stream; the journal closes when the test ends.
func auditWithBuffer(t *testing.T, n int) *Stream {
	t.Helper()
	opts := testOptions(vfs.NewMem())
	opts.SubscriberBuffer = n
	j := mustOpen(t, opts)
	t.Cleanup(func() { j.Close() })
	return j.Stream(Audit)
}

// goLive waits briefly on sub with nothing to read, so that it joins the
// live feed.
func goLive(t *testing.T, sub *Subscription) {
	t.Helper()
	short, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := sub.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("idle Next: %v", err)
	}
	if !sub.live {
		t.Fatal("not live")
	}
}

func TestSubscribeLagged(t *testing.T) {
	s := auditWithBuffer(t, 8)
	ctx := t.Context()
	sub := s.Subscribe(ctx, 0, nil) // from the current end
	defer sub.Close()

	// Go live: nothing to read yet, so Next waits; one event wakes it.
	mustAppend(t, s, body("test.emit", "0", nil))
	if it, err := sub.Next(ctx); err != nil || it.Raw.Seq != 1 {
		t.Fatalf("first: %+v %v", it, err)
	}
	goLive(t, sub)
	// Now write far more than the buffer while the subscriber sleeps.
	for i := range 100 {
		mustAppend(t, s, body("test.emit", fmt.Sprint(i), nil))
	}
	lagged := 0
	for next := int64(2); next <= 101; {
		it, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if it.Lagged {
			lagged++
			continue
		}
		if it.Raw.Seq != next {
			t.Fatalf("after lag: seq %d, want %d", it.Raw.Seq, next)
		}
		next++
	}
	if lagged != 1 {
		t.Fatalf("%d lagged notices, want 1", lagged)
	}
	// And it is live again.
	mustAppend(t, s, body("test.emit", "x", nil))
	if it, err := sub.Next(ctx); err != nil || it.Raw.Seq != 102 {
		t.Fatalf("live after lag: %+v %v", it, err)
	}
}

func TestSubscribeLaggedUnderLoad(t *testing.T) {
	s := auditWithBuffer(t, 4)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		writeUntil(ctx, t, s, &wg)
	}
	sub := s.Subscribe(ctx, 1, nil)
	lagged := 0
	for next := int64(1); next < 3000; {
		it, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if it.Lagged {
			lagged++
			continue
		}
		if it.Raw.Seq != next {
			t.Fatalf("seq %d, want %d", it.Raw.Seq, next)
		}
		next++
		if next%100 == 0 {
			time.Sleep(2 * time.Millisecond) // a slow reader
		}
	}
	t.Logf("%d lagged notices", lagged)
	cancel()
	wg.Wait()
	sub.Close()
}

func TestSubscribeEnds(t *testing.T) {
	j := mustOpen(t, testOptions(vfs.NewMem()))
	s := j.Stream(Audit)
	mustAppend(t, s, body("test.emit", "a", nil))

	// Context cancel ends a blocked Next.
	ctx, cancel := context.WithCancel(context.Background())
	sub := s.Subscribe(ctx, 2, nil)
	errc := make(chan error, 1)
	go func() { _, err := sub.Next(context.Background()); errc <- err }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel: %v", err)
	}

	// Close from another goroutine ends a blocked Next.
	sub = s.Subscribe(context.Background(), 2, nil)
	go func() { _, err := sub.Next(context.Background()); errc <- err }()
	time.Sleep(20 * time.Millisecond)
	sub.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}

	// Closing the journal ends a blocked Next.
	sub = s.Subscribe(context.Background(), 0, nil)
	go func() { _, err := sub.Next(context.Background()); errc <- err }()
	time.Sleep(20 * time.Millisecond)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("after journal close: %v", err)
	}
	// Readers after close fail cleanly.
	if it := s.Scan(Query{}); it.Next() || !errors.Is(it.Err(), ErrClosed) {
		t.Fatalf("scan after close: %v", it.Err())
	}
	sn := s.Snapshot()
	if _, _, err := sn.Get("x", []byte("k")); !errors.Is(err, ErrClosed) {
		t.Fatalf("snapshot after close: %v", err)
	}
	sn.Close()
}

// TestCloseWithOpenReaders closes the journal under open iterators and
// snapshots: pebble must close cleanly and the readers fail with ErrClosed.
func TestCloseWithOpenReaders(t *testing.T) {
	j := mustOpen(t, testOptions(vfs.NewMem()))
	s := j.Stream(Audit)
	for i := range 10 {
		mustAppend(t, s, body("test.emit", fmt.Sprint(i), nil))
	}
	it := s.Scan(Query{})
	if !it.Next() {
		t.Fatal(it.Err())
	}
	sn := s.Snapshot()
	if err := j.Close(); err != nil {
		t.Fatalf("close with open readers: %v", err)
	}
	if it.Next() || !errors.Is(it.Err(), ErrClosed) {
		t.Fatalf("iter after close: %v", it.Err())
	}
	it.Close()
	if err := sn.Iter("x", nil, nil, func(k, v []byte) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("snapshot iter after close: %v", err)
	}
	sn.Close()
}

// TestSubscribeKinds: a live SubscribeKinds subscriber is handed only the
// kinds it reads (a commit of others leaves its buffer empty, so it is
// not woken), it still gets those in order across the gaps, from disk
// and live, and with a buffer of 8 a hundred events of other kinds do not
// make it lag.
func TestSubscribeKinds(t *testing.T) {
	s := auditWithBuffer(t, 8)
	ctx := t.Context()
	for i := range 10 { // seqs 1-10 on disk: 3, 6 and 9 are test.emit
		kind := "test.other"
		if i%3 == 2 {
			kind = "test.emit"
		}
		mustAppend(t, s, body(kind, fmt.Sprint(i), nil))
	}
	emits := func(kind string) bool { return kind == "test.emit" }
	sub := s.SubscribeKinds(ctx, 1, emits, func(r *Raw) bool { return string(r.Body()) != "" })
	defer sub.Close()
	for _, want := range []int64{3, 6, 9} {
		it, err := sub.Next(ctx)
		if err != nil || it.Lagged || it.Raw.Seq != want {
			t.Fatalf("from disk: %+v %v, want seq %d", it, err, want)
		}
	}
	goLive(t, sub)
	for i := range 100 {
		mustAppend(t, s, body("test.other", fmt.Sprint(i), nil))
	}
	if n := len(sub.ch); n != 0 {
		t.Fatalf("%d events of another kind handed to the subscriber", n)
	}
	mustAppend(t, s, body("test.emit", "a", nil)) // seq 111
	mustAppend(t, s, body("test.other", "b", nil))
	mustAppend(t, s, body("test.emit", "c", nil)) // seq 113
	for _, want := range []int64{111, 113} {
		it, err := sub.Next(ctx)
		if err != nil || it.Lagged || it.Raw.Seq != want {
			t.Fatalf("live: %+v %v, want seq %d", it, err, want)
		}
	}
	// A plain subscriber with the same buffer lags on the same load.
	plain := s.Subscribe(ctx, 0, nil)
	defer plain.Close()
	goLive(t, plain)
	for i := range 20 {
		mustAppend(t, s, body("test.other", fmt.Sprint(i), nil))
	}
	// Next may hand out what its buffer holds before it sees the kick: the
	// notice comes among the 20 events and itself.
	lagged := false
	for range 21 {
		it, err := plain.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if it.Lagged {
			lagged = true
			break
		}
	}
	if !lagged {
		t.Fatal("plain subscriber: no lag notice, want one")
	}
}
