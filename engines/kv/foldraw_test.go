package kv

import (
	"reflect"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/cairnhq/cairn/journal"
)

// foldView is what foldOp reads of an op: a deletion's key, or a put's
// key, value and lease. The rest (create_rev, version, prev_rev) is the
// event's copy, which the fold takes from the projection.
func foldView(ops []op) []op {
	out := make([]op, len(ops))
	for i, o := range ops {
		out[i] = op{Del: o.Del, Key: o.Key}
		if !o.Del {
			out[i].Value, out[i].Lease = o.Value, o.Lease
		}
	}
	return out
}

// rawEvent stores body as an event's record, as the committer hands it
// to FoldRaw.
func rawEvent(body []byte) *journal.Raw {
	return &journal.Raw{Stream: "audit", Seq: 9, Record: journal.EncodeRecord(1, journal.Hash{}, journal.Hash{}, body)}
}

// TestFoldRawAsFold: for every event the kv engine writes, and for
// hand-made ones, FoldRaw's ops are the ones Fold reads from the decoded
// event; where Fold refuses the event, FoldRaw's decoder refuses it too
// (and FoldRaw then goes through Fold).
func TestFoldRawAsFold(t *testing.T) {
	bin := []byte{0xff, 0x00, 0xfe}
	put := func(o op) map[string]any { return o.data(false) }
	cases := []struct {
		name string
		kind string
		data map[string]any
	}{
		{"put", KindPut, put(op{Key: []byte("a"), Value: []byte("v"), CreateRev: 3, Version: 2, PrevRev: 4})},
		{"put empty value", KindPut, put(op{Key: []byte("a"), Value: []byte{}, CreateRev: 3, Version: 1})},
		{"put binary with lease", KindPut, put(op{Key: bin, Value: bin, Lease: 0x694d77aa9e38260f, CreateRev: 3, Version: 1})},
		{"put no value", KindPut, map[string]any{"key": "a"}},
		{"put key and key_b64", KindPut, map[string]any{"key": "a", "key_b64": "/w==", "value": "v"}},
		{"put op delete", KindPut, map[string]any{"key": "a", "op": "delete"}},
		{"put unknown op", KindPut, map[string]any{"key": "a", "op": "move"}},
		{"put bad base64", KindPut, map[string]any{"key_b64": "!!", "value": "v"}},
		{"put bad lease", KindPut, map[string]any{"key": "a", "lease": "zz"}},
		{"put empty lease", KindPut, map[string]any{"key": "a", "lease": ""}},
		{"put key not a string", KindPut, map[string]any{"key": int64(3)}},
		{"put upper-case names", KindPut, map[string]any{"Key": "a", "VALUE": "v"}},
		{"delete", KindDelete, map[string]any{"keys": opsData([]op{{Del: true, Key: []byte("a"), PrevRev: 2}, {Del: true, Key: bin}}, false)}},
		{"delete with put op", KindDelete, map[string]any{"keys": []any{map[string]any{"key": "a", "op": "put", "value": "v", "lease": "1f"}}}},
		{"delete keys not a list", KindDelete, map[string]any{"keys": "a"}},
		{"txn", KindTxn, map[string]any{"ops": opsData([]op{{Key: []byte("a"), Value: []byte("1"), CreateRev: 5, Version: 1}, {Del: true, Key: []byte("b")}, {Key: bin, Value: bin, Lease: 31}}, true)}},
		{"txn op not a map", KindTxn, map[string]any{"ops": []any{"a"}}},
		{"txn no ops", KindTxn, map[string]any{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body, err := journal.EncodeBody(&journal.Body{Kind: c.kind, Subject: "a", Actor: journal.SystemActor(), Data: c.data})
			if err != nil {
				t.Fatal(err)
			}
			compare(t, c.kind, body)
		})
	}

	// A data map with a key twice: the map decoding keeps one of them,
	// FoldRaw's decoder refuses it (so FoldRaw goes through Fold).
	dup := encodeRaw(t, map[string]any{"kind": KindPut, "subject": "a"}, `key`, "a", `key`, "b")
	if _, err := rawOps(rawEvent(dup)); err == nil {
		t.Error("rawOps read a data map with the key \"key\" twice")
	}
}

// compare checks rawOps against eventOps for one event body.
func compare(t *testing.T, kind string, body []byte) {
	t.Helper()
	b, err := journal.DecodeBody(body)
	if err != nil {
		t.Fatal(err)
	}
	want, wantErr := eventOps(kind, b.Data)
	got, gotErr := rawOps(rawEvent(body))
	switch {
	case wantErr != nil && gotErr == nil:
		t.Fatalf("Fold refuses the event (%v), rawOps reads %+v", wantErr, got)
	case wantErr != nil:
		return
	case gotErr != nil:
		return // FoldRaw goes through Fold
	}
	if !reflect.DeepEqual(foldView(got), foldView(want)) {
		t.Fatalf("rawOps folds %+v, Fold folds %+v", foldView(got), foldView(want))
	}
}

// encodeRaw encodes an event body by hand: the envelope's fields and a
// data map of the given name/value pairs, in that order, duplicates kept.
func encodeRaw(t *testing.T, env map[string]any, pairs ...any) []byte {
	t.Helper()
	var out []byte
	out = append(out, 0xa0|byte(len(env)+1))
	for k, v := range env {
		out = append(out, mustCBOR(t, k)...)
		out = append(out, mustCBOR(t, v)...)
	}
	out = append(out, mustCBOR(t, "data")...)
	out = append(out, 0xa0|byte(len(pairs)/2))
	for _, p := range pairs {
		out = append(out, mustCBOR(t, p)...)
	}
	return out
}

func mustCBOR(t *testing.T, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
