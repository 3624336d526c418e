package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// counterEngine is a tiny KV engine: "incr KEY" reads the key's value
// through the view and decides a kv.put of value+1; Fold stores it.
type counterEngine struct{}

type incr struct {
	Key  string
	Fail bool // Decide refuses
}

// errRefused is what counterEngine refuses with.
var errRefused = errors.New("refused")

func (counterEngine) Name() string { return "ctr" }

func (counterEngine) Decide(v *View, req any) (Decision, error) {
	r := req.(incr)
	if r.Fail {
		return Decision{}, fmt.Errorf("refused %s: %w", r.Key, errRefused)
	}
	n := int64(0)
	if val, ok, err := v.Get([]byte(r.Key)); err != nil {
		return Decision{}, err
	} else if ok {
		n, _ = strconv.ParseInt(string(val), 10, 64)
	}
	return Decision{
		Bodies: []*Body{body("kv.put", r.Key, map[string]any{"value": n + 1})},
		Reply:  n + 1,
	}, nil
}

func (counterEngine) Fold(t *Txn, ev *Event) error {
	if ev.Kind != "kv.put" {
		return nil
	}
	v, ok := ev.Data["value"].(int64)
	if !ok {
		return fmt.Errorf("value %T", ev.Data["value"])
	}
	if err := t.Set([]byte(ev.Subject), []byte(strconv.FormatInt(v, 10))); err != nil {
		return err
	}
	// A second key, so the projection has more than one shape.
	return t.Set([]byte("last/"+ev.Subject), []byte(strconv.FormatInt(ev.Seq, 10)))
}

