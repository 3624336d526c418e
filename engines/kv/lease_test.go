package kv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cairnhq/cairn/journal"
)

// TestLeaseIDsHexInEvents: lease ids in event data are hex strings (a
// JSON reader limited to 2^53 keeps them exact), and the fold, a rebuild,
// a restart and a watch replay read them back.
func TestLeaseIDsHexInEvents(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const id = int64(8288719424481337271) // above 2^53
	if _, err := e.s.LeaseGrant(ctx, actor, id, 60); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Put(ctx, actor, PutRequest{Key: []byte("a"), Value: []byte("1"), Lease: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Txn(ctx, actor, TxnRequest{Success: []Op{{Put: &PutRequest{Key: []byte("b"), Value: []byte("2"), Lease: id}}}}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(40 * time.Second)
	if _, err := e.s.LeaseKeepAlive(ctx, actor, id); err != nil { // writes a lease.checkpoint
		t.Fatal(err)
	}
	hexID := FormatLeaseID(id)
	var seen []string
	it := e.j.Stream(journal.Audit).Scan(journal.Query{})
	for it.Next() {
		ev, err := it.Raw().Decode()
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(ev.Data)
		if err != nil {
			t.Fatal(err)
		}
		var generic map[string]any // as a JSON consumer with float64 numbers reads it
		if err := json.Unmarshal(b, &generic); err != nil {
			t.Fatal(err)
		}
		switch ev.Kind {
		case KindLeaseGrant, KindLeaseCheckpoint:
			if generic["id"] != hexID {
				t.Errorf("%s data.id = %#v, want %q", ev.Kind, generic["id"], hexID)
			}
		case KindPut:
			if generic["lease"] != hexID {
				t.Errorf("kv.put data.lease = %#v, want %q", generic["lease"], hexID)
			}
		case KindTxn:
			if op := generic["ops"].([]any)[0].(map[string]any); op["lease"] != hexID {
				t.Errorf("kv.txn op lease = %#v, want %q", op["lease"], hexID)
			}
		}
		seen = append(seen, ev.Kind)
	}
	it.Close()
	if len(seen) != 4 {
		t.Fatalf("events: %v", seen)
	}
	if _, err := e.s.LeaseRevoke(ctx, actor, id); err != nil {
		t.Fatal(err)
	}
	it = e.j.Stream(journal.Audit).Scan(journal.Query{From: 5})
	if !it.Next() {
		t.Fatal("no lease.revoke")
	}
	ev, _ := it.Raw().Decode()
	it.Close()
	if ev.Kind != KindLeaseRevoke || ev.Data["id"] != hexID {
		t.Fatalf("revoke event %s data %v", ev.Kind, ev.Data)
	}
	// The watch decoder reads the hex lease of a put back.
	wctx, cancel := context.WithCancel(ctx)
	var leases []int64
	err := e.s.Watch(wctx, []byte("a"), []byte("c"), 1, false, func(rev int64, evs []Event) error {
		for _, ev := range evs {
			leases = append(leases, ev.KV.Lease)
		}
		if len(leases) >= 4 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || fmt.Sprint(leases) != fmt.Sprint([]int64{id, id, 0, 0}) {
		t.Fatalf("watch: %v, leases %v", err, leases)
	}
	before := e.projection()
	if err := e.j.Stream(journal.Audit).Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	if d := diffMaps(before, e.projection()); d != "" {
		t.Fatalf("rebuild changed the projection:\n%s", d)
	}
}

// crash stops the env as a SIGKILL would as far as the store goes: no
// final checkpoints, only what was already journaled.
func (e *env) crash() {
	e.cancel()
	<-e.s.loopDone
	e.s.loopDone = nil
	if err := e.j.Close(); err != nil {
		e.t.Error(err)
	}
	e.j = nil
}

func (e *env) keyExists(k string) bool {
	e.t.Helper()
	r, err := e.s.Range(context.Background(), RangeRequest{Key: []byte(k)})
	if err != nil {
		e.t.Fatal(err)
	}
	return r.Count == 1
}

// TestLeaseKeepAliveThenKill: a lease kept alive, then the daemon killed
// and down past the deadline the keepalive asked. A restart never expires
// it before that deadline and deletes its keys no later than the deadline
// + TTL/2 (the checkpoint's coverage, docs/kv.md); restarted after that,
// the keys are gone before anything can read them.
func TestLeaseKeepAliveThenKill(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	l, err := e.s.LeaseGrant(ctx, actor, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Put(ctx, actor, PutRequest{Key: []byte("k"), Lease: l.ID}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(6 * time.Second)
	if _, err := e.s.LeaseKeepAlive(ctx, actor, l.ID); err != nil { // deadline: +16s
		t.Fatal(err)
	}
	e.crash()
	e.clock.Advance(9 * time.Second) // +15s: down, 1s before the deadline
	e.open()
	if !e.keyExists("k") {
		t.Fatal("restarted before the keepalive's deadline, the lease expired early")
	}
	e.crash()
	e.clock.Advance(2 * time.Second) // +17s: past the deadline, within deadline + TTL/2
	e.open()
	if err := e.s.expireDue(ctx); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(4 * time.Second) // +21s = deadline + TTL/2
	if err := e.s.expireDue(ctx); err != nil {
		t.Fatal(err)
	}
	if e.keyExists("k") {
		t.Fatal("the lease outlived its deadline + TTL/2 after a kill")
	}

	// Down past deadline + TTL/2: gone at start, before any read.
	l, err = e.s.LeaseGrant(ctx, actor, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Put(ctx, actor, PutRequest{Key: []byte("k2"), Lease: l.ID}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(6 * time.Second)
	if _, err := e.s.LeaseKeepAlive(ctx, actor, l.ID); err != nil {
		t.Fatal(err)
	}
	e.crash()
	e.clock.Advance(15 * time.Second)
	e.open()
	if e.keyExists("k2") {
		t.Fatal("a lease overdue at start survived the start")
	}
}

// TestLeaseKeepAliveThenStop: after a clean stop the lease expires on the
// deadline its last keepalive asked (within a second), not TTL/2 later:
// the stop records the exact remaining TTL.
func TestLeaseKeepAliveThenStop(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	l, err := e.s.LeaseGrant(ctx, actor, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Put(ctx, actor, PutRequest{Key: []byte("k"), Lease: l.ID}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(6 * time.Second)
	if _, err := e.s.LeaseKeepAlive(ctx, actor, l.ID); err != nil { // deadline: +16s
		t.Fatal(err)
	}
	e.clock.Advance(500 * time.Millisecond)
	e.close()
	e.clock.Advance(9 * time.Second) // +15.5s: before the deadline
	e.open()
	if !e.keyExists("k") {
		t.Fatal("expired before the keepalive's deadline")
	}
	e.close()
	e.clock.Advance(1500 * time.Millisecond) // +17s: deadline + 1s
	e.open()
	if e.keyExists("k") {
		t.Fatal("after a clean stop, the lease outlived its deadline by more than a second")
	}
}
