package kv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

// countingReader counts the projection entries a read visits.
type countingReader struct {
	reader
	n int
}

func (c *countingReader) Iter(lo, hi []byte, fn func(k, v []byte) error) error {
	return c.reader.Iter(lo, hi, func(k, v []byte) error {
		c.n++
		return fn(k, v)
	})
}

func collectHistory(t *testing.T, r reader, cur int64, key string, limit int, reverse bool) []int64 {
	t.Helper()
	var revs []int64
	err := history(context.Background(), r, cur, []byte(key), limit, reverse, func(v *Version) error {
		if string(v.Key) != key {
			t.Fatalf("version of %q in the history of %q", v.Key, key)
		}
		revs = append(revs, v.ModRev)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return revs
}

// TestHistoryReverseReadsPage: a reverse history with a limit reads about
// limit versions from the index, not the key's whole history, and every
// direction and limit answers exactly the model's versions, also for a
// sparse key among other keys' writes and for versions too large for
// one page.
func TestHistoryReverseReadsPage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var hot, sparse, big []int64
	for i := range 11 { // 1 MiB each: several pages' worth of bytes
		r, err := e.s.Put(ctx, actor, PutRequest{Key: []byte("big"), Value: bytes.Repeat([]byte{byte('a' + i)}, 1<<20)})
		if err != nil {
			t.Fatal(err)
		}
		big = append(big, r.Rev)
	}
	for i := range 3000 {
		r, err := e.s.Put(ctx, actor, PutRequest{Key: []byte("hot"), Value: fmt.Appendf(nil, "v%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		hot = append(hot, r.Rev)
		if i%700 == 0 {
			r, err := e.s.Put(ctx, actor, PutRequest{Key: []byte("sparse"), Value: []byte("s")})
			if err != nil {
				t.Fatal(err)
			}
			sparse = append(sparse, r.Rev)
		}
		if i == 1500 {
			d, err := e.s.Delete(ctx, actor, DeleteRequest{Key: []byte("sparse")})
			if err != nil || d.Deleted != 1 {
				t.Fatal(d, err)
			}
			sparse = append(sparse, d.Rev)
		}
	}
	sn := e.j.Stream(journal.Audit).Snapshot()
	defer sn.Close()
	cur := sn.Seq()

	cr := &countingReader{reader: snapReader{sn}}
	got := collectHistory(t, cr, cur, "hot", 10, true)
	if want := reversed(hot)[:10]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("reverse limit=10: %v, want %v", got, want)
	}
	if cr.n > 14 {
		t.Errorf("reverse limit=10 read %d index entries of a 3000-version history, want about 10", cr.n)
	}
	cr.n = 0
	collectHistory(t, cr, cur, "hot", 10, false)
	if cr.n > 12 {
		t.Errorf("forward limit=10 read %d index entries", cr.n)
	}

	for _, tc := range []struct {
		key  string
		revs []int64
	}{{"hot", hot}, {"sparse", sparse}, {"big", big}} {
		for _, limit := range []int{0, 1, 7, 300, 5000} {
			want := tc.revs
			if limit > 0 && limit < len(want) {
				want = want[:limit]
			}
			if got := collectHistory(t, snapReader{sn}, cur, tc.key, limit, false); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s limit=%d: %v, want %v", tc.key, limit, got, want)
			}
			want = reversed(tc.revs)
			if limit > 0 && limit < len(want) {
				want = want[:limit]
			}
			if got := collectHistory(t, snapReader{sn}, cur, tc.key, limit, true); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s reverse limit=%d: %v, want %v", tc.key, limit, got, want)
			}
		}
	}
	if got := collectHistory(t, snapReader{sn}, cur, "none", 0, true); len(got) != 0 {
		t.Errorf("history of a key never written: %v", got)
	}
}

func reversed(s []int64) []int64 {
	out := make([]int64, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

// stopRequest is a fakeRequest whose Row fails after n rows, as a client
// that went away.
type stopRequest struct {
	fakeRequest
	n int
}

func (r *stopRequest) Row(v any) error {
	if len(r.out) >= r.n {
		return errors.New("client gone")
	}
	return r.fakeRequest.Row(v)
}

// TestHistoryVerbStreams: kv history answers rows as it reads them (a
// failing Row ends the read at once), with time and actor per row.
func TestHistoryVerbStreams(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := range 600 {
		if _, err := e.s.Put(ctx, actor, PutRequest{Key: []byte("k"), Value: fmt.Appendf(nil, "v%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	stmts, err := dsl.Parse("kv history k reverse", e.table)
	if err != nil {
		t.Fatal(err)
	}
	req := &stopRequest{fakeRequest: fakeRequest{st: stmts[0]}, n: 3}
	if err := e.handler("kv history")(ctx, req); err == nil || !strings.Contains(err.Error(), "client gone") {
		t.Fatalf("history with a failing Row: %v", err)
	}
	if len(req.out) != 3 || !strings.Contains(req.out[0], `"value":"v599"`) || !strings.Contains(req.out[0], `"actor":`) || !strings.Contains(req.out[0], `"time":`) {
		t.Fatalf("rows: %v", req.out)
	}
}

// TestTxnErrorPosition: a txn error about one operation points at that
// operation's word (the second write to a key), not at 1:1.
func TestTxnErrorPosition(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, tc := range []struct{ src, want string }{
		{`kv txn if 'value("k") = "x"' then 'put k v4' 'put k v5'`, `error invalid_argument: 1:47: key "k": duplicate key`},
		{`kv txn then 'put a 1' 'get a' 'del a/ prefix' 'del a'`, `error invalid_argument: 1:48: key "a" put and deleted`},
		{`kv txn then 'del a' 'put b 1' 'put a 1'`, `error invalid_argument: 1:32: key "a" put and deleted`},
		{`kv txn if 'value("k") = "x"' then 'put k 1' else 'get k' 'put k 1 lease=99'`, `error not_found: 1:59: lease 99: requested lease not found`},
	} {
		got := e.run(ctx, tc.src)
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s:\n got %s\nwant %s", tc.src, got, tc.want)
		}
	}
}

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

// TestGetAtFutureTimeAndMore: at= a future time is out_of_range as a
// future revision is; count-only with limit= says whether limit cuts.
func TestGetAtFutureTimeAndMore(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	got := e.run(ctx, `kv put a 1
kv put b 2
kv put c 3
kv get a at=2030-01-01T00:00:00Z`)
	e.clock.Advance(2 * time.Second)
	got += e.run(ctx, `kv get a at=2026-01-01T00:00:01Z
kv get "" prefix limit=2 count-only
kv get "" prefix limit=3 count-only
kv get "" prefix count-only`)
	for _, want := range []string{
		"error out_of_range: 1:13: at=2030-01-01T00:00:00Z is in the future",
		`> kv get a at=2026-01-01T00:00:01Z` + "\n" + `{"create_rev":1,"key":"a","lease":"0","mod_rev":1,"value":"1","version":1}`,
		`{"count":3,"more":true}`,
		`{"count":3,"more":false}`,
		`> kv get "" prefix count-only` + "\n" + `{"count":3}`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	var _ engines.Request = (*stopRequest)(nil)
}
