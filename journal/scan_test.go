package journal

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

type refEvent struct {
	seq, time     int64
	kind, subject string
}

// TestScanMatchesBruteForce runs on audit (with a subject index) and on
// capture (without: an exact subject falls back to a filtered scan).
func TestScanMatchesBruteForce(t *testing.T) {
	for _, stream := range []string{Audit, Capture} {
		t.Run(stream, func(t *testing.T) { scanMatchesBruteForce(t, stream) })
	}
}

func scanMatchesBruteForce(t *testing.T, stream string) {
	clock := newClock()
	opts := testOptions(vfs.NewMem())
	opts.Now = clock.Now
	j := mustOpen(t, opts)
	defer j.Close()
	s := j.Stream(stream)

	kinds := []string{"kv.put", "kv.delete", "infra.create", "infra.drift", "kv.txn"}
	subjects := []string{"app/db/url", "app/db/user", "app/web", "pid/1", "", "x.y"}
	rng := rand.New(rand.NewPCG(1, 2))
	var ref []refEvent
	for len(ref) < 3000 {
		n := 1 + rng.IntN(20)
		var bodies []*Body
		for range n {
			bodies = append(bodies, body(kinds[rng.IntN(len(kinds))], subjects[rng.IntN(len(subjects))], nil))
		}
		// Some groups share a time; the clock never goes back.
		if rng.IntN(3) > 0 {
			clock.Advance(time.Duration(rng.IntN(1000)) * time.Millisecond)
		}
		for i, c := range mustAppend(t, s, bodies...) {
			ref = append(ref, refEvent{c.Seq, c.Time, bodies[i].Kind, bodies[i].Subject})
		}
	}
	last := ref[len(ref)-1]
	mid := ref[len(ref)/2]

	queries := []Query{
		{},
		{Reverse: true},
		{From: 100, To: 200},
		{From: 2900, Reverse: true},
		{To: 5},
		{From: 10, To: 5},
		{Since: mid.time},
		{Until: mid.time},
		{Since: ref[500].time, Until: ref[1500].time, Reverse: true},
		{Since: last.time + 1},
		{Until: ref[0].time - 1},
		{Subject: "app/db/url"},
		{Subject: "app/db/url", Reverse: true, From: 1000, To: 2000},
		{Subject: "app/*"},
		{Subject: "app/db/?rl"},
		{Subject: "nothing"},
		{Kind: "kv.put"},
		{Kind: "kv.put", Subject: "pid/1", Reverse: true},
		{Kind: "kv.*"},
		{Kind: "*.d*", Since: ref[100].time, To: 2500},
		{Kind: "infra.create", Subject: "app/*"},
		{Subject: "x.y", Kind: "kv.*", Until: mid.time},
		{Kind: "kv.*", Reverse: true, From: 500, To: 2500},
		{Kind: "*", Since: ref[300].time},
		{Kind: "infra.*", Reverse: true, Until: mid.time},
		{Kind: "nothing.*"},
	}
	t.Run("SeqsAt", func(t *testing.T) {
		times := []int64{0, ref[0].time - 1, ref[0].time, mid.time, mid.time + 1, ref[2000].time, last.time, last.time + 1}
		got, err := s.SeqsAt(times)
		if err != nil {
			t.Fatal(err)
		}
		for i, tm := range times {
			want := last.seq + 1
			for _, e := range ref {
				if e.time >= tm {
					want = e.seq
					break
				}
			}
			if got[i] != want {
				t.Errorf("SeqsAt(%d) = %d, want %d", tm, got[i], want)
			}
		}
	})
	for _, q := range queries {
		t.Run(fmt.Sprintf("%+v", q), func(t *testing.T) {
			var want []int64
			for _, e := range ref {
				if q.From > 0 && e.seq < q.From || q.To > 0 && e.seq > q.To ||
					q.Since != 0 && e.time < q.Since || q.Until != 0 && e.time > q.Until ||
					q.Kind != "" && !globMatch(q.Kind, []byte(e.kind)) ||
					q.Subject != "" && !globMatch(q.Subject, []byte(e.subject)) {
					continue
				}
				want = append(want, e.seq)
			}
			if q.Reverse {
				slices.Reverse(want)
			}
			var got []int64
			it := s.Scan(q)
			for it.Next() {
				r := it.Raw()
				e := ref[r.Seq-1]
				if r.Time() != e.time {
					t.Fatalf("seq %d: time %d, want %d", r.Seq, r.Time(), e.time)
				}
				got = append(got, r.Seq)
			}
			if err := it.Close(); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("got %d events, want %d\ngot  %v\nwant %v", len(got), len(want), head(got), head(want))
			}
		})
	}
}

