package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/journal"
)

// TestImportSkew: an imported event stamped beyond five minutes ahead of
// the daemon's clock is refused, naming its seq (issue 11 finding 3: a
// forged time in 2262 dragged every later event's time with it).
func TestImportSkew(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	raw := func(seq int64, at time.Time) *journal.Raw {
		return &journal.Raw{Stream: journal.Audit, Seq: seq, Record: journal.EncodeRecord(at.UnixNano(), journal.Hash{}, journal.Hash{}, nil)}
	}
	ok := []*journal.Raw{raw(1, now.Add(-time.Hour)), raw(2, now.Add(4*time.Minute))}
	if err := checkSkew(ok, now); err != nil {
		t.Fatalf("events within the skew: %v", err)
	}
	future := append(ok, raw(3, time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)))
	err := checkSkew(future, now)
	if wire.CodeOf(err) != wire.InvalidArgument || !strings.Contains(err.Error(), "seq 3") || !strings.Contains(err.Error(), "2262") {
		t.Fatalf("an event in 2262: %v, want invalid_argument naming seq 3", err)
	}
}
