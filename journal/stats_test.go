package journal

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestCommitStats: each committed group is one observation of the sync
// histogram and of the batch size, and the buckets are cumulative.
func TestCommitStats(t *testing.T) {
	j := mustOpen(t, testOptions(vfs.NewMem()))
	defer j.Close()
	s := j.Stream(Audit)
	for range 3 {
		mustAppend(t, s, body("t.x", "a", nil), body("t.x", "b", nil))
	}
	st := s.CommitStats()
	if st.Sync.Count != 3 || st.Batch.Count != 3 || st.Batch.Sum != 6 {
		t.Fatalf("after 3 appends of 2: %+v", st)
	}
	if st.Batch.Buckets[1] != 0 || st.Batch.Buckets[2] != 3 || st.Batch.Buckets[4096] != 3 {
		t.Errorf("batch buckets %v", st.Batch.Buckets)
	}
	if st.Sync.Sum <= 0 || st.Sync.Buckets[1] != 3 {
		t.Errorf("sync %+v", st.Sync)
	}
	h := newHistogram(1, 10)
	for _, v := range []float64{0.5, 1, 5, 50} {
		h.Observe(v)
	}
	if sn := h.Snapshot(); sn.Buckets[1] != 2 || sn.Buckets[10] != 3 || sn.Count != 4 || sn.Sum != 56.5 {
		t.Errorf("histogram %+v", sn)
	}
}
