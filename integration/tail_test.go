package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/cairnhq/cairn/client"
)

// streamItem is one result of Stream.Next.
type streamItem struct {
	a   client.Answer
	err error
}

// pump reads a stream in its own goroutine so the test can wait on it with
// a deadline. The goroutine ends with the stream's final outcome.
func pump(st *client.Stream) <-chan streamItem {
	ch := make(chan streamItem, 1024)
	go func() {
		defer close(ch)
		for {
			a, err := st.Next()
			ch <- streamItem{a, err}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// waitEnd waits for a stream to end and returns its final error (io.EOF for
// done), skipping answers still queued.
func waitEnd(t *testing.T, ch <-chan streamItem, within time.Duration) error {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case it, ok := <-ch:
			if !ok {
				t.Fatal("stream pump closed without a final outcome")
			}
			if it.err != nil {
				return it.err
			}
		case <-deadline:
			t.Fatalf("stream did not end within %v", within)
		}
	}
}

// TestTailCatchUpToLive opens tail from=50 while another connection keeps
// emitting, and requires every seq from 50 on exactly once across the
// catch-up/live boundary, then a prompt end on cancel.
func TestTailCatchUpToLive(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	c := dial(t, d)
	for i := range 200 {
		emit(t, c, fmt.Sprintf("emit app.before b/%d i=%d", i, i))
	}

	tc := dial(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	lastCh := make(chan int64, 1)
	go func() {
		var last int64
		for i := range 500 {
			row, err := tryEmit(c, fmt.Sprintf("emit app.during d/%d i=%d", i, i))
			if err != nil {
				t.Error(err)
				break
			}
			last = row.Seq
		}
		lastCh <- last
	}()

	st, err := tc.Stream(ctx, "tail from=50")
	if err != nil {
		t.Fatal(err)
	}
	answers := pump(st)

	// The connection serves other requests while the tail is open.
	do(t, tc, "status")

	next, last := int64(50), int64(-1)
	deadline := time.After(90 * time.Second)
	for last < 0 || next <= last {
		select {
		case it := <-answers:
			switch {
			case it.err != nil:
				t.Fatalf("tail ended early at seq %d: %v", next, it.err)
			case it.a.HasLine:
				t.Logf("tail line: %s", it.a.Line)
			case it.a.Event != nil:
				var ev wireEvent
				if err := json.Unmarshal(it.a.Event, &ev); err != nil {
					t.Fatalf("tail event %s: %v", it.a.Event, err)
				}
				if ev.Seq != next {
					t.Fatalf("tail gave seq %d, want %d (no gap, no duplicate)", ev.Seq, next)
				}
				next++
			default:
				t.Fatalf("tail answered a row: %s", it.a.Row)
			}
		case l := <-lastCh:
			if l <= 0 {
				t.Fatal("the writer emitted nothing")
			}
			last = l
		case <-deadline:
			t.Fatalf("tail reached seq %d only (last emitted %d) within 90s", next-1, last)
		}
	}

	if err := st.Cancel(); err != nil {
		t.Fatal(err)
	}
	if err := waitEnd(t, answers, 10*time.Second); !errors.Is(err, io.EOF) && !client.IsCanceled(err) {
		t.Fatalf("after Cancel, the tail ended with %v, want done or canceled", err)
	}
	do(t, tc, "status")
}
