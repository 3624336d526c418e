package logs

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// BenchmarkDecodePackedForward decodes a PackedForward message of 500
// records of about 1 KiB, as cmd/cairnbench's logs part sends: the forward
// input's own share of a record's cost.
func BenchmarkDecodePackedForward(b *testing.B) {
	msg := benchPacked()
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		lr := &limitReader{r: bufio.NewReader(bytes.NewReader(msg)), max: defaultMaxFrame}
		fm, err := decodeForward(msgpack.NewDecoder(lr), nil)
		if err != nil || len(fm.records) != 500 {
			b.Fatal(err)
		}
	}
}

// BenchmarkPackedForwardToBodies takes the same message to the encoded
// bodies the journal stores and hashes, by the path a connection takes
// (its buffers kept, the bodies encoded by encodeRecords): the input's
// whole share of a record's cost before the committer.
func BenchmarkPackedForwardToBodies(b *testing.B) {
	msg := benchPacked()
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	actor := inputActor("forward", "127.0.0.1:5000")
	src := source{input: "forward", addr: "127.0.0.1:5000", uid: -1}
	var bufs forwardBufs // kept across messages, as a connection keeps them
	for b.Loop() {
		lr := &limitReader{r: bufio.NewReader(bytes.NewReader(msg)), max: defaultMaxFrame}
		fm, err := decodeForward(msgpack.NewDecoder(lr), &bufs)
		if err != nil || len(fm.records) != 500 {
			b.Fatal(err)
		}
		if _, ok := encodeRecords("node", actor, src, fm.records, &bufs.scratch); !ok {
			b.Fatal("encodeRecords left the records to EncodeBody")
		}
	}
}

func benchPacked() []byte {
	var packed []byte
	for i := range 500 {
		e, _ := msgpack.Marshal([]any{extTime(time.Now()), map[string]any{
			"level": "info", "i": i, "host": "web-01", "path": "/api/v1/orders", "status": 200,
			"latency_ms": 12.5, "user_agent": "Mozilla/5.0 (X11; Linux x86_64) bench", "msg": strings.Repeat("x", 800)}})
		packed = append(packed, e...)
	}
	msg, _ := msgpack.Marshal([]any{"bench.fwd", packed, map[string]any{"chunk": "c", "size": 500}})
	return msg
}
