package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// sourceJournal writes n counter increments (and a few other events) into
// a fresh journal and returns its audit events and its projection.
func sourceJournal(t *testing.T, n int) ([]*Raw, map[string]string) {
	t.Helper()
	opts := testOptions(vfs.NewMem())
	opts.Engines = map[string][]Engine{Audit: {counterEngine{}}}
	j := mustOpen(t, opts)
	defer j.Close()
	s := j.Stream(Audit)
	for i := range n {
		if _, _, err := s.Propose(context.Background(), "ctr", incr{Key: fmt.Sprintf("k%d", i%3)}); err != nil {
			t.Fatal(err)
		}
		if i%4 == 0 {
			mustAppend(t, s, body("test.note", "", map[string]any{"i": int64(i)}))
		}
	}
	return collect(t, s.Scan(Query{})), projection(t, s)
}

func importTarget(t *testing.T) (*Journal, *Stream) {
	t.Helper()
	opts := testOptions(vfs.NewMem())
	opts.Engines = map[string][]Engine{Audit: {counterEngine{}}}
	j := mustOpen(t, opts)
	return j, j.Stream(Audit)
}

func TestImportVerbatimFoldsIdentically(t *testing.T) {
	src, wantProj := sourceJournal(t, 30)
	j, s := importTarget(t)
	defer j.Close()
	// In two parts, as the daemon receives them.
	half := len(src) / 2
	for _, part := range [][]*Raw{src[:half], src[half:]} {
		c, err := s.Import(context.Background(), part)
		if err != nil {
			t.Fatalf("import: %v", err)
		}
		if len(c) != len(part) || c[0].Seq != part[0].Seq || c[len(c)-1].Hash != part[len(part)-1].Hash() {
			t.Fatalf("committed %+v", c)
		}
	}
	got := collect(t, s.Scan(Query{}))
	if len(got) != len(src) {
		t.Fatalf("%d events, want %d", len(got), len(src))
	}
	for i := range src {
		if got[i].Seq != src[i].Seq || !bytes.Equal(got[i].Record, src[i].Record) {
			t.Fatalf("seq %d differs after import", src[i].Seq)
		}
	}
	if p := projection(t, s); fmt.Sprint(p) != fmt.Sprint(wantProj) {
		t.Fatalf("projection %v, want %v", p, wantProj)
	}
	// The indexes were written as by an append.
	if n := len(collect(t, s.Scan(Query{Subject: "k1"}))); n != 10 {
		t.Fatalf("subject index: %d events of k1, want 10", n)
	}
	if n := len(collect(t, s.Scan(Query{Kind: "test.note"}))); n != 8 {
		t.Fatalf("kind index: %d test.note events, want 8", n)
	}
	if rep, err := s.Verify(context.Background()); err != nil || rep.BadSeq != 0 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	// The stream goes on from the imported tip.
	c := mustAppend(t, s, body("test.after", "", nil))
	if c[0].Seq != int64(len(src))+1 {
		t.Fatalf("next append got seq %d", c[0].Seq)
	}
	checkChain(t, collect(t, s.Scan(Query{})), 1)
}

func TestImportRefusesBrokenChain(t *testing.T) {
	src, _ := sourceJournal(t, 10)
	cases := map[string]func([]*Raw) []*Raw{
		"flipped body byte": func(r []*Raw) []*Raw {
			c := r[3].Clone()
			c.Record[len(c.Record)-1] ^= 1
			return append(append(append([]*Raw{}, r[:3]...), c), r[4:]...)
		},
		"gap": func(r []*Raw) []*Raw { return append(append([]*Raw{}, r[:3]...), r[4:]...) },
		"relinked": func(r []*Raw) []*Raw {
			// A consistent chain of its own from seq 4 on, not hanging from seq 3.
			out := append([]*Raw{}, r[:3]...)
			prev := Hash{1}
			for _, x := range r[3:] {
				h := ChainHash(Audit, x.Seq, x.Time(), prev, x.Body())
				out = append(out, &Raw{Stream: Audit, Seq: x.Seq, Record: EncodeRecord(x.Time(), prev, h, x.Body())})
				prev = h
			}
			return out
		},
		"other stream": func(r []*Raw) []*Raw {
			c := r[2].Clone()
			c.Stream = Capture
			return append(append(append([]*Raw{}, r[:2]...), c), r[3:]...)
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			j, s := importTarget(t)
			defer j.Close()
			_, err := s.Import(context.Background(), mutate(src))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("import: %v, want ErrInvalid", err)
			}
			if n := s.DurableSeq(); n != 0 {
				t.Fatalf("refused import wrote up to seq %d", n)
			}
			if p := projection(t, s); len(p) != 0 {
				t.Fatalf("refused import folded %v", p)
			}
		})
	}
}

