package discovery

import (
	"bytes"
	"context"
	"log/slog"
	"reflect"
	"strconv"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/cairnhq/cairn/journal"
)

// openLoaded opens an in-memory journal with m's engines as m's audit
// stream and loads m's mirror from it, as Start does; the test's end
// closes the journal.
func openLoaded(t *testing.T, m *Module) {
	t.Helper()
	j, err := journal.Open(journal.Options{Dir: "data", FS: vfs.NewMem(), Node: "test", Logger: slog.New(slog.DiscardHandler), Engines: m.Engines()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	m.st = j.Stream(journal.Audit)
	sn := m.st.Snapshot()
	err = m.mir.load(sn)
	sn.Close()
	if err != nil {
		t.Fatal(err)
	}
}

// TestFoldHandsOps: the committer's fold of a KV write hands the event's
// ops to the loaded mirror, keyed by its seq, and they are the ops the
// committed event holds (the subscription applies them instead of
// decoding the event again).
func TestFoldHandsOps(t *testing.T) {
	m := newModule()
	openLoaded(t, m)
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
	if len(got) != 1 || len(want) != 1 {
		t.Fatalf("handed %#v, the event holds %#v", got, want)
	}
	// The handed ops fold into the mirror as the decoded event does.
	viaEvent := newMirror()
	if err := viaEvent.applyOps(seq, want); err != nil {
		t.Fatal(err)
	}
	if err := m.mir.applyOps(seq, got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m.mir.kv, viaEvent.kv) {
		t.Fatalf("mirror from the handed ops %+v, from the event %+v", m.mir.kv["k"], viaEvent.kv["k"])
	}
	if e := m.mir.kv["k"]; e == nil || string(e.Value) != "\xff\x01" || e.Flags != 7 || e.ModifyIndex != seq {
		t.Fatalf("mirror after the handed ops: %+v", e)
	}
}

// TestFoldRawAsFold: FoldRaw's partial decoding of a KV write gives every
// op the projection bytes and the mirror state Fold gives it from the
// decoded event, and leaves other kinds and anything odd to Fold.
func TestFoldRawAsFold(t *testing.T) {
	kvs := []*kvEntry{
		{Key: "plain", Value: []byte("v"), CreateIndex: 3, ModifyIndex: 4},
		{Key: "empty", Value: []byte{}, CreateIndex: 5, ModifyIndex: 5},
		{Key: "novalue", CreateIndex: 5, ModifyIndex: 6},
		{Key: "bin", Value: []byte{0xff, 0xfe, 0}, Flags: 1<<63 + 1, Session: "s", LockIndex: 2, CreateIndex: 1, ModifyIndex: 9},
		{Key: "ünï/cødé", Value: []byte("ü"), Flags: 42, CreateIndex: 7, ModifyIndex: 8},
	}
	var ops []op
	for _, e := range kvs {
		ops = append(ops, op{Table: tabKV, ID: e.Key, kv: e})
	}
	ops = append(ops, op{Table: tabKV, ID: "gone"})
	encode := func(data map[string]any) []byte {
		b, err := journal.EncodeBody(&journal.Body{Kind: KindKVTxn, Subject: "x", Actor: journal.SystemActor(), Data: data})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	body := encode(map[string]any{"op": "set", "ops": opsData(ops)})
	got, stored, ok := rawOps(KindKVTxn, body)
	if !ok {
		t.Fatal("rawOps refused a well-formed KV write")
	}
	dec, err := journal.DecodeBody(body)
	if err != nil {
		t.Fatal(err)
	}
	want, err := opsOf(dec.Data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d ops, the event has %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Table != w.Table || got[i].ID != w.ID || (w.Rec == nil) != (got[i].kv == nil) {
			t.Fatalf("op %d: %+v, want %+v", i, got[i], w)
		}
		if w.Rec == nil {
			continue
		}
		wb, err := storedRecord(w.Table, w.Rec)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(stored[i], wb) {
			t.Errorf("op %d (%s) stored as %s, Fold stores %s", i, w.ID, stored[i], wb)
		}
	}
	a, b := newMirror(), newMirror()
	if err := a.applyOps(7, got); err != nil {
		t.Fatal(err)
	}
	if err := b.applyOps(7, want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.kv, b.kv) || !reflect.DeepEqual(a.idx, b.idx) {
		t.Errorf("the mirror from FoldRaw's ops differs from Fold's:\n%+v\n%+v", a.kv, b.kv)
	}
	// Other kinds, and anything odd, are Fold's to judge.
	svc := encode(map[string]any{"ops": opsData([]op{{Table: tabService, ID: "s", Rec: recordOf(&service{ID: "s", Name: "s"})}})})
	if _, _, ok := rawOps(KindServiceRegister, svc); ok {
		t.Error("rawOps took a service registration")
	}
	for name, data := range map[string]map[string]any{
		"ops not a list":    {"ops": "x"},
		"an op not a map":   {"ops": []any{"x"}},
		"no table":          {"ops": []any{map[string]any{"id": "k"}}},
		"another table":     {"ops": []any{map[string]any{"t": tabSession, "id": "k"}}},
		"a record not map":  {"ops": []any{map[string]any{"t": tabKV, "id": "k", "rec": "x"}}},
		"bad flags":         {"ops": []any{map[string]any{"t": tabKV, "id": "k", "rec": map[string]any{"key": "k", "flags": "x"}}}},
		"bad base64":        {"ops": []any{map[string]any{"t": tabKV, "id": "k", "rec": map[string]any{"key": "k", "value_b64": "%%"}}}},
		"a number value":    {"ops": []any{map[string]any{"t": tabKV, "id": "k", "rec": map[string]any{"key": "k", "value": int64(3)}}}},
		"a string lock idx": {"ops": []any{map[string]any{"t": tabKV, "id": "k", "rec": map[string]any{"key": "k", "lock_index": "1"}}}},
	} {
		if _, _, ok := rawOps(KindKVSet, encode(data)); ok {
			t.Errorf("%s: rawOps took it", name)
		}
	}
	if ops, _, ok := rawOps(KindKVSet, encode(map[string]any{"op": "x"})); !ok || len(ops) != 0 {
		t.Errorf("an event without ops: %v %v, want none", ops, ok)
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

// TestKVCurrent: the committer reads a key from memory only when the
// mirror holds every event that wrote it; while a folded write is not
// applied yet, and while a writer holds the mirror, it reads the
// projection, so a CAS decided in that window still sees the write.
func TestKVCurrent(t *testing.T) {
	m := newModule()
	if _, ok := m.mir.kvCurrent("k"); ok {
		t.Fatal("kvCurrent answered before the mirror was loaded")
	}
	openLoaded(t, m)
	if e, ok := m.mir.kvCurrent("k"); !ok || e != nil {
		t.Fatalf("kvCurrent(k) of an empty mirror = %v %v, want absent from memory", e, ok)
	}
	ctx := context.Background()
	put := func(w kvWrite) bool {
		t.Helper()
		ok, err := m.kvWrite(ctx, journal.SystemActor(), w)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	// The mirror's subscription is not running: what the commits fold is
	// not applied, so the committer must read the projection.
	if !put(kvWrite{Verb: "set", Key: "k", Value: []byte("a")}) {
		t.Fatal("set k refused")
	}
	first := m.st.DurableSeq()
	if _, ok := m.mir.kvCurrent("k"); ok {
		t.Fatal("kvCurrent(k) answered from a mirror that lacks its write")
	}
	if put(kvWrite{Verb: "cas", Key: "k", Value: []byte("b"), Index: 0}) {
		t.Fatal("cas index 0 (create only) took a key that exists: the write was not seen")
	}
	if !put(kvWrite{Verb: "cas", Key: "k", Value: []byte("b"), Index: uint64(first)}) {
		t.Fatalf("cas at the key's index %d refused", first)
	}
	second := m.st.DurableSeq()
	// Applied (as the subscription does with the handed ops): from memory.
	for _, seq := range []int64{first, second} {
		ops, ok := m.mir.takeHanded(seq)
		if !ok {
			t.Fatalf("no ops handed for %d", seq)
		}
		if err := m.mir.applyOps(seq, ops); err != nil {
			t.Fatal(err)
		}
	}
	e, ok := m.mir.kvCurrent("k")
	if !ok || e == nil || string(e.Value) != "b" || e.ModifyIndex != second || e.CreateIndex != first {
		t.Fatalf("kvCurrent(k) once applied = %+v %v, want b at %d created at %d", e, ok, second, first)
	}
	if !put(kvWrite{Verb: "cas", Key: "k", Value: []byte("c"), Index: uint64(second)}) || put(kvWrite{Verb: "cas", Key: "k", Value: []byte("d"), Index: uint64(second)}) {
		t.Fatal("cas from memory: the first at the current index must hold, the second (stale) must not")
	}
	// A writer holding the mirror: the committer does not wait for it.
	m.mir.mu.Lock()
	_, ok = m.mir.kvCurrent("other")
	m.mir.mu.Unlock()
	if ok {
		t.Fatal("kvCurrent answered while a writer held the mirror")
	}
}

// TestWrittenPruned: keys whose last fold is applied leave written once it
// passes its limit; the others stay.
func TestWrittenPruned(t *testing.T) {
	m := newMirror()
	m.live.Store(true)
	m.applied.Store(10)
	for i := 0; i <= minWrittenLimit; i++ { // the last one passes the limit
		m.noteWritten(int64(i+1), []op{{Table: tabKV, ID: "k" + strconv.Itoa(i)}})
	}
	m.noteWritten(minWrittenLimit+2, []op{{Table: tabKV, ID: "last"}, {Table: tabService, ID: "svc"}})
	if want := minWrittenLimit + 1 - 10 + 1; len(m.written) != want {
		t.Fatalf("written holds %d keys, want %d (those folded after seq 10)", len(m.written), want)
	}
	if _, ok := m.written["k9"]; ok { // seq 10
		t.Fatal("a key applied at seq 10 was kept")
	}
	if _, ok := m.written["svc"]; ok {
		t.Fatal("a service id was noted as a KV key")
	}
}

// TestKVCurrentAfterMissedEvent: once the mirror fails to apply an event
// it lacks a committed change, and the committer reads the projection
// from then on.
func TestKVCurrentAfterMissedEvent(t *testing.T) {
	m := newMirror()
	m.live.Store(true)
	if _, ok := m.kvCurrent("k"); !ok {
		t.Fatal("kvCurrent refused on a live mirror")
	}
	bad := []op{{Table: tabKV, ID: "k", Rec: map[string]any{"key": "k", "flags": "not a number", "create_index": int64(2), "modify_index": int64(2)}}}
	if err := m.applyOps(2, bad); err == nil {
		t.Fatal("an op with bad flags applied")
	}
	if _, ok := m.kvCurrent("other"); ok {
		t.Fatal("kvCurrent answered from a mirror that missed an event")
	}
}

// TestOpsDataEncoding: ops written from structs (a KV record from its
// kvEntry, the op itself) encode to exactly the bytes the maps they
// replace did, so events stay as they were and decode as before.
func TestOpsDataEncoding(t *testing.T) {
	entries := []*kvEntry{
		{Key: "plain", Value: []byte("v"), CreateIndex: 3, ModifyIndex: 4},
		{Key: "empty", Value: []byte{}, CreateIndex: 5, ModifyIndex: 5},
		{Key: "novalue", CreateIndex: 5, ModifyIndex: 6},
		{Key: "bin", Value: []byte{0xff, 0xfe, 0}, Flags: 1<<63 + 1, Session: "s", LockIndex: 2, CreateIndex: 1, ModifyIndex: 9},
		{Key: "ünï/cødé", Value: []byte("ü"), Flags: 42, CreateIndex: 7, ModifyIndex: 8},
	}
	svc := recordOf(&service{ID: "web-1", Name: "web", Tags: []string{"a"}, Port: 80, CreateIndex: 1, ModifyIndex: 1})
	for _, e := range entries {
		ops := []op{{Table: tabKV, ID: e.Key, kv: e}, {Table: tabKV, ID: "gone"}, {Table: tabService, ID: "web-1", Rec: svc}}
		asMaps := []any{
			map[string]any{"t": tabKV, "id": e.Key, "rec": kvRecord(e)},
			map[string]any{"t": tabKV, "id": "gone"},
			map[string]any{"t": tabService, "id": "web-1", "rec": svc},
		}
		got, err := journal.EncodeBody(&journal.Body{Kind: KindKVTxn, Data: map[string]any{"op": "set", "ops": opsData(ops)}})
		if err != nil {
			t.Fatal(err)
		}
		want, err := journal.EncodeBody(&journal.Body{Kind: KindKVTxn, Data: map[string]any{"op": "set", "ops": asMaps}})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%q: ops from structs encode as\n%x\nthe maps as\n%x", e.Key, got, want)
		}
	}
}

// TestMirrorBounds: folds before the mirror is loaded are not kept key by
// key (a restore never loads it), yet kvCurrent answers nothing until the
// mirror holds them; a refold of an applied event (a rebuild) and a
// subscription's end stop the committer reading from the mirror; and a
// backlog of offers is swept with a limit that grows with it.
func TestMirrorBounds(t *testing.T) {
	m := newMirror()
	kvOp := func(key string, seq int64) []op {
		return []op{{Table: tabKV, ID: key, Rec: recordOf(&kvEntry{Key: key, Value: []byte("v"), CreateIndex: seq, ModifyIndex: seq})}}
	}
	for i := range 10000 {
		m.noteWritten(int64(i+1), kvOp("k"+strconv.Itoa(i), int64(i+1)))
	}
	if len(m.written) != 0 {
		t.Fatalf("%d keys kept before the mirror was loaded", len(m.written))
	}
	m.seq = 9000
	m.live.Store(true)
	if _, ok := m.kvCurrent("k1"); ok {
		t.Fatal("kvCurrent answered before the mirror held the folds made before its load")
	}
	m.seq = 10000
	m.applied.Store(10000)
	if _, ok := m.kvCurrent("k1"); !ok {
		t.Fatal("kvCurrent refused once the mirror held every fold")
	}

	// A backlog: 3,000 offers above the applied seq.
	for s := int64(10001); s <= 13000; s++ {
		m.offer(s, kvOp("b", s))
	}
	m.noteApplied(10000)
	if m.handedLimit < 2*len(m.handed) || len(m.handed) != 3000 {
		t.Fatalf("after a sweep: %d offers, limit %d", len(m.handed), m.handedLimit)
	}

	m.noteWritten(500, kvOp("k1", 500)) // a rebuild refolding
	if !m.missed.Load() {
		t.Fatal("a refold of an applied event left the mirror trusted")
	}
	if len(m.handed) != 0 {
		t.Fatalf("a refold left %d offers to be taken for other events at their seqs", len(m.handed))
	}
	m2 := newMirror()
	m2.live.Store(true)
	m2.offer(1, kvOp("k", 1))
	m2.markMissed()
	if _, ok := m2.kvCurrent("k"); ok || len(m2.handed) != 0 {
		t.Fatalf("after stop: kvCurrent ok=%v, %d offers kept", ok, len(m2.handed))
	}
	m2.offer(2, kvOp("k", 2))
	if len(m2.handed) != 0 {
		t.Fatal("an offer was kept after stop")
	}
}