func head(s []int64) []int64 { return s[:min(len(s), 20)] }

// TestKindGlobByIndex: on a stream whose events are on disk, a kind glob
// matching a few configuration events among many reads them through the
// kind index (an engine's start-up replay), and one matching most events
// scans e/; both find exactly the matching events, in both directions.
func TestKindGlobByIndex(t *testing.T) {
	j := mustOpen(t, testOptions(vfs.NewMem()))
	defer j.Close()
	s := j.Stream(Audit)
	var cfgSeqs, bulkSeqs []int64
	for g := range 40 {
		var bodies []*Body
		for range 500 {
			bodies = append(bodies, body("bulk.write", "app/x", map[string]any{"pad": fmt.Sprint(g)}))
		}
		kind := "cfg.add"
		if g%3 == 2 {
			kind = "cfg.rm"
		}
		bodies = append(bodies, body(kind, "cfg", nil))
		for i, c := range mustAppend(t, s, bodies...) {
			if i == len(bodies)-1 {
				cfgSeqs = append(cfgSeqs, c.Seq)
			} else {
				bulkSeqs = append(bulkSeqs, c.Seq)
			}
		}
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		q         Query
		want      []int64
		wantIndex bool
	}{
		{Query{Kind: "cfg.*"}, cfgSeqs, true},
		{Query{Kind: "cfg.*", Reverse: true}, cfgSeqs, true},
		{Query{Kind: "c?g.*", From: cfgSeqs[10], To: cfgSeqs[20]}, cfgSeqs[10:21], true},
		{Query{Kind: "bulk.*"}, bulkSeqs, false},
		{Query{Kind: "bulk.*", Reverse: true}, bulkSeqs, false},
		{Query{Kind: "job.*"}, nil, false},
	} {
		t.Run(fmt.Sprintf("%+v", tc.q), func(t *testing.T) {
			want := slices.Clone(tc.want)
			if tc.q.Reverse {
				slices.Reverse(want)
			}
			it := s.Scan(tc.q)
			var got []int64
			for it.Next() {
				got = append(got, it.Raw().Seq)
			}
			usedIndex := it.indexed
			if err := it.Close(); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("got %d events, want %d\ngot  %v\nwant %v", len(got), len(want), head(got), head(want))
			}
			if usedIndex != tc.wantIndex {
				t.Errorf("read through the kind index: %v, want %v", usedIndex, tc.wantIndex)
			}
		})
	}
	// A kind glob is scanned, not listed, once the index holds more
	// distinct kinds than are worth a seek each.
	if _, listed, err := kindsMatching(s.db, "job.*"); err != nil || !listed {
		t.Fatalf("kinds listed %v (%v), want true", listed, err)
	}
	var many []*Body
	for i := range globIndexMaxDistinct {
		many = append(many, body(fmt.Sprintf("many.k%04d", i), "", nil))
	}
	mustAppend(t, s, many...)
	if _, listed, err := kindsMatching(s.db, "job.*"); err != nil || listed {
		t.Fatalf("kinds listed %v (%v) with %d distinct kinds, want false", listed, err, globIndexMaxDistinct+3)
	}
	it := s.Scan(Query{Kind: "cfg.*"})
	var got []int64
	for it.Next() {
		got = append(got, it.Raw().Seq)
	}
	if usedIndex := it.indexed; usedIndex || it.Close() != nil || !slices.Equal(got, cfgSeqs) {
		t.Fatalf("with many kinds: index %v, got %v, want %v", usedIndex, head(got), head(cfgSeqs))
	}
}