func TestImportMustContinueStream(t *testing.T) {
	src, _ := sourceJournal(t, 10)
	j, s := importTarget(t)
	defer j.Close()
	mustAppend(t, s, body("daemon.start", "", nil))
	// Not following the tip: the seqs collide.
	_, err := s.Import(context.Background(), src)
	if !errors.Is(err, ErrNotContinuous) {
		t.Fatalf("import over seq 1: %v, want failed_precondition", err)
	}
	// Following the tip's seq but from another chain.
	_, err = s.Import(context.Background(), src[1:])
	if !errors.Is(err, ErrNotContinuous) {
		t.Fatalf("import from another chain: %v, want failed_precondition", err)
	}
	if s.DurableSeq() != 1 {
		t.Fatalf("refused import wrote: durable seq %d", s.DurableSeq())
	}

	// A continuation is accepted: the same source, first part then the rest.
	j2, s2 := importTarget(t)
	defer j2.Close()
	if _, err := s2.Import(context.Background(), src[:4]); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Import(context.Background(), src[5:]); !errors.Is(err, ErrNotContinuous) {
		t.Fatalf("import skipping seq 5: %v, want failed_precondition", err)
	}
	if _, err := s2.Import(context.Background(), src[4:]); err != nil {
		t.Fatalf("continuation: %v", err)
	}
}

// TestImportFromMiddle imports events that do not start at seq 1 into an
// empty stream: their first prev becomes the anchor, and the stream
// verifies and survives a restart.
func TestImportFromMiddle(t *testing.T) {
	src, _ := sourceJournal(t, 10)
	fs := vfs.NewMem()
	opts := testOptions(fs)
	j := mustOpen(t, opts)
	s := j.Stream(Audit)
	if _, err := s.Import(context.Background(), src[5:]); err != nil {
		t.Fatal(err)
	}
	if s.FirstSeq() != 6 || s.DurableSeq() != src[len(src)-1].Seq {
		t.Fatalf("first %d durable %d", s.FirstSeq(), s.DurableSeq())
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = mustOpen(t, opts)
	defer j.Close()
	s = j.Stream(Audit)
	if rep, err := s.Verify(context.Background()); err != nil || rep.BadSeq != 0 || rep.First != 6 {
		t.Fatalf("verify after restart: %+v %v", rep, err)
	}
	c := mustAppend(t, s, body("test.after", "", nil))
	if c[0].Seq != src[len(src)-1].Seq+1 {
		t.Fatalf("append after import: seq %d", c[0].Seq)
	}
}

// TestInterruptedImportIsRecorded: a part that more parts were to follow
// leaves the import's record owed. It is written before anything else the
// stream takes, by SettleImport, or after a restart; a last part writes
// its own record and owes nothing.
func TestInterruptedImportIsRecorded(t *testing.T) {
	src, _ := sourceJournal(t, 30)
	half := len(src) / 2
	record := func(complete bool) *Body {
		return body("journal.import", "", map[string]any{"complete": complete})
	}
	kinds := func(s *Stream) []string {
		var out []string
		for _, raw := range collect(t, s.Scan(Query{})) {
			k, err := raw.Kind()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, k)
		}
		return out
	}

	t.Run("next append", func(t *testing.T) {
		j, s := importTarget(t)
		defer j.Close()
		if _, err := s.ImportWith(t.Context(), src[:half], ImportOptions{Pending: record(false)}); err != nil {
			t.Fatal(err)
		}
		if !s.PendingImport() {
			t.Fatal("no import record owed after a part with more")
		}
		c := mustAppend(t, s, body("test.after", "", nil))
		k := kinds(s)
		if len(k) != half+2 || k[half] != "journal.import" || k[half+1] != "test.after" || c[0].Seq != int64(half+2) {
			t.Fatalf("kinds after the interrupted import and an append: %v (append committed %+v)", k[half-1:], c)
		}
		if s.PendingImport() {
			t.Fatal("still owed after it was written")
		}
		if _, err := s.Verify(t.Context()); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("settle and restart", func(t *testing.T) {
		opts := testOptions(vfs.NewMem())
		opts.Engines = map[string][]Engine{Audit: {counterEngine{}}}
		j := mustOpen(t, opts)
		s := j.Stream(Audit)
		if _, err := s.ImportWith(t.Context(), src[:half], ImportOptions{Pending: record(false)}); err != nil {
			t.Fatal(err)
		}
		j.Close()
		j = mustOpen(t, opts) // the owed record survives a restart
		defer j.Close()
		s = j.Stream(Audit)
		if !s.PendingImport() {
			t.Fatal("the owed record was lost with the restart")
		}
		c, err := s.SettleImport(t.Context())
		if err != nil || len(c) != 0 {
			t.Fatalf("settle: %+v %v", c, err)
		}
		if k := kinds(s); len(k) != half+1 || k[half] != "journal.import" {
			t.Fatalf("kinds after settle: %v", k[half-1:])
		}
		if _, err := s.SettleImport(t.Context()); err != nil || len(kinds(s)) != half+1 {
			t.Fatal("a second settle wrote again")
		}
	})

	t.Run("completed", func(t *testing.T) {
		j, s := importTarget(t)
		defer j.Close()
		if _, err := s.ImportWith(t.Context(), src[:half], ImportOptions{Pending: record(false)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ImportWith(t.Context(), src[half:], ImportOptions{After: record(true)}); err != nil {
			t.Fatal(err)
		}
		if s.PendingImport() {
			t.Fatal("owed after the last part")
		}
		mustAppend(t, s, body("test.after", "", nil))
		if k := kinds(s); len(k) != len(src)+2 || k[len(src)] != "journal.import" || k[len(src)+1] != "test.after" {
			t.Fatalf("kinds after a whole import: %v", k[len(src)-1:])
		}
	})
}
