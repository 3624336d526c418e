package etcdapi

import (
	"context"
	"errors"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnhq/cairn/engines/kv"
	"github.com/cairnhq/cairn/journal"
)

// TestCompact: Compact succeeds and is journaled without moving the KV
// revision; below its revision reads, txn reads, HashKV and watches answer
// etcd's ErrCompacted while the API honours compaction (the default), and
// the whole history otherwise; cairn's own reads keep it all.
func TestCompact(t *testing.T) {
	ts := newTestServer(t)
	ctx := testCtx(t)
	c := ts.cli
	var revs []int64
	for _, v := range []string{"1", "2", "3", "4"} {
		r, err := c.Put(ctx, "k", v)
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, r.Header.Revision)
	}
	cur := revs[3]
	if h, err := c.HashKV(ctx, ts.addr, 0); err != nil || h.CompactRevision != -1 {
		t.Fatalf("hashkv before compaction: %+v %v", h, err)
	}
	cr, err := c.Compact(ctx, revs[2], clientv3.WithCompactPhysical())
	if err != nil {
		t.Fatal(err)
	}
	if cr.Header.Revision != cur || ts.store.Rev() != cur {
		t.Errorf("compact header %d, KV revision %d; want both %d (a compaction changes no key)", cr.Header.Revision, ts.store.Rev(), cur)
	}
	if got := ts.store.CompactRev(); got != revs[2] {
		t.Errorf("compact revision %d, want %d", got, revs[2])
	}
	// The event.
	it := ts.j.Stream(journal.Audit).Scan(journal.Query{Kind: kv.KindCompact})
	n := 0
	for it.Next() {
		ev, err := it.Raw().Decode()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Data["rev"] != uint64(revs[2]) && ev.Data["rev"] != revs[2] || ev.Data["physical"] != true || ev.Actor.Via != "etcd" {
			t.Errorf("kv.compact event: data %v actor %+v", ev.Data, ev.Actor)
		}
		n++
	}
	it.Close()
	if n != 1 {
		t.Fatalf("%d kv.compact events, want 1", n)
	}

	// Again at or below: ErrCompacted; past the tip: ErrFutureRev.
	if _, err := c.Compact(ctx, revs[2]); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Errorf("compact again at %d: %v, want ErrCompacted", revs[2], err)
	}
	if _, err := c.Compact(ctx, revs[1]); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Errorf("compact below: %v, want ErrCompacted", err)
	}
	if _, err := c.Compact(ctx, cur+100); !errors.Is(err, rpctypes.ErrFutureRev) {
		t.Errorf("compact in the future: %v, want ErrFutureRev", err)
	}

	below := revs[1]
	checkBelow := func(honour bool) {
		t.Helper()
		_, err := c.Get(ctx, "k", clientv3.WithRev(below))
		_, terr := c.Txn(ctx).Then(clientv3.OpGet("k", clientv3.WithRev(below))).Commit()
		_, herr := c.HashKV(ctx, ts.addr, below)
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		wr := <-c.Watch(wctx, "k", clientv3.WithRev(below))
		if honour {
			if !errors.Is(err, rpctypes.ErrCompacted) || !errors.Is(terr, rpctypes.ErrCompacted) || !errors.Is(herr, rpctypes.ErrCompacted) {
				t.Errorf("below the compaction: get %v, txn %v, hashkv %v; want ErrCompacted", err, terr, herr)
			}
			if wr.CompactRevision != revs[2] || !wr.Canceled || !errors.Is(wr.Err(), rpctypes.ErrCompacted) || len(wr.Events) != 0 {
				t.Errorf("watch from %d: %+v (%v), want canceled with compact revision %d", below, wr, wr.Err(), revs[2])
			}
			return
		}
		if err != nil || terr != nil || herr != nil {
			t.Errorf("below the compaction, not honoured: get %v, txn %v, hashkv %v", err, terr, herr)
		}
		if wr.Err() != nil || len(wr.Events) != 1 || string(wr.Events[0].Kv.Value) != "2" {
			t.Errorf("watch from %d, not honoured: %+v (%v), want the put of 2", below, wr, wr.Err())
		}
	}
	checkBelow(true)
	// At the compact revision itself everything is there, as in etcd.
	if gr, err := c.Get(ctx, "k", clientv3.WithRev(revs[2])); err != nil || string(gr.Kvs[0].Value) != "3" || gr.Header.Revision != cur {
		t.Errorf("get at the compact revision: %+v %v", gr, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	wr := <-c.Watch(wctx, "k", clientv3.WithRev(revs[2]))
	cancel()
	if wr.Err() != nil || len(wr.Events) != 1 || string(wr.Events[0].Kv.Value) != "3" {
		t.Errorf("watch from the compact revision: %+v %v", wr, wr.Err())
	}
	if h, err := c.HashKV(ctx, ts.addr, 0); err != nil || h.CompactRevision != revs[2] {
		t.Errorf("hashkv: %+v %v, want compact revision %d", h, err, revs[2])
	}
	// cairn's own reads keep the whole history.
	n = 0
	if err := ts.store.History(ctx, []byte("k"), 0, false, func(*kv.Version) error { n++; return nil }); err != nil || n != 4 {
		t.Errorf("history after compaction: %d versions, %v; want 4", n, err)
	}
	if r, err := ts.store.Range(ctx, kv.RangeRequest{Key: []byte("k"), Rev: revs[0]}); err != nil || string(r.KVs[0].Value) != "1" {
		t.Errorf("store range at %d: %+v %v", revs[0], r, err)
	}

	ts.store.SetHonourCompaction(false)
	checkBelow(false)
}
