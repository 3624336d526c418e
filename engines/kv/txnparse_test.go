package kv

import (
	"errors"
	"testing"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
)

func TestParseCompare(t *testing.T) {
	w := func(s string) dsl.Word { return dsl.Word{Text: s, Quoted: true, Pos: dsl.Pos{Line: 1, Col: 10}} }
	for _, tc := range []struct {
		in   string
		want Compare
		col  int // error column, 0: no error
	}{
		{in: `value("k") = "v"`, want: Compare{Key: []byte("k"), Target: CompareValue, Result: Equal, Value: []byte("v")}},
		{in: `version("k") > "0"`, want: Compare{Key: []byte("k"), Target: CompareVersion, Result: Greater}},
		{in: `mod("k") < 42`, want: Compare{Key: []byte("k"), Target: CompareMod, Result: Less, Int: 42}},
		{in: `create("k") != "0"`, want: Compare{Key: []byte("k"), Target: CompareCreate, Result: NotEqual}},
		{in: `lease("k") = "694d"`, want: Compare{Key: []byte("k"), Target: CompareLease, Result: Equal, Int: 0x694d}},
		{in: `value("k") = ""`, want: Compare{Key: []byte("k"), Target: CompareValue, Result: Equal, Value: []byte{}}},
		{in: `vale("k") = "v"`, col: 11},
		{in: `value(k) = "v"`, col: 17},
		{in: `value("k") ~ "v"`, col: 22},
		{in: `version("k") = "x"`, col: 26},
		{in: `value("k") = "v" extra`, col: 28},
		{in: `value("k") = "v`, col: 24},
	} {
		got, err := ParseCompare(w(tc.in))
		if tc.col != 0 {
			var pe *engines.PosError
			if !errors.As(err, &pe) || pe.Pos.Col != tc.col {
				t.Errorf("%s: error %v, want one at column %d", tc.in, err, tc.col)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if string(got.Key) != string(tc.want.Key) || got.Target != tc.want.Target || got.Result != tc.want.Result || string(got.Value) != string(tc.want.Value) || got.Int != tc.want.Int {
			t.Errorf("%s = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseOp(t *testing.T) {
	o, err := ParseOp(dsl.Word{Text: "put k v lease=1f prev", Quoted: true, Pos: dsl.Pos{Line: 1, Col: 5}})
	if err != nil || o.Put == nil || string(o.Put.Key) != "k" || o.Put.Lease != 0x1f || !o.Put.PrevKV {
		t.Fatalf("put: %+v %v", o, err)
	}
	o, err = ParseOp(dsl.Word{Text: "del a/ prefix", Quoted: true})
	if err != nil || o.Delete == nil || string(o.Delete.End) != "a0" {
		t.Fatalf("del: %+v %v", o, err)
	}
	_, err = ParseOp(dsl.Word{Text: "put k v lease=zz", Quoted: true, Pos: dsl.Pos{Line: 1, Col: 5}})
	var pe *engines.PosError
	if !errors.As(err, &pe) || pe.Pos.Col != 20 {
		t.Fatalf("bad lease: %v, want an error at column 20 (the value)", err)
	}
}
