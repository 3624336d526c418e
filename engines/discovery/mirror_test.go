package discovery

import (
	"context"
	"log/slog"
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/cairnhq/cairn/journal"
)

// TestFoldHandsOps: the committer's fold of a KV write hands the event's
// ops to the loaded mirror, keyed by its seq, and they are the ops the
// committed event holds (the subscription applies them instead of
// decoding the event again).
func TestFoldHandsOps(t *testing.T) {
	m := newModule()
	j, err := journal.Open(journal.Options{Dir: "data", FS: vfs.NewMem(), Node: "test", Logger: slog.New(slog.DiscardHandler), Engines: m.Engines()})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	m.st = j.Stream(journal.Audit)
	sn := m.st.Snapshot()
	err = m.mir.load(sn)
	sn.Close()
	if err != nil {
		t.Fatal(err)
	}
	ok, err := m.kvWrite(context.Background(), journal.SystemActor(), kvWrite{Verb: "set", Key: "k", Value: []byte{0xff, 1}, Flags: 7})
	if err != nil || !ok {
		t.Fatalf("kvWrite: %v %v", ok, err)
	}
	seq := m.st.DurableSeq()
	got, handed := m.mir.takeHanded(seq)
	if !handed {
		t.Fatalf("no ops handed for seq %d", seq)
	}
	it := m.st.Scan(journal.Query{From: seq, To: seq})
	defer it.Close()
	if !it.Next() {
		t.Fatalf("seq %d not in the journal: %v", seq, it.Err())
	}
	ev, err := it.Raw().Decode()
	if err != nil {
		t.Fatal(err)
	}
	want, err := opsOf(ev.Data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || len(got) != 1 {
		t.Fatalf("handed %#v, the event holds %#v", got, want)
	}
	if err := m.mir.applyOps(seq, got); err != nil {
		t.Fatal(err)
	}
	if e := m.mir.kv["k"]; e == nil || string(e.Value) != "\xff\x01" || e.Flags != 7 || e.ModifyIndex != seq {
		t.Fatalf("mirror after the handed ops: %+v", e)
	}
}

// TestOfferBookkeeping: an offer waits for its seq and is taken once; an
// offer before the mirror is loaded, or for a seq applied already, is
// dropped; one the subscription did not take is dropped when its seq is
// applied; and offers left by rebuilt commit groups are swept past
// maxHanded, so nothing accumulates.
func TestOfferBookkeeping(t *testing.T) {
	m := newMirror()
	ops := []op{{Table: tabKV, ID: "k", Rec: recordOf(&kvEntry{Key: "k", Value: []byte("v"), CreateIndex: 3, ModifyIndex: 3})}}
	m.offer(3, ops) // the journal replaying before Start: not kept
	if len(m.handed) != 0 {
		t.Fatalf("an offer before load was kept: %v", m.handed)
	}
	m.live.Store(true)
	m.offer(3, ops)
	got, ok := m.takeHanded(3)
	if !ok || !reflect.DeepEqual(got, ops) {
		t.Fatalf("takeHanded(3) = %v %v, want the offered ops", got, ok)
	}
	if _, ok := m.takeHanded(3); ok {
		t.Fatal("an offer was taken twice")
	}
	if err := m.applyOps(3, got); err != nil {
		t.Fatal(err)
	}
	m.offer(3, ops) // a rebuild refolding seq 3: applied already
	if len(m.handed) != 0 {
		t.Fatalf("an offer for an applied seq was kept: %v", m.handed)
	}
	// Offered, not taken (the subscription decoded it), applied: dropped.
	m.offer(6, ops)
	applyKV(t, m, 6, "k", "w")
	if len(m.handed) != 0 || string(m.kv["k"].Value) != "w" {
		t.Fatalf("after apply 6: handed %v, k %+v", m.handed, m.kv["k"])
	}
	// Offers at seqs the commit gave to other engines' events are never
	// taken: swept once there are more than maxHanded.
	for s := int64(7); s < 7+maxHanded+1; s++ {
		m.offer(s, ops)
	}
	applyKV(t, m, 7+maxHanded+1, "k", "x")
	if len(m.handed) != 0 {
		t.Fatalf("%d offers left behind", len(m.handed))
	}
}
