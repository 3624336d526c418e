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
	var packed []byte
	for i := range 500 {
		e, _ := msgpack.Marshal([]any{extTime(time.Now()), map[string]any{
			"level": "info", "i": i, "host": "web-01", "path": "/api/v1/orders", "status": 200,
			"latency_ms": 12.5, "user_agent": "Mozilla/5.0 (X11; Linux x86_64) bench", "msg": strings.Repeat("x", 800)}})
		packed = append(packed, e...)
	}
	msg, _ := msgpack.Marshal([]any{"bench.fwd", packed, map[string]any{"chunk": "c", "size": 500}})
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		lr := &limitReader{r: bufio.NewReader(bytes.NewReader(msg)), max: defaultMaxFrame}
		fm, err := decodeForward(msgpack.NewDecoder(lr))
		if err != nil || len(fm.records) != 500 {
			b.Fatal(err)
		}
	}
}
