package client

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/cairnhq/cairn/client/wire"
)

// TestPlainEnvelopeMatchesJSON pins the request fast path to json.Marshal.
func TestPlainEnvelopeMatchesJSON(t *testing.T) {
	for _, env := range []wire.Request{
		{ID: 1, DSL: "status"},
		{ID: 1 << 40, DSL: "emit bench.load s1 i=7"},
		{ID: 3},
		{ID: 3, Cancel: true},
		{ID: 4, DSL: `kv put a "b"`},
		{ID: 5, DSL: "a<b>&c"},
		{ID: 6, DSL: "tab\there"},
		{ID: 7, DSL: "é"},
		{ID: 8, DSL: "\xff"},
		{ID: 9, DSL: "\u2028"},
	} {
		got, ok := appendPlainEnvelope(nil, env)
		if !ok {
			continue
		}
		want, _ := json.Marshal(env)
		if string(got) != string(want)+"\n" {
			t.Errorf("appendPlainEnvelope(%+v) = %q; json.Marshal gives %q", env, got, want)
		}
	}
}

// TestPlainAnswerMatchesJSON pins the answer fast path to json.Unmarshal.
func TestPlainAnswerMatchesJSON(t *testing.T) {
	for _, line := range []string{
		`{"id":1,"done":true}`,
		`{"id":1,"done":false}`,
		`{"id":2,"row":{"stream":"audit","seq":1}}`,
		`{"id":3,"event":{"kind":"a.b","data":{"x":[1,2,{"y":"}"}]}}}`,
		`{"id":3,"event":{"kind":"a.b"},"x":{}}`,
		`{"id":3,"event":{"kind":"a.b"}}}`,
		`{"id":3,"event":{"kind":"a.b"} }`,
		`{"id":3,"event":{"kind":"a.b",}}`,
		`{"id":3,"event":{"a":1},"row":{"b":2}}`,
		`{"id":3,"event":{"a":1}{"b":2}}`,
		`{"id":3,"event":null}`,
		`{"id":3,"line":"hello"}`,
		`{"id":3,"error":{"code":"x","message":"y"}}`,
		`{"id":03,"done":true}`,
		`{"id":9223372036854775807,"done":true}`,
		`{"id":3,"row":{"a":"\ud800"}}`,
	} {
		var fast wire.Answer
		if !decodePlainAnswer([]byte(line), &fast) {
			continue
		}
		var want wire.Answer
		if err := json.Unmarshal([]byte(line), &want); err != nil {
			t.Errorf("fast path took %q, which json.Unmarshal refuses: %v", line, err)
			continue
		}
		if !reflect.DeepEqual(fast, want) {
			t.Errorf("fast path decoded %q as %+v; json.Unmarshal gives %+v", line, fast, want)
		}
	}
}

func FuzzPlainAnswer(f *testing.F) {
	f.Add(`{"id":2,"row":{"stream":"audit","seq":1}}`)
	f.Add(`{"id":1,"done":true}`)
	f.Fuzz(func(t *testing.T, line string) {
		var fast wire.Answer
		if !decodePlainAnswer([]byte(line), &fast) {
			return
		}
		var want wire.Answer
		if err := json.Unmarshal([]byte(line), &want); err != nil {
			t.Fatalf("fast path took %q, which json.Unmarshal refuses: %v", line, err)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Fatalf("fast path decoded %q as %+v; json.Unmarshal gives %+v", line, fast, want)
		}
	})
}
