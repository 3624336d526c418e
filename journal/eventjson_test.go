package journal

import (
	"bytes"
	"math"
	"testing"
	"time"
)

// referenceJSON is an event as encoding/json writes it: what
// appendEventJSON must reproduce byte for byte.
func referenceJSON(t testing.TB, e *Event) []byte {
	t.Helper()
	b, err := EncodeJSON(eventJSON{
		Stream: e.Stream, Seq: e.Seq, Time: time.Unix(0, e.Time).UTC().Format(time.RFC3339Nano),
		Body: e.Body, Prev: e.Prev, Hash: e.Hash,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkEventJSON(t testing.TB, e *Event) {
	t.Helper()
	got, err := appendEventJSON(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	if want := referenceJSON(t, e); !bytes.Equal(got, want) {
		t.Fatalf("appendEventJSON:\n%s\nencoding/json:\n%s", got, want)
	}
}

func TestEventJSONMatchesEncodingJSON(t *testing.T) {
	h := Hash{1, 2, 3, 0xfe}
	for _, e := range []*Event{
		{Stream: "audit", Seq: 1, Time: 1, Body: Body{Kind: "daemon.start", Actor: SystemActor()}},
		{Stream: "audit", Seq: 42, Time: time.Date(2026, 12, 5, 4, 0, 0, 120000, time.UTC).UnixNano(), Prev: h, Hash: h,
			Body: Body{Kind: "kv.put", Subject: "app/<x>&\"y\"\\", Node: "n\u2028", Actor: Actor{UID: -1, GID: -1, PID: 0, Via: "etcd", Addr: "127.0.0.1:5"},
				Data: map[string]any{"value": "a\x00\x01\b\f\n\r\t\x7f é \xff\xfe", "z": int64(-3), "a": []any{"x", 1.5, true, nil}, "m": map[string]any{"b": "2", "a": "1"},
					"f": []any{1e21, 1e-7, math.Copysign(0, -1), 123456789.125, 5e-324, float64(1 << 53), 1e20}, "u": uint64(1 << 63), "e": []any{}, "n": []any(nil), "b": []byte("raw")}}},
		{Stream: "capture", Seq: 7, Time: -5, Body: Body{Kind: "capture.syscall", Actor: Actor{UID: 1000, User: "u", Comm: "sh", Via: "capture"},
			Evt: &Evt{Type: "openat", Num: 3, Res: -2}, Proc: &Proc{Name: "sh", PID: 9, Cmdline: "sh -c 'x'"}, User: &User{UID: 0},
			FD: &FD{Name: "/etc/passwd", Type: "file"}, Container: &Container{ID: "host"}}},
		{Stream: "audit", Seq: 3, Body: Body{Kind: "x", Data: map[string]any{}}}, // empty data is left out, as omitempty does
	} {
		checkEventJSON(t, e)
	}
}

// FuzzEventJSON holds appendEventJSON to encoding/json's bytes for any
// strings and numbers in the envelope.
func FuzzEventJSON(f *testing.F) {
	f.Add("kv.put", "app/x", "node", "root", "sh", "127.0.0.1:1", "k", "v", int64(1), 0, int64(0))
	f.Add("a\x00b", "\u2029<>&", "\xff", "", "", "", "", "", int64(-1), -1, int64(1<<62))
	f.Fuzz(func(t *testing.T, kind, subject, node, user, comm, addr, key, val string, seq int64, uid int, tm int64) {
		e := &Event{Stream: "audit", Seq: seq, Time: tm, Body: Body{Kind: kind, Subject: subject, Node: node,
			Actor: Actor{UID: uid, GID: uid, PID: uid, User: user, Comm: comm, Via: "socket", Addr: addr}}}
		if key != "" {
			f := math.Float64frombits(uint64(tm))
			if math.IsInf(f, 0) || math.IsNaN(f) {
				f = 0
			}
			e.Data = map[string]any{key: val, val: []any{seq, f, map[string]any{key: nil, subject: uint64(tm)}}}
		}
		checkEventJSON(t, e)
	})
}

func BenchmarkEventJSON(b *testing.B) {
	e := &Event{Stream: "audit", Seq: 123456, Time: time.Now().UnixNano(), Body: Body{Kind: "bench.load", Subject: "s12",
		Node: "node", Actor: Actor{UID: 0, GID: 0, PID: 4242, User: "root", Via: "socket"}, Data: map[string]any{"i": int64(7)}}}
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			appendEventJSON(nil, e)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			referenceJSON(b, e)
		}
	})
}