func TestAppendConcurrentGapless(t *testing.T) {
	j := mustOpen(t, testOptions(vfs.NewMem()))
	defer j.Close()
	s := j.Stream(Audit)
	const workers, each = 64, 200
	var mu sync.Mutex
	acked := map[int64]Committed{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				c, err := s.Append(context.Background(), body("test.emit", fmt.Sprintf("w%d", w), map[string]any{"i": i}))
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				mu.Lock()
				for _, x := range c {
					if _, dup := acked[x.Seq]; dup {
						t.Errorf("seq %d acknowledged twice", x.Seq)
					}
					acked[x.Seq] = x
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	const n = workers * each
	if got := s.DurableSeq(); got != n {
		t.Fatalf("durable seq %d, want %d", got, n)
	}
	raws := collect(t, s.Scan(Query{}))
	if len(raws) != n {
		t.Fatalf("%d events stored, want %d", len(raws), n)
	}
	checkChain(t, raws, 1)
	for _, r := range raws {
		c, ok := acked[r.Seq]
		if !ok || c.Hash != r.Hash() || c.Time != r.Time() {
			t.Fatalf("seq %d: stored event does not match its acknowledgement %+v", r.Seq, c)
		}
	}
	groups := s.commits.Load()
	t.Logf("%d events in %d commit groups", n, groups)
	if groups >= n {
		t.Fatalf("group commit did not group: %d groups for %d events", groups, n)
	}
	if rep, err := s.Verify(context.Background()); err != nil || rep.BadSeq != 0 || rep.Events != n {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

func TestAppendAllOrNothing(t *testing.T) {
	j := mustOpen(t, testOptions(vfs.NewMem()))
	defer j.Close()
	s := j.Stream(Audit)
	_, err := s.Append(context.Background(), body("ok.kind", "a", nil), body("Bad Kind", "b", nil))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("append with a bad kind: %v, want ErrInvalid", err)
	}
	if s.DurableSeq() != 0 {
		t.Fatalf("durable seq %d after a refused append", s.DurableSeq())
	}
	c := mustAppend(t, s, body("ok.kind", "a", nil), body("ok.kind", "b", nil))
	if len(c) != 2 || c[0].Seq != 1 || c[1].Seq != 2 {
		t.Fatalf("committed %+v", c)
	}
	ev, err := collect(t, s.Scan(Query{From: 1, To: 1}))[0].Decode()
	if err != nil || ev.Node != "testnode" {
		t.Fatalf("node not filled: %+v %v", ev, err)
	}
}

func projection(t *testing.T, s *Stream) map[string]string {
	t.Helper()
	return projectionOf(t, s, "ctr")
}

// projectionOf is the projection of engine, key by key.
func projectionOf(t *testing.T, s *Stream, engine string) map[string]string {
	t.Helper()
	sn := s.Snapshot()
	defer sn.Close()
	out := map[string]string{}
	if err := sn.Iter(engine, nil, nil, func(k, v []byte) error {
		out[string(k)] = string(v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestProposeReadsThroughGroup(t *testing.T) {
	opts := testOptions(vfs.NewMem())
	opts.Engines = map[string][]Engine{Audit: {counterEngine{}}}
	j := mustOpen(t, opts)
	defer j.Close()
	s := j.Stream(Audit)

	const workers, each = 32, 50
	var mu sync.Mutex
	replies := map[int64]bool{}
	var wg sync.WaitGroup
	var nbad int
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				fail := (w+i)%7 == 0
				c, reply, err := s.Propose(context.Background(), "ctr", incr{Key: "hits", Fail: fail})
				mu.Lock()
				if fail {
					nbad++
					if !errors.Is(err, errRefused) || len(c) != 0 {
						t.Errorf("refused request: %v %v", c, err)
					}
				} else {
					if err != nil || len(c) != 1 {
						t.Errorf("propose: %v %v", c, err)
					} else {
						n := reply.(int64)
						if replies[n] {
							t.Errorf("value %d decided twice: Decide did not see the group's writes", n)
						}
						replies[n] = true
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	good := int64(workers*each - nbad)
	if s.DurableSeq() != good {
		t.Fatalf("durable %d, want %d (refused requests must write nothing)", s.DurableSeq(), good)
	}
	groups := s.commits.Load()
	t.Logf("%d proposals in %d groups", good, groups)
	if groups >= good {
		t.Fatalf("no grouping: %d groups", groups)
	}
	proj := projection(t, s)
	if proj["hits"] != strconv.FormatInt(good, 10) {
		t.Fatalf("hits = %q, want %d", proj["hits"], good)
	}
	// Every decided value appears once, in seq order.
	for i, r := range collect(t, s.Scan(Query{})) {
		ev, err := r.Decode()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Data["value"] != int64(i+1) {
			t.Fatalf("seq %d has value %v", ev.Seq, ev.Data["value"])
		}
	}

	// Rebuild gives the same projection, byte for byte.
	before := projection(t, s)
	if err := s.Rebuild(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := projection(t, s)
	if fmt.Sprint(before) != fmt.Sprint(after) || len(after) != 2 {
		t.Fatalf("rebuild changed the projection:\n%v\n%v", before, after)
	}
	// And appends after a rebuild still fold.
	if _, _, err := s.Propose(context.Background(), "ctr", incr{Key: "hits"}); err != nil {
		t.Fatal(err)
	}
	if got := projection(t, s)["hits"]; got != strconv.FormatInt(good+1, 10) {
		t.Fatalf("after rebuild: hits = %s", got)
	}
}

// TestRebuildAfterCorruptProjection drops a projection by hand through an
// engine-less append and checks that Rebuild restores it.
func TestRebuildRestoresProjection(t *testing.T) {
	fs := vfs.NewMem()
	opts := testOptions(fs)
	opts.Engines = map[string][]Engine{Audit: {counterEngine{}}}
	j := mustOpen(t, opts)
	s := j.Stream(Audit)
	for range 10 {
		if _, _, err := s.Propose(context.Background(), "ctr", incr{Key: "k"}); err != nil {
			t.Fatal(err)
		}
	}
	want := projection(t, s)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	// Corrupt the projection directly in pebble.
	db := rawPebble(t, fs, Audit)
	if err := db.Set([]byte("p/ctr/k"), []byte("999"), nil); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	j = mustOpen(t, opts)
	defer j.Close()
	s = j.Stream(Audit)
	if err := s.Rebuild(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := projection(t, s); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after rebuild %v, want %v", got, want)
	}
}

// foldFailEngine fails to fold events of subject "poison".
type foldFailEngine struct{}

func (foldFailEngine) Name() string                        { return "ff" }
func (foldFailEngine) Decide(*View, any) (Decision, error) { return Decision{}, nil }
func (foldFailEngine) Fold(t *Txn, ev *Event) error {
	if ev.Subject == "poison" {
		return errors.New("cannot fold poison")
	}
	return t.Set([]byte(ev.Subject), []byte(strconv.FormatInt(ev.Seq, 10)))
}

func TestFoldErrorFailsOnlyItsRequest(t *testing.T) {
	opts := testOptions(vfs.NewMem())
	opts.Engines = map[string][]Engine{Audit: {foldFailEngine{}}}
	j := mustOpen(t, opts)
	defer j.Close()
	s := j.Stream(Audit)
	var wg sync.WaitGroup
	var okN, badN int
	var mu sync.Mutex
	for i := range 40 {
		wg.Go(func() {
			subj := fmt.Sprintf("s%d", i)
			if i%5 == 0 {
				subj = "poison"
			}
			_, err := s.Append(context.Background(), body("test.emit", subj, nil))
			mu.Lock()
			defer mu.Unlock()
			if subj == "poison" {
				if err == nil {
					t.Errorf("poison append succeeded")
				}
				badN++
			} else {
				if err != nil {
					t.Errorf("append %s: %v", subj, err)
				}
				okN++
			}
		})
	}
	wg.Wait()
	raws := collect(t, s.Scan(Query{}))
	checkChain(t, raws, 1)
	if len(raws) != okN {
		t.Fatalf("%d events, want %d", len(raws), okN)
	}
	for _, r := range raws {
		if bytes.Contains(r.Body(), []byte("poison")) {
			t.Fatalf("seq %d: poison stored", r.Seq)
		}
	}
}

// TestAppendEncoded: bodies an engine encoded itself are committed as
// Append commits them (same seqs, hashes over the same bytes, indexes by
// kind), and what is not a body with a valid kind, or whose kind or
// subject is not the one given, is refused whole.
func TestAppendEncoded(t *testing.T) {
	j := mustOpen(t, testOptions(vfs.NewMem()))
	defer j.Close()
	s := j.Stream(Capture)
	b1 := body("logs.record", "app.web", map[string]any{"n": int64(1)})
	b1.Node = "testnode"
	enc, err := EncodeBody(b1)
	if err != nil {
		t.Fatal(err)
	}
	notMap := append([]byte{0x80}, enc[1:]...) // an empty array, then garbage
	badKind, _ := EncodeBody(&Body{Kind: "logs.record", Node: "n"})
	copy(badKind[bytes.Index(badKind, []byte("logs.record")):], "LOGS")
	ok := Encoded{Body: enc, Kind: "logs.record", Subject: "app.web"}
	for _, bad := range [][]Encoded{
		{{Body: notMap, Kind: "logs.record", Subject: "app.web"}},
		{{Body: badKind, Kind: "logs.record"}},
		{{Body: enc, Kind: "logs.other", Subject: "app.web"}},
		{{Body: enc, Kind: "logs.record", Subject: "app.db"}},
		{ok, {Body: notMap, Kind: "logs.record", Subject: "app.web"}},
		{ok, {Body: enc, Kind: "Logs", Subject: "app.web"}},
		{ok, {}},
	} {
		if _, err := s.AppendEncoded(context.Background(), bad...); !errors.Is(err, ErrInvalid) {
			t.Fatalf("AppendEncoded(%+v): %v", bad, err)
		}
	}
	if s.DurableSeq() != 0 {
		t.Fatalf("a refused append committed: seq %d", s.DurableSeq())
	}
	c, err := s.AppendEncoded(context.Background(), ok, ok)
	if err != nil || len(c) != 2 {
		t.Fatalf("AppendEncoded: %v %v", c, err)
	}
	raws := collect(t, s.Scan(Query{Kind: "logs.record", Subject: "app.web"}))
	if len(raws) != 2 || !bytes.Equal(raws[1].Body(), enc) || raws[1].Hash() != c[1].Hash {
		t.Fatalf("scan: %d events", len(raws))
	}
	ev, err := raws[0].Decode()
	if err != nil || ev.Data["n"] != int64(1) || ev.Node != "testnode" {
		t.Fatalf("decode: %+v %v", ev, err)
	}
	if rep, err := s.Verify(context.Background()); err != nil || rep.BadSeq != 0 || rep.Events != 2 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}
