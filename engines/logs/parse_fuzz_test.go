package logs

import (
	"bytes"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// FuzzForward: any bytes on the forward port decode to a message or an
// error, never a panic (the bytes of a PackedForward entry stream, gzip
// options and nesting included).
func FuzzForward(f *testing.F) {
	for _, v := range []any{
		[]any{"app.web", int64(1700000000), map[string]any{"log": "hi"}},
		[]any{"app.web", []any{[]any{int64(1), map[string]any{"a": int64(1)}}}, map[string]any{"chunk": "abc"}},
		[]any{"app.web", []byte{0x92, 0x01, 0x80}, map[string]any{"compressed": "gzip"}},
		[]any{"t", msgpack.RawMessage{0xd7, 0x00, 0, 0, 0, 1, 0, 0, 0, 2}, map[string]any{}},
	} {
		b, err := msgpack.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// A connection's buffers, used again from one input to the next:
	// what they decode is what fresh buffers decode.
	var bufs forwardBufs
	f.Fuzz(func(t *testing.T, b []byte) {
		fm, err := decodeForward(msgpack.NewDecoder(bytes.NewReader(b)), nil)
		fm2, err2 := decodeForward(msgpack.NewDecoder(bytes.NewReader(b)), &bufs)
		if (err == nil) != (err2 == nil) || len(fm.records) != len(fm2.records) || fm.bad != fm2.bad {
			t.Fatalf("fresh buffers: %d records, %v; reused: %d records, %v", len(fm.records), err, len(fm2.records), err2)
		}
		for i := range fm.records {
			if !bytes.Equal(fm.records[i].raw, fm2.records[i].raw) {
				t.Fatalf("record %d: %x with fresh buffers, %x reused", i, fm.records[i].raw, fm2.records[i].raw)
			}
		}
	})
}

// FuzzSyslog: any datagram is a record (RFC 5424, RFC 3164 or the raw
// line) or an error, never a panic.
func FuzzSyslog(f *testing.F) {
	for _, s := range []string{
		"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed",
		`<165>1 2003-10-11T22:14:15.003Z host app 1 ID [exampleSDID@32473 iut="3" eventSource="Application"] msg`,
		"<13>Feb  5 17:32:18 10.0.0.99 myapp[123]: hello", "<>", "<999>x", "plain", "<13>1 - - - - - -",
	} {
		f.Add(s)
	}
	now := time.Unix(1700000000, 0)
	f.Fuzz(func(t *testing.T, line string) {
		_, _ = parseSyslog(line, now)
	})
}
