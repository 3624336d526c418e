package journal

import (
	"encoding/json"
	"math/big"
	"strings"
	"testing"
)

// TestBodyBeyondInt64Decodes: a uint64 above int64's range is encoded
// without complaint, so it must decode too (as a *big.Int), or a committed
// event could never be read again.
func TestBodyBeyondInt64Decodes(t *testing.T) {
	const big63 = uint64(1)<<63 + 5
	p, err := EncodeBody(&Body{Kind: "app.flags", Subject: "s", Data: map[string]any{"flags": big63, "small": uint64(7)}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := DecodeBody(p)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if got, ok := b.Data["flags"].(*big.Int); !ok || !got.IsUint64() || got.Uint64() != big63 {
		t.Fatalf("flags decoded as %T %v, want *big.Int %d", b.Data["flags"], b.Data["flags"], big63)
	}
	if got, ok := b.Data["small"].(int64); !ok || got != 7 {
		t.Fatalf("small decoded as %T %v, want int64 7", b.Data["small"], b.Data["small"])
	}
}

// TestBodyBeyondInt64JSON: such an event prints as JSON with the number.
func TestBodyBeyondInt64JSON(t *testing.T) {
	p, err := EncodeBody(&Body{Kind: "app.flags", Subject: "s", Data: map[string]any{"flags": uint64(1)<<63 + 5}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := DecodeBody(p)
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(&Event{Seq: 1, Body: b})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"flags":9223372036854775813`) {
		t.Fatalf("JSON lost the number: %s", out)
	}
}
