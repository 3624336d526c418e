package logs

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// extTime is Fluentd's EventTime as a client encodes it (ext 0).
type extTime time.Time

func (t extTime) EncodeMsgpack(enc *msgpack.Encoder) error {
	return eventTime(t).EncodeMsgpack(enc)
}

func decodeAll(t *testing.T, b []byte, max int64) ([]forwardMsg, error) {
	t.Helper()
	lr := &limitReader{r: bufio.NewReader(bytes.NewReader(b)), max: max}
	dec := msgpack.NewDecoder(lr)
	var out []forwardMsg
	for {
		lr.n = 0
		if _, err := lr.Peek(1); err != nil {
			return out, nil
		}
		fm, err := decodeForward(dec, nil)
		if err != nil {
			return out, err
		}
		out = append(out, fm)
	}
}

// recordFields is a record's fields, decoded from the CBOR the
// transcoder wrote for a PackedForward one.
func recordFields(t testing.TB, r Record) map[string]any {
	t.Helper()
	f, err := r.fields()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDecodeForward decodes each mode of the forward protocol, with each
// kind of time, and the options that matter (chunk, compressed).
func TestDecodeForward(t *testing.T) {
	t0 := time.Unix(1700000000, 123456789)
	rec := map[string]any{"level": "error", "n": 3}
	var packed []byte
	for i := range 3 {
		packed = append(packed, mustMarshal(t, []any{extTime(t0), map[string]any{"i": i}})...)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(packed[:len(packed)/2])
	zw.Close()
	zw = gzip.NewWriter(&gz) // two gzip members, as Fluentd appends them
	zw.Write(packed[len(packed)/2:])
	zw.Close()
	var stream []byte
	for _, m := range []any{
		[]any{"a.msg", int64(1700000000), rec},
		[]any{"a.msg", extTime(t0), rec, map[string]any{"chunk": "c1"}},
		[]any{"a.msg", 1700000000.5, rec},
		[]any{"a.fwd", []any{[]any{int64(1700000000), rec}, []any{extTime(t0), rec}}, map[string]any{"chunk": "c2", "size": 2}},
		[]any{"a.packed", packed, map[string]any{"chunk": "c3"}},
		[]any{"a.packed", string(packed)}, // str instead of bin, as old clients send
		[]any{"a.gz", gz.Bytes(), map[string]any{"compressed": "gzip", "chunk": "c4"}},
	} {
		stream = append(stream, mustMarshal(t, m)...)
	}
	msgs, err := decodeAll(t, stream, defaultMaxFrame)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		mode, tag, chunk string
		n                int
		time             time.Time
	}{
		{"message", "a.msg", "", 1, time.Unix(1700000000, 0)},
		{"message", "a.msg", "c1", 1, t0},
		{"message", "a.msg", "", 1, time.Unix(1700000000, 500000000)},
		{"forward", "a.fwd", "c2", 2, time.Unix(1700000000, 0)},
		{"packed", "a.packed", "c3", 3, t0},
		{"packed", "a.packed", "", 3, t0},
		{"compressed", "a.gz", "c4", 3, t0},
	}
	if len(msgs) != len(want) {
		t.Fatalf("%d messages, want %d", len(msgs), len(want))
	}
	for i, w := range want {
		m := msgs[i]
		if m.mode != w.mode || m.tag != w.tag || m.chunk != w.chunk || len(m.records) != w.n || m.bad != 0 {
			t.Errorf("message %d: %s %s chunk=%q %d records (%d bad), want %+v", i, m.mode, m.tag, m.chunk, len(m.records), m.bad, w)
			continue
		}
		if !m.records[0].Time.Equal(w.time) {
			t.Errorf("message %d: time %v, want %v", i, m.records[0].Time, w.time)
		}
	}
	if got := msgs[0].records[0].Fields; got["level"] != "error" || got["n"] != int64(3) {
		t.Errorf("record fields: %#v", got)
	}
	if got := recordFields(t, msgs[6].records[2])["i"]; got != int64(2) {
		t.Errorf("the last compressed entry: %#v", got)
	}
}

// TestDecodeForwardBad refuses what is not the protocol, within the frame
// limit, and skips (counts) records that are not maps.
func TestDecodeForwardBad(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  []byte
		want string
	}{
		{"not msgpack", []byte{0xc1}, "invalid code"},
		{"not an array", mustMarshal(t, map[string]any{"a": 1}), "msgpack"},
		{"one item", mustMarshal(t, []any{"tag"}), "2 to 4 items"},
		{"empty tag", mustMarshal(t, []any{"", 1, map[string]any{}}), "empty tag"},
		{"tag not a string", mustMarshal(t, []any{7, 1, map[string]any{}}), "tag"},
		{"time a map", mustMarshal(t, []any{"t", map[string]any{"x": 1}, map[string]any{}}), "not seconds or EventTime"},
		{"packed str that is not entries", mustMarshal(t, []any{"t", "yesterday", map[string]any{}}), "packed entries"},
		{"unknown compression", mustMarshal(t, []any{"t", []byte{0x92}, map[string]any{"compressed": "zstd"}}), "only gzip"},
		{"bad gzip", mustMarshal(t, []any{"t", []byte("not gzip"), map[string]any{"compressed": "gzip"}}), "compressed entries"},
		{"entry of three", mustMarshal(t, []any{"t", []any{[]any{1, map[string]any{}, 3}}}), "[time, record]"},
		{"truncated", mustMarshal(t, []any{"t", 1, map[string]any{"a": "b"}})[:6], "EOF"},
		{"too deep", mustMarshal(t, []any{"t", 1, nest(100)}), "deeper than 64"},
	} {
		_, err := decodeAll(t, tc.msg, defaultMaxFrame)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one with %q", tc.name, err, tc.want)
		}
	}

	// A bin32 declaring 100 MB, with 2 MB of it there: the frame limit
	// (1 MiB here) stops it.
	big := []byte{0x93, 0xa1, 't', 0xc6}
	big = binary.BigEndian.AppendUint32(big, 100<<20)
	big = append(big, make([]byte, 2<<20)...)
	if _, err := decodeAll(t, big, 1<<20); !errors.Is(err, errFrameTooLarge) {
		t.Errorf("a 100 MB frame: %v", err)
	}
	// The same through a connection's buffers, which a bin that long does
	// not grow by its declared length either.
	var bufs forwardBufs
	lr := &limitReader{r: bufio.NewReader(bytes.NewReader(big)), max: 1 << 20}
	if _, err := decodeForward(msgpack.NewDecoder(lr), &bufs); !errors.Is(err, errFrameTooLarge) || cap(bufs.packed) > 4<<20 {
		t.Errorf("a 100 MB frame through buffers: %v, %d bytes kept", err, cap(bufs.packed))
	}
	// A map declaring 2^32-1 entries allocates nothing up front.
	huge := append([]byte{0x93, 0xa1, 't', 0x01, 0xdf}, 0xff, 0xff, 0xff, 0xff)
	if _, err := decodeAll(t, huge, 1<<20); err == nil {
		t.Error("a map of 2^32-1 entries with none there decoded")
	}
	// So does one where the time goes (msgpack's own map decoding would
	// make a Go map of 2 billion entries: FuzzForward found it).
	hugeTime := append([]byte{0x93, 0xa1, 't', 0xdf}, 0x78, 0x30, 0xd0, 0x30)
	if _, err := decodeAll(t, hugeTime, 1<<20); err == nil || !strings.Contains(err.Error(), "not seconds or EventTime") {
		t.Errorf("a time that is a map of 2 billion entries: %v", err)
	}
	// A key declaring 3.6 GB allocates as its bytes arrive (FuzzForward
	// found it allocating the lot first).
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	hugeKey := []byte{0x93, 0xa1, 't', 0x01, 0x81, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb}
	if _, err := decodeAll(t, hugeKey, 1<<20); err == nil {
		t.Error("a key of 3.6 GB with one byte there decoded")
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
		t.Errorf("a key declaring 3.6 GB allocated %d bytes", n)
	}
	// So does a record's bin (msgpack's own reading made a buffer of its
	// declared length first), in a Message and in a packed entry.
	runtime.ReadMemStats(&before)
	for _, msg := range [][]byte{
		{0x93, 0xa1, 't', 0x01, 0x81, 0xa1, 'k', 0xc6, 0xff, 0x30, 0x30, 0x30, 0x30},
		mustMarshal(t, []any{"t", []byte{0x92, 0x01, 0x81, 0xa1, 'k', 0xc6, 0xff, 0x30, 0x30, 0x30, 0x30}}),
		{0x93, 0xa1, '0', 0xdb, 0xff, 0x30, 0x30, 0x30, 0x30},
	} {
		if _, err := decodeAll(t, msg, 1<<20); err == nil {
			t.Errorf("%x: a bin of 4 GB with a byte there decoded", msg)
		}
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
		t.Errorf("bins declaring 4 GB allocated %d bytes", n)
	}
	// And a packed entry's.
	hugePacked := append([]byte{0x92, 0xdf}, 0x78, 0x30, 0xd0, 0x30)
	if _, err := decodeAll(t, mustMarshal(t, []any{"t", hugePacked}), 1<<20); err == nil {
		t.Error("a packed entry whose time is a map of 2 billion entries decoded")
	}

	msgs, err := decodeAll(t, mustMarshal(t, []any{"t", []any{[]any{1, "a string"}, []any{1, []any{1}}, []any{1, map[string]any{"ok": true}}}}), defaultMaxFrame)
	if err != nil || len(msgs) != 1 || msgs[0].bad != 2 || len(msgs[0].records) != 1 {
		t.Fatalf("records that are not maps: %+v, %v", msgs, err)
	}
}

