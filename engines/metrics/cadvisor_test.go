package metrics

import (
	"testing"
	"time"

	"github.com/cairnhq/cairn/engines/runtime/cgstat"
)

// TestSampleRingGap: readings closer than the gap to the last kept (a GET
// of /metrics right after a collection) are not kept; the ring holds the
// last samplesKept.
func TestSampleRingGap(t *testing.T) {
	r := sampleRing{minGap: 5 * time.Second}
	t0 := time.Unix(1_700_000_000, 0)
	for _, off := range []time.Duration{0, time.Second, 5 * time.Second, 9 * time.Second, 10 * time.Second} {
		r.add("/cairn/x", cgstat.Stats{Read: t0.Add(off)})
	}
	got := r.last("/cairn/x", 10)
	if len(got) != 3 || !got[1].Read.Equal(t0.Add(5*time.Second)) || !got[2].Read.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("kept %v", got)
	}
	for i := range samplesKept + 5 {
		r.add("/cairn/y", cgstat.Stats{Read: t0.Add(time.Duration(i) * time.Minute)})
	}
	if got := r.last("/cairn/y", 1000); len(got) != samplesKept || !got[samplesKept-1].Read.Equal(t0.Add(time.Duration(samplesKept+4)*time.Minute)) {
		t.Fatalf("ring of %d, last %v", len(got), got[len(got)-1].Read)
	}
}
