package filter

import (
	"math"
	"testing"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"

	"github.com/cairnhq/cairn/journal"
)

// detEnc encodes as journal does: core deterministic, shortest forms.
var detEnc = func() cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

func encode(t testing.TB, v any) []byte {
	t.Helper()
	p, err := detEnc.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadInt(t *testing.T) {
	for _, n := range []int64{0, 1, 23, 24, 255, 256, 65535, 65536, 1 << 32, math.MaxInt64, -1, -24, -25, -256, -257, math.MinInt64} {
		p := encode(t, n)
		got, ok := readInt(p, 0)
		if !ok || got != n {
			t.Errorf("readInt(%x) = %d, %v; want %d", p, got, ok, n)
		}
		if end, ok := skip(p, 0); !ok || end != len(p) {
			t.Errorf("skip(%x) = %d, %v", p, end, ok)
		}
	}
	// Beyond int64 either way: not an int CEL can hold.
	for _, p := range [][]byte{encode(t, uint64(math.MaxInt64)+1), {0x3b, 0x80, 0, 0, 0, 0, 0, 0, 0}} {
		if _, ok := readInt(p, 0); ok {
			t.Errorf("readInt(%x) ok", p)
		}
	}
	if _, ok := readInt(encode(t, "12"), 0); ok {
		t.Error("readInt reads a string")
	}
}

func TestReadFloat(t *testing.T) {
	// Shortest form picks half, single or double by value.
	for _, c := range []struct {
		f    float64
		head byte
	}{
		{0, 0xf9}, {1.5, 0xf9}, {-2.25, 0xf9}, {65504, 0xf9}, {5.960464477539063e-08, 0xf9}, {6.103515625e-05, 0xf9},
		{math.Inf(1), 0xf9}, {math.Inf(-1), 0xf9},
		{100000.5, 0xfa}, {3.4028234663852886e+38, 0xfa},
		{3.141592653589793, 0xfb}, {1e300, 0xfb}, {5e-324, 0xfb},
	} {
		p := encode(t, c.f)
		if p[0] != c.head {
			t.Errorf("%v encodes as %x, want head %x", c.f, p, c.head)
		}
		got, ok := readFloat(p, 0)
		if !ok || got != c.f {
			t.Errorf("readFloat(%x) = %v, %v; want %v", p, got, ok, c.f)
		}
	}
	p := encode(t, math.NaN())
	if got, ok := readFloat(p, 0); !ok || !math.IsNaN(got) {
		t.Errorf("readFloat(%x) = %v, %v; want NaN", p, got, ok)
	}
	if got := halfToFloat(0x8000); got != 0 || !math.Signbit(got) {
		t.Errorf("halfToFloat(-0) = %v", got)
	}
}

// TestSkip: skip finds the end of any value journal's encoder writes.
func TestSkip(t *testing.T) {
	for _, v := range []any{
		nil, true, "", "héllo", []byte{1, 2, 3}, []any{}, []any{1, "a", []any{2.5, nil}},
		map[string]any{"a": map[string]any{"b": []any{1, 2, map[string]any{}}}, "c": -1.5},
		map[int]string{1: "x"}, cbor.Tag{Number: 42, Content: "x"}, make([]byte, 300), string(make([]byte, 70000)),
	} {
		p := encode(t, v)
		if end, ok := skip(p, 0); !ok || end != len(p) {
			t.Errorf("skip(%v) = %d, %v; want %d", v, end, ok, len(p))
		}
		for n := range len(p) {
			if end, ok := skip(p[:n], 0); ok {
				t.Errorf("skip of %v truncated to %d bytes = %d", v, n, end)
			}
		}
	}
	// Indefinite lengths and reserved heads are refused.
	for _, p := range [][]byte{{0x9f, 0xff}, {0xbf, 0xff}, {0x7f, 0xff}, {0x1c}, {0xff}} {
		if _, ok := skip(p, 0); ok {
			t.Errorf("skip(%x) ok", p)
		}
	}
}

// walkBody resolves every field of body the way MatchRaw does, without CEL.
func walkBody(body []byte) []any {
	rec := journal.EncodeRecord(1, journal.Hash{}, journal.Hash{}, body)
	a := getRawActivation(&journal.Raw{Stream: "audit", Seq: 1, Record: rec})
	defer a.release()
	out := make([]any, len(fields))
	for i, f := range fields {
		out[i] = a.resolve(f)
	}
	return out
}

// TestWalkTruncated: a body cut anywhere yields, for each field, either
// missing or the value the whole body holds; never a wrong value.
func TestWalkTruncated(t *testing.T) {
	fx := newFixture(t, "full", randEvent(newRand(), 1))
	fx.ev.Proc = &journal.Proc{Name: "nginx", PID: 1234}
	fx.ev.Data = map[string]any{"n": 3}
	fx = newFixture(t, "full", fx.ev)
	body := fx.raw.Body()
	want := walkBody(body)
	for n := range len(body) {
		got := walkBody(body[:n])
		for i, f := range fields {
			if got[i] == errMissing || f.kind == kData || f.kind == kDerived { // derived: computed from the fields checked here
				continue
			}
			if got[i] != want[i] {
				t.Errorf("body cut at %d: %s = %v, whole body has %v", n, f.name, got[i], want[i])
			}
		}
	}
}

// FuzzWalk: whatever the body bytes, walking them never panics, and every
// scalar the walker reads agrees with fxamacker/cbor on the same bytes.
func FuzzWalk(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0xa0})
	f.Add([]byte{0xbf, 0xff})
	r := newRand()
	for i := range 8 {
		fx := newFixture(f, "seed", randEvent(r, int64(i+1)))
		f.Add(fx.raw.Body())
	}
	all, err := Compile(`kind == "kv.put" || subject.startsWith("a") || node == "n" || actor.uid == 1 || actor.user == "u" ||
		evt.time > timestamp("2026-01-01T00:00:00Z") || evt.latency > 1 || proc.name == "p" || has(proc.cwd) ||
		user.uid == 0 || fd.sport == 80 || container.id == "host" || data.n > 2 || has(data.x)`)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		walkBody(body)
		all.MatchRaw(&journal.Raw{Stream: "capture", Seq: 1, Record: journal.EncodeRecord(1, journal.Hash{}, journal.Hash{}, body)})
		end, ok := skip(body, 0)
		if ok && (end <= 0 || end > len(body)) {
			t.Fatalf("skip = %d for %d bytes", end, len(body))
		}
		var x bodyIndex
		x.reset(body)
		for k := topKey(1); k < nTop; k++ {
			start, end, ok := x.value(k)
			if !ok {
				continue
			}
			item := body[start:end]
			var v any
			if cbor.Unmarshal(item, &v) != nil {
				continue // fxamacker is stricter (UTF-8, simple values)
			}
			if n, ok := readInt(item, 0); ok {
				switch w := v.(type) {
				case uint64:
					ok = n >= 0 && uint64(n) == w
				case int64:
					ok = n == w
				default:
					ok = false
				}
				if !ok {
					t.Fatalf("readInt(%x) = %d, fxamacker %v", item, n, v)
				}
			}
			if s, ok := readText(item, 0); ok && utf8.ValidString(s) && v != s {
				t.Fatalf("readText(%x) = %q, fxamacker %v", item, s, v)
			}
			if fl, ok := readFloat(item, 0); ok {
				if w, isF := v.(float64); !isF || w != fl && !(math.IsNaN(w) && math.IsNaN(fl)) {
					t.Fatalf("readFloat(%x) = %v, fxamacker %v", item, fl, v)
				}
			}
		}
	})
}