func nest(n int) any {
	var v any = map[string]any{}
	for range n {
		v = map[string]any{"a": v}
	}
	return v
}

// TestDecodeForwardJSON reads forward messages sent as JSON, and refuses
// what is not one.
func TestDecodeForwardJSON(t *testing.T) {
	in := `["a.msg",1700000000,{"n":1,"s":"x"},{"chunk":"c1"}]` +
		`["a.fwd",[[1700000000.5,{"n":2}],[1700000001,"not a map"]]]`
	d := json.NewDecoder(strings.NewReader(in))
	d.UseNumber()
	fm, err := decodeForwardJSON(d)
	if err != nil || fm.mode != "message" || fm.chunk != "c1" || len(fm.records) != 1 || fm.records[0].Fields["n"] != int64(1) {
		t.Fatalf("message: %+v, %v", fm, err)
	}
	fm, err = decodeForwardJSON(d)
	if err != nil || fm.mode != "forward" || len(fm.records) != 1 || fm.bad != 1 || !fm.records[0].Time.Equal(time.Unix(1700000000, 500000000)) {
		t.Fatalf("forward: %+v, %v", fm, err)
	}
	for _, bad := range []string{`{"a":1}`, `["t"]`, `[7,1,{}]`, `["t","yesterday",{}]`, `["t",1,{},{},{}]`, `["t",1,{},"opt"]`, `["t",1`} {
		d := json.NewDecoder(strings.NewReader(bad))
		d.UseNumber()
		if fm, err := decodeForwardJSON(d); err == nil {
			t.Errorf("%s decoded: %+v", bad, fm)
		}
	}
}
