package filter

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/journal"
)

// runaway costs far more than the limit on an event whose data holds a
// list of 2,000 numbers: a nested comprehension over it.
const runaway = `data.xs.all(x, data.xs.all(y, data.xs.all(z, x + y + z >= 0)))`

func listEvent(t *testing.T) fixture {
	xs := make([]any, 2000)
	for i := range xs {
		xs[i] = int64(i)
	}
	return newFixture(t, "list", &journal.Event{Stream: journal.Audit, Seq: 1, Time: 1, Body: journal.Body{Kind: "app.list", Data: map[string]any{"xs": xs}}})
}

// TestCostLimitIsAnError: an evaluation over the cost limit is an error
// naming the expression (issue 11 finding 6: it was a quiet "no match" and
// took seconds per event).
func TestCostLimitIsAnError(t *testing.T) {
	f, err := Compile(runaway)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := f.Match(context.Background(), listEvent(t).raw)
	if ok || !errors.Is(err, ErrCostLimit) || !strings.Contains(err.Error(), "data.xs.all") {
		t.Fatalf("Match = %v, %v; want ErrCostLimit naming the expression", ok, err)
	}
}

// TestCanceledEvaluationEnds: a client that leaves ends an evaluation in
// progress.
func TestCanceledEvaluationEnds(t *testing.T) {
	f, err := Compile(`data.xs.all(x, data.xs.all(y, x + y >= 0))`) // under the limit per step, long in all
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = f.Match(ctx, listEvent(t).raw)
	if err == nil || !errors.Is(err, context.Canceled) && !errors.Is(err, ErrCostLimit) {
		t.Fatalf("Match with a canceled context: %v", err)
	}
}

// TestCheapExpressionsStayCheap: bounded expressions answer as MatchRaw
// does, with no error for a missing field.
func TestCheapExpressionsStayCheap(t *testing.T) {
	f, err := Compile(`kind == "app.list" && proc.name == "x"`)
	if err != nil {
		t.Fatal(err)
	}
	if f.limited {
		t.Fatal("a bounded expression runs with cost tracking")
	}
	ok, err := f.Match(context.Background(), listEvent(t).raw)
	if ok || err != nil {
		t.Fatalf("Match = %v, %v; want false, nil", ok, err)
	}
}