func TestGlob(t *testing.T) {
	for _, c := range []struct {
		pat, s string
		want   bool
	}{
		{"kv.*", "kv.put", true},
		{"kv.*", "kvx.put", false},
		{"*", "", true},
		{"a/*", "a/b/c", true},
		{"a/*/c", "a/b/x/c", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{`a\*`, "a*", true},
		{`a\*`, "ab", false},
		{"*.put", "kv.put", true},
		{"*x*y", "axbxcy", true},
		{"*x*y", "axbxc", false},
	} {
		if got := globMatch(c.pat, []byte(c.s)); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v", c.pat, c.s, got)
		}
	}
}

func TestPeekEnvelope(t *testing.T) {
	b := &Body{Kind: "capture.exec", Subject: "pid/12", Node: "n", Actor: Actor{UID: 1, Via: "system"},
		Data: map[string]any{"a": []any{1, "x", map[string]any{"f": 1.5}}, "kind": "decoy"},
		Evt:  &Evt{Type: "execve", Num: 1 << 40}, Proc: &Proc{Name: "sh", PID: 12}}
	p, err := EncodeBody(b)
	if err != nil {
		t.Fatal(err)
	}
	k, s, err := peekEnvelope(p)
	if err != nil || string(k) != b.Kind || string(s) != b.Subject {
		t.Fatalf("peek = %q %q %v", k, s, err)
	}
}

// TestNothingVisibleBeforeDurable reads concurrently with appends and never
// sees a seq above the durable seq read just after.
func TestNothingVisibleBeforeDurable(t *testing.T) {
	j := mustOpen(t, testOptions(vfs.NewMem()))
	defer j.Close()
	s := j.Stream(Audit)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				if _, err := s.Append(ctx, body("test.emit", fmt.Sprint(w), nil)); err != nil && ctx.Err() == nil {
					t.Error(err)
				}
			}
		})
	}
	sub := s.Subscribe(ctx, 1, nil)
	wg.Go(func() {
		defer sub.Close()
		for {
			it, err := sub.Next(ctx)
			if err != nil {
				return
			}
			if d := s.DurableSeq(); it.Raw != nil && it.Raw.Seq > d {
				t.Errorf("subscriber saw %d beyond durable %d", it.Raw.Seq, d)
			}
		}
	})
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		sn := s.Snapshot()
		it := sn.Scan(Query{Reverse: true})
		if it.Next() {
			if d := s.DurableSeq(); it.Raw().Seq > d || it.Raw().Seq != sn.Seq() {
				t.Errorf("snapshot %d: scan saw %d, durable %d", sn.Seq(), it.Raw().Seq, d)
			}
		}
		it.Close()
		sn.Close()
		it = s.Scan(Query{Reverse: true})
		if it.Next() {
			if d := s.DurableSeq(); it.Raw().Seq > d {
				t.Errorf("scan saw %d beyond durable %d", it.Raw().Seq, d)
			}
		}
		it.Close()
	}
	cancel()
	wg.Wait()
}

func TestMatchQuery(t *testing.T) {
	p, err := EncodeBody(body("kv.put", "app/db/url", nil))
	if err != nil {
		t.Fatal(err)
	}
	r := &Raw{Stream: Audit, Seq: 10, Record: EncodeRecord(100, Hash{}, Hash{}, p)}
	for _, c := range []struct {
		q    Query
		want bool
	}{
		{Query{}, true},
		{Query{Kind: "kv.*", Subject: "app/*"}, true},
		{Query{Kind: "kv.delete"}, false},
		{Query{Subject: "app/db/url"}, true},
		{Query{Subject: "other"}, false},
		{Query{From: 11}, false},
		{Query{To: 10, Since: 100, Until: 100}, true},
		{Query{Until: 99}, false},
	} {
		if got := MatchQuery(c.q, r); got != c.want {
			t.Errorf("MatchQuery(%+v) = %v", c.q, got)
		}
	}
}
