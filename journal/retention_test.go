package journal

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// indexEntries counts a stream's index keys that point at seqs below seq.
func indexEntriesBelow(t *testing.T, s *Stream, seq int64) int {
	t.Helper()
	n := 0
	for _, p := range [][]byte{prefixSubject, prefixKind} {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: PrefixEnd(p)})
		if err != nil {
			t.Fatal(err)
		}
		for ok := it.First(); ok; ok = it.Next() {
			if seqOfIndexKey(it.Key()) < seq {
				n++
			}
		}
		it.Close()
	}
	return n
}

func TestPruneByAge(t *testing.T) {
	clock := newClock()
	opts := testOptions(vfs.NewMem())
	opts.Now = clock.Now
	opts.Retention = Retention{MaxAge: time.Hour}
	j := mustOpen(t, opts)
	defer func() { j.Close() }()
	s := j.Stream(Capture)
	for i := range 300 {
		mustAppend(t, s, body("capture.exec", fmt.Sprint("pid/", i%7), nil))
		clock.Advance(time.Minute) // 300 events over 5 hours
	}
	start := clock.Now()
	if n, err := j.Stream(Audit).Prune(context.Background(), start); n != 0 || err != nil {
		t.Fatalf("audit is never pruned: %d %v", n, err)
	}
	dropped, err := s.Prune(context.Background(), start)
	if err != nil {
		t.Fatal(err)
	}
	// Events at minutes 0..299; now = 300 min; cutoff = 240 min: 0..239 go.
	if dropped != 240 || s.FirstSeq() != 241 {
		t.Fatalf("dropped %d, first %d", dropped, s.FirstSeq())
	}
	checkpoint(t, s, 301, 1, 240, "age")
	if rep, err := s.Verify(context.Background()); err != nil || rep.BadSeq != 0 || rep.First != 241 || rep.Last != 301 {
		t.Fatalf("verify after prune: %+v %v", rep, err)
	}
	if n := indexEntriesBelow(t, s, 241); n != 0 {
		t.Fatalf("%d index entries of dropped events remain", n)
	}
	if raws := collect(t, s.Scan(Query{Subject: "pid/3"})); len(raws) == 0 || raws[0].Seq < 241 {
		t.Fatalf("subject scan after prune: %s", seqs(raws))
	}
	// A second pass right away has nothing to drop.
	if n, err := s.Prune(context.Background(), start); n != 0 || err != nil {
		t.Fatalf("second pass: %d %v", n, err)
	}
	// Restart: first seq and chain survive.
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = mustOpen(t, opts)
	s = j.Stream(Capture)
	if s.FirstSeq() != 241 || s.DurableSeq() != 301 {
		t.Fatalf("after restart %d..%d", s.FirstSeq(), s.DurableSeq())
	}
	mustAppend(t, s, body("capture.exec", "pid/1", nil))
	if rep, err := s.Verify(context.Background()); err != nil || rep.BadSeq != 0 || rep.Last != 302 {
		t.Fatalf("verify after restart: %+v %v", rep, err)
	}
	// Everything old: all goes, the checkpoint stays.
	clock.Advance(10 * time.Hour)
	if n, err := s.Prune(context.Background(), clock.Now()); err != nil || n != 62 {
		t.Fatalf("drop all: %d %v", n, err)
	}
	if s.FirstSeq() != 303 || s.DurableSeq() != 303 {
		t.Fatalf("after dropping all: %d..%d", s.FirstSeq(), s.DurableSeq())
	}
	if rep, err := s.Verify(context.Background()); err != nil || rep.BadSeq != 0 || rep.Events != 1 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

func checkpoint(t *testing.T, s *Stream, seq, from, to int64, reason string) {
	t.Helper()
	raws := collect(t, s.Scan(Query{From: seq, To: seq}))
	if len(raws) != 1 {
		t.Fatalf("no checkpoint at %d", seq)
	}
	ev, err := raws[0].Decode()
	if err != nil {
		t.Fatal(err)
	}
	// The anchor is the hash of the last dropped event: the prev of the
	// first one kept.
	next := collect(t, s.Scan(Query{From: to + 1, To: to + 1}))
	if len(next) != 1 {
		t.Fatalf("no event after the dropped range")
	}
	if ev.Kind != CheckpointKind || ev.Data["dropped_from"] != from || ev.Data["dropped_to"] != to ||
		ev.Data["reason"] != reason || ev.Data["anchor"] != next[0].Prev().String() {
		t.Fatalf("checkpoint %+v", ev)
	}
}

func TestPruneBySize(t *testing.T) {
	opts := testOptions(vfs.NewMem())
	opts.Retention = Retention{MaxBytes: 1} // always over
	j := mustOpen(t, opts)
	defer j.Close()
	s := j.Stream(Capture)
	for i := range 100 {
		var bodies []*Body
		for k := range 10 {
			bodies = append(bodies, body("capture.sample", fmt.Sprint("cpu/", k), map[string]any{"i": i}))
		}
		mustAppend(t, s, bodies...)
	}
	dropped, err := s.Prune(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if dropped != 100 || s.FirstSeq() != 101 {
		t.Fatalf("dropped %d, first %d", dropped, s.FirstSeq())
	}
	checkpoint(t, s, 1001, 1, 100, "size")
	if n := indexEntriesBelow(t, s, 101); n != 0 {
		t.Fatalf("%d index entries of dropped events remain", n)
	}
	if raws := collect(t, s.Scan(Query{Kind: "capture.sample"})); len(raws) != 900 || raws[0].Seq != 101 {
		t.Fatalf("kind scan after prune: %d events", len(raws))
	}
	if rep, err := s.Verify(context.Background()); err != nil || rep.BadSeq != 0 || rep.First != 101 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	// A subscriber asking for dropped seqs starts at the first stored one.
	sub := s.Subscribe(t.Context(), 1, nil)
	defer sub.Close()
	if it, err := sub.Next(t.Context()); err != nil || it.Raw.Seq != 101 {
		t.Fatalf("subscribe from a dropped seq: %+v %v", it, err)
	}
}

func TestRetentionLoop(t *testing.T) {
	clock := newClock()
	opts := testOptions(vfs.NewMem())
	opts.Now = clock.Now
	opts.Retention = Retention{MaxAge: time.Minute, Every: 5 * time.Millisecond}
	j := mustOpen(t, opts)
	defer j.Close()
	s := j.Stream(Capture)
	for range 10 {
		mustAppend(t, s, body("capture.exec", "pid/1", nil))
	}
	clock.Advance(time.Hour)
	deadline := time.Now().Add(5 * time.Second)
	for s.FirstSeq() != 11 {
		if time.Now().After(deadline) {
			t.Fatalf("retention loop did not prune: first %d", s.FirstSeq())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A capture-like stream keeps a large event's record in a blob file beside
// its sstables (pebble's value separation), so that compactions move keys
// and references rather than rewrite every 1 KiB log line; the records read
// back whole, the chain verifies, and a size pass still frees the space of
// the blob files whose records it dropped.
func TestCaptureSeparatesLargeValues(t *testing.T) {
	opts := testOptions(vfs.NewMem())
	j := mustOpen(t, opts)
	defer j.Close()
	s := j.Stream(Capture)
	// Incompressible, so that the files' sizes say where the bytes went.
	rnd := rand.New(rand.NewPCG(1, 2))
	msgs := make([]string, 2000)
	for i := range msgs {
		b := make([]byte, 500)
		for k := range b {
			b[k] = byte(rnd.Uint32())
		}
		msgs[i] = fmt.Sprintf("%x", b)
	}
	// Ten flushes of 200 events: ten blob files.
	for i := range 200 {
		var bodies []*Body
		for k := range 10 {
			bodies = append(bodies, body("capture.sample", fmt.Sprint("cpu/", k), map[string]any{"i": int64(i), "msg": msgs[i*10+k]}))
		}
		mustAppend(t, s, bodies...)
		if i%20 == 19 {
			if err := s.db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	m := s.db.Metrics()
	if m.BlobFiles.LiveCount != 10 || m.BlobFiles.Local.LiveSize < 1000*2000 || m.Table.Local.LiveSize > 200_000 {
		t.Fatalf("values not separated: %d blob files of %d bytes, sstables of %d bytes", m.BlobFiles.LiveCount, m.BlobFiles.Local.LiveSize, m.Table.Local.LiveSize)
	}
	// Small events stay in their sstables.
	if err := j.Stream(Audit).db.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := j.Stream(Audit).db.Metrics().BlobFiles.LiveCount; n != 0 {
		t.Fatalf("the audit stream separated values: %d blob files", n)
	}
	raws := collect(t, s.Scan(Query{}))
	if len(raws) != 2000 {
		t.Fatalf("read back %d events", len(raws))
	}
	ev, err := raws[1234].Decode()
	if err != nil || ev.Data["msg"] != msgs[1234] {
		t.Fatalf("event 1235: %v %v", ev, err)
	}
	if rep, err := s.Verify(context.Background()); err != nil || rep.BadSeq != 0 || rep.Events != 2000 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	// A size pass drops the oldest tenth, 200 records of 1 KiB: the live
	// files (those obsolete go in the background) shrink by about that.
	live := func() int64 {
		m := s.db.Metrics()
		return int64(m.Table.Local.LiveSize + m.BlobFiles.Local.LiveSize)
	}
	s.spec.Retention.MaxBytes = 1 // always over
	before := live()
	if n, err := s.Prune(context.Background(), time.Now()); err != nil || n != 200 {
		t.Fatalf("prune: %d %v", n, err)
	}
	if after := live(); after > before-150_000 {
		t.Fatalf("a size pass freed %d bytes (%d live before, %d after)", before-after, before, after)
	}
	if rep, err := s.Verify(context.Background()); err != nil || rep.BadSeq != 0 || rep.First != 201 {
		t.Fatalf("verify after prune: %+v %v", rep, err)
	}
}
