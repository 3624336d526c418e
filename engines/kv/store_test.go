package kv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/journal"
)

var actor = journal.Actor{UID: 1, Via: "socket"}

func TestErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := e.s
	if _, err := s.Put(ctx, actor, PutRequest{}); !errors.Is(err, ErrEmptyKey) {
		t.Errorf("empty key: %v", err)
	}
	if _, err := s.Put(ctx, actor, PutRequest{Key: []byte("k"), Value: make([]byte, MaxValueSize+1)}); !errors.Is(err, ErrValueTooLarge) {
		t.Errorf("large value: %v", err)
	}
	if _, err := s.Put(ctx, actor, PutRequest{Key: []byte("k"), IgnoreValue: true}); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("ignore value on a missing key: %v", err)
	}
	if _, err := s.Put(ctx, actor, PutRequest{Key: []byte("k"), Lease: 77}); !errors.Is(err, ErrLeaseNotFound) {
		t.Errorf("unknown lease: %v", err)
	}
	if _, err := s.Range(ctx, RangeRequest{Key: []byte("k"), Rev: 5}); !errors.Is(err, ErrFutureRev) {
		t.Errorf("future rev: %v", err)
	}
	if _, err := s.LeaseGrant(ctx, actor, 5, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LeaseGrant(ctx, actor, 5, 10); !errors.Is(err, ErrLeaseExists) {
		t.Errorf("lease exists: %v", err)
	}
	if _, err := s.LeaseRevoke(ctx, actor, 6); !errors.Is(err, ErrLeaseNotFound) {
		t.Errorf("revoke unknown: %v", err)
	}
	ops := make([]Op, MaxTxnOps+1)
	for i := range ops {
		ops[i] = Op{Put: &PutRequest{Key: []byte(fmt.Sprint(i))}}
	}
	if _, err := s.Txn(ctx, actor, TxnRequest{Success: ops}); !errors.Is(err, ErrTooManyOps) {
		t.Errorf("too many ops: %v", err)
	}
	// Nothing of the failed requests was written: one event (the grant).
	if rev := s.st.DurableSeq(); rev != 1 {
		t.Errorf("rev = %d after failed requests, want 1", rev)
	}
	// IgnoreValue keeps the value; a non-UTF-8 key round-trips.
	bad := []byte{0xff, 0, 'x'}
	if _, err := s.Put(ctx, actor, PutRequest{Key: bad, Value: []byte{0xfe}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, actor, PutRequest{Key: bad, IgnoreValue: true, Lease: 5}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Range(ctx, RangeRequest{Key: bad})
	if err != nil || len(r.KVs) != 1 || !bytes.Equal(r.KVs[0].Value, []byte{0xfe}) || r.KVs[0].Lease != 5 || r.KVs[0].Version != 2 {
		t.Fatalf("range of a binary key = %+v, %v", r, err)
	}
}

// TestWatch: from=1 replays everything and then goes live, gapless; a txn
// arrives as one callback; a lease expiry as DELETE events.
func TestWatch(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := e.s
	mustPut := func(k, v string, lease int64) {
		if _, err := s.Put(ctx, actor, PutRequest{Key: []byte(k), Value: []byte(v), Lease: lease}); err != nil {
			t.Fatal(err)
		}
	}
	mustPut("a", "1", 0)
	mustPut("other", "x", 0)
	if _, err := s.Txn(ctx, actor, TxnRequest{Success: []Op{{Put: &PutRequest{Key: []byte("a"), Value: []byte("2")}}, {Put: &PutRequest{Key: []byte("b"), Value: []byte("1")}}}}); err != nil {
		t.Fatal(err)
	}
	type got struct {
		rev int64
		evs []Event
	}
	var (
		mu   sync.Mutex
		seen []got
	)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- s.Watch(wctx, []byte("a"), []byte("c"), 1, true, func(rev int64, evs []Event) error {
			mu.Lock()
			seen = append(seen, got{rev, evs})
			mu.Unlock()
			return nil
		})
	}()
	l, err := s.LeaseGrant(ctx, actor, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	mustPut("a", "3", l.ID)
	mustPut("b", "2", l.ID)
	e.clock.Advance(3 * time.Second)
	if err := s.expireDue(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n >= 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Watch returned %v, want context.Canceled", err)
	}
	var b bytes.Buffer
	for _, g := range seen {
		fmt.Fprintf(&b, "%d:", g.rev)
		for _, ev := range g.evs {
			typ := "PUT"
			if ev.Type == Delete {
				typ = "DELETE"
			}
			prev := ""
			if ev.PrevKV != nil {
				prev = string(ev.PrevKV.Value)
			}
			fmt.Fprintf(&b, " %s %s=%s v%d c%d prev=%s;", typ, ev.KV.Key, ev.KV.Value, ev.KV.Version, ev.KV.CreateRev, prev)
		}
		b.WriteString("\n")
	}
	want := "1: PUT a=1 v1 c1 prev=;\n" +
		"3: PUT a=2 v2 c1 prev=1; PUT b=1 v1 c3 prev=;\n" +
		"5: PUT a=3 v3 c1 prev=2;\n" +
		"6: PUT b=2 v2 c3 prev=1;\n" +
		"7: DELETE a= v0 c0 prev=3; DELETE b= v0 c0 prev=2;\n"
	if b.String() != want {
		t.Errorf("watch saw\n%s\nwant\n%s", b.String(), want)
	}
}

// TestLeaseLoop: the expiry loop (not a test's call) deletes a lease's
// keys on time on the injected clock.
func TestLeaseLoop(t *testing.T) {
	e2 := newEnv(t)
	e2.close()
	e2.tick = 10 * time.Millisecond
	e2.open()
	ctx := context.Background()
	l, err := e2.s.LeaseGrant(ctx, actor, 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e2.s.Put(ctx, actor, PutRequest{Key: []byte("k"), Lease: l.ID}); err != nil {
		t.Fatal(err)
	}
	e2.clock.Advance(4 * time.Second)
	time.Sleep(50 * time.Millisecond)
	if r, _ := e2.s.Range(ctx, RangeRequest{Key: []byte("k")}); r.Count != 1 {
		t.Fatal("lease expired early")
	}
	e2.clock.Advance(1 * time.Second)
	for i := 0; i < 200; i++ {
		if r, _ := e2.s.Range(ctx, RangeRequest{Key: []byte("k")}); r.Count == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the lease's key was not deleted at its deadline")
}

// model is the reference state: every revision's full key set.
type model struct {
	cur    map[string]KeyValue
	leases map[int64]bool
	at     []map[string]KeyValue // at[rev] = state after rev
}

func (m *model) snapshot(rev int64) {
	for int64(len(m.at)) <= rev {
		c := make(map[string]KeyValue, len(m.cur))
		for k, v := range m.cur {
			c[k] = v
		}
		m.at = append(m.at, c)
	}
}

func (m *model) put(k, v string, lease, rev int64) {
	kv := KeyValue{Key: []byte(k), Value: []byte(v), CreateRev: rev, ModRev: rev, Version: 1, Lease: lease}
	if p, ok := m.cur[k]; ok {
		kv.CreateRev, kv.Version = p.CreateRev, p.Version+1
	}
	m.cur[k] = kv
}

// TestProperty runs random put/del/txn/lease sequences against a model:
// every earlier revision reads as the model folded up to it, and a rebuild
// reproduces the projection byte for byte, also after a restart.
func TestProperty(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed))
			e := newEnv(t)
			ctx := context.Background()
			s := e.s
			m := &model{cur: map[string]KeyValue{}, leases: map[int64]bool{}}
			m.snapshot(0)
			keys := []string{"a", "a/b", "a/c", "b", "b\x00x", "c"}
			key := func() string { return keys[rng.IntN(len(keys))] }
			var leaseIDs []int64
			pickLease := func() int64 {
				if len(leaseIDs) == 0 || rng.IntN(2) == 0 {
					return 0
				}
				return leaseIDs[rng.IntN(len(leaseIDs))]
			}
			deleteKeys := func(pred func(k string, kv KeyValue) bool) bool {
				any := false
				for k, kv := range m.cur {
					if pred(k, kv) {
						delete(m.cur, k)
						any = true
					}
				}
				return any
			}
			for step := 0; step < 300; step++ {
				rev := s.st.DurableSeq()
				switch op := rng.IntN(10); {
				case op < 4:
					k, v, l := key(), fmt.Sprint(step), pickLease()
					resp, err := s.Put(ctx, actor, PutRequest{Key: []byte(k), Value: []byte(v), Lease: l})
					if err != nil {
						t.Fatal(err)
					}
					m.put(k, v, l, resp.Rev)
					m.snapshot(resp.Rev)
				case op < 5:
					k := key()
					end := PrefixEnd([]byte(k))
					resp, err := s.Delete(ctx, actor, DeleteRequest{Key: []byte(k), End: end})
					if err != nil {
						t.Fatal(err)
					}
					if deleteKeys(func(x string, _ KeyValue) bool { return inRange([]byte(x), []byte(k), end) }) != (resp.Rev > rev) {
						t.Fatalf("delete %q: rev %d (before %d) disagrees with the model", k, resp.Rev, rev)
					}
					m.snapshot(resp.Rev)
				case op < 7:
					k1, k2 := key(), key()
					for k2 == k1 {
						k2 = key()
					}
					want := fmt.Sprint(rng.IntN(3))
					cur, ok := m.cur[k1]
					holds := ok && string(cur.Value) == want
					tr := TxnRequest{
						Compare: []Compare{{Key: []byte(k1), Target: CompareValue, Result: Equal, Value: []byte(want)}},
						Success: []Op{{Put: &PutRequest{Key: []byte(k1), Value: []byte("s")}}, {Delete: &DeleteRequest{Key: []byte(k2)}}},
						Failure: []Op{{Put: &PutRequest{Key: []byte(k1), Value: []byte(want)}}},
					}
					resp, err := s.Txn(ctx, actor, tr)
					if err != nil {
						t.Fatal(err)
					}
					if resp.Succeeded != holds {
						t.Fatalf("txn succeeded=%v, model says %v", resp.Succeeded, holds)
					}
					if holds {
						m.put(k1, "s", 0, resp.Rev)
						delete(m.cur, k2)
					} else {
						m.put(k1, want, 0, resp.Rev)
					}
					m.snapshot(resp.Rev)
				case op < 8:
					l, err := s.LeaseGrant(ctx, actor, 0, int64(1+rng.IntN(5)))
					if err != nil {
						t.Fatal(err)
					}
					leaseIDs = append(leaseIDs, l.ID)
					m.snapshot(s.st.DurableSeq())
				case op < 9 && len(leaseIDs) > 0:
					i := rng.IntN(len(leaseIDs))
					id := leaseIDs[i]
					leaseIDs = append(leaseIDs[:i], leaseIDs[i+1:]...)
					r, err := s.LeaseRevoke(ctx, actor, id)
					if err != nil {
						t.Fatal(err)
					}
					deleteKeys(func(_ string, kv KeyValue) bool { return kv.Lease == id })
					m.snapshot(r)
				default:
					e.clock.Advance(time.Duration(rng.IntN(3)) * time.Second)
					live, _ := s.Leases(ctx)
					alive := map[int64]bool{}
					for _, l := range live {
						alive[l.ID] = true
					}
					before := s.st.DurableSeq()
					if err := s.expireDue(ctx); err != nil {
						t.Fatal(err)
					}
					// Every expiry is one event, in id order.
					var gone []int64
					for _, id := range leaseIDs {
						if !alive[id] {
							gone = append(gone, id)
						}
					}
					sort.Slice(gone, func(i, j int) bool { return gone[i] < gone[j] })
					for i, id := range gone {
						deleteKeys(func(_ string, kv KeyValue) bool { return kv.Lease == id })
						m.snapshot(before + int64(i) + 1)
					}
					var keep []int64
					for _, id := range leaseIDs {
						if alive[id] {
							keep = append(keep, id)
						}
					}
					leaseIDs = keep
					if s.st.DurableSeq() != before+int64(len(gone)) {
						t.Fatalf("expiry wrote %d events, want %d", s.st.DurableSeq()-before, len(gone))
					}
				}
			}
			last := s.st.DurableSeq()
			check := func() {
				for rev := int64(1); rev <= last; rev++ {
					r, err := e.s.Range(ctx, RangeRequest{Key: []byte{0}, End: []byte{0}, Rev: rev})
					if err != nil {
						t.Fatal(err)
					}
					want := m.at[rev]
					if len(r.KVs) != len(want) {
						t.Fatalf("rev %d: %d keys, model %d", rev, len(r.KVs), len(want))
					}
					for _, kv := range r.KVs {
						w := want[string(kv.Key)]
						if !bytes.Equal(kv.Value, w.Value) || kv.CreateRev != w.CreateRev || kv.ModRev != w.ModRev || kv.Version != w.Version || kv.Lease != w.Lease {
							t.Fatalf("rev %d key %q: %+v, model %+v", rev, kv.Key, kv, w)
						}
					}
				}
			}
			check()
			before := e.projection()
			if err := e.j.Stream(journal.Audit).Rebuild(ctx); err != nil {
				t.Fatal(err)
			}
			if d := diffMaps(before, e.projection()); d != "" {
				t.Fatalf("rebuild changed the projection:\n%s", d)
			}
			e.restart()
			check()
		})
	}
}
