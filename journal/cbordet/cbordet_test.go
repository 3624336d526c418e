package cbordet

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// TestMatchesLibrary: integers and floats encode as the core deterministic
// mode of fxamacker/cbor (what the journal used for every body) does,
// every width boundary, halves (subnormal ones too), singles and doubles.
func TestMatchesLibrary(t *testing.T) {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		t.Fatal(err)
	}
	ints := []int64{0, 1, 23, 24, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64,
		-1, -24, -25, -256, -257, -65536, -65537, math.MinInt32, math.MinInt64}
	floats := []float64{0, math.Copysign(0, -1), 1, -1, 1.5, 65504, 65505, 65536, 1e-7, 5.960464477539063e-08,
		6.103515625e-05, 6.097555160522461e-05, 3.4028234663852886e+38, 1e300, math.SmallestNonzeroFloat64,
		math.MaxFloat64, math.Inf(1), math.Inf(-1), math.NaN(), 0.1, 12.5, 1.0 / 3, float64(float32(0.1)),
		float64(math.SmallestNonzeroFloat32), 2.9802322387695312e-08}
	rnd := rand.New(rand.NewPCG(7, 8))
	for range 20000 {
		ints = append(ints, int64(rnd.Uint64())>>rnd.IntN(64))
		floats = append(floats, math.Float64frombits(rnd.Uint64()), float64(math.Float32frombits(rnd.Uint32())),
			float64(int16(rnd.Uint32()))*math.Pow(2, float64(rnd.IntN(60)-40)))
	}
	for _, i := range ints {
		want, _ := em.Marshal(i)
		if got := AppendInt(nil, i); !bytes.Equal(got, want) {
			t.Fatalf("%d: %x, want %x", i, got, want)
		}
	}
	for _, f := range floats {
		want, _ := em.Marshal(f)
		if got := AppendFloat(nil, f); !bytes.Equal(got, want) {
			t.Fatalf("%v (%#x): %x, want %x", f, math.Float64bits(f), got, want)
		}
	}
	for _, n := range []int{0, 23, 24, 255, 256, 65536} {
		s := string(bytes.Repeat([]byte("a"), n))
		want, _ := em.Marshal(s)
		if got := AppendText(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("text of %d: %x, want %x", n, got[:8], want[:8])
		}
	}
}
