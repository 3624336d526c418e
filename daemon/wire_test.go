package daemon

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/client/wire"
)

func TestDecodeRequest(t *testing.T) {
	var n int64
	next := func() int64 { n++; return n }
	for _, tc := range []struct {
		line    string
		want    wireRequest
		wantErr string
	}{
		{line: "status", want: wireRequest{ID: 1, DSL: "status", Raw: true}},
		{line: "kv get a", want: wireRequest{ID: 2, DSL: "kv get a", Raw: true}},
		{line: `{"id":7,"dsl":"kv get a"}`, want: wireRequest{ID: 7, DSL: "kv get a"}},
		{line: `  {"id":9,"cancel":true}`, want: wireRequest{ID: 9, Cancel: true}},
		{line: `{"id":7,"dsl":`, wantErr: "malformed JSON request"},
		{line: `{"dsl":"status"}`, wantErr: `without "id"`},
		{line: `{"id":0,"dsl":"status"}`, wantErr: "ids are positive"},
		{line: "\xff\xfe", wantErr: "not valid UTF-8"},
	} {
		got, err := decodeRequest([]byte(tc.line), next)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("decodeRequest(%q) error = %v, want %q", tc.line, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("decodeRequest(%q) = %+v, %v; want %+v", tc.line, got, err, tc.want)
		}
	}
	if n != 3 {
		t.Errorf("raw lines took %d ids, want 3 (two statements and one invalid line)", n)
	}
}

func TestEncodeAnswer(t *testing.T) {
	line := encodeAnswer(nil, 7, wire.KindRow, []byte(`{"a":1}`))
	var got map[string]any
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatalf("answer %q is not JSON: %v", line, err)
	}
	if got["id"] != float64(7) || got["row"].(map[string]any)["a"] != float64(1) || line[len(line)-1] != '\n' {
		t.Errorf("answer = %q", line)
	}
	e := encodeError(3, wire.Error{Code: wire.Parse, Message: "1:4: bad", Pos: &wire.Pos{Line: 1, Col: 4}})
	if string(e) != `{"id":3,"error":{"code":"parse","message":"1:4: bad","pos":{"line":1,"col":4}}}`+"\n" {
		t.Errorf("error answer = %q", e)
	}
}

func TestReadLineLimits(t *testing.T) {
	long := strings.Repeat("x", wire.MaxLine+10)
	in := "status\r\n" + long + "\n" + "after\n" + "last"
	r := bufio.NewReaderSize(strings.NewReader(in), 4096)
	want := []string{"status", "!long", "after", "last"}
	for _, w := range want {
		line, err := readLine(r)
		if w == "!long" {
			var tl *lineTooLongError
			if !errors.As(err, &tl) || tl.first != 'x' {
				t.Fatalf("overlong line: err = %v, want a lineTooLongError starting with x", err)
			}
			continue
		}
		if err != nil || string(line) != w {
			t.Fatalf("readLine = %q, %v; want %q", line, err, w)
		}
	}
	// A line of exactly wire.MaxLine bytes is accepted.
	exact := bytes.Repeat([]byte("y"), wire.MaxLine)
	r = bufio.NewReaderSize(bytes.NewReader(append(exact, '\n')), 4096)
	line, err := readLine(r)
	if err != nil || len(line) != wire.MaxLine {
		t.Fatalf("wire.MaxLine line: len %d, err %v", len(line), err)
	}
}

// FuzzDecodeRequest checks that no line makes the wire decoder panic and
// that what it accepts is well-formed.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{"status", `{"id":1,"dsl":"kv get a"}`, `{"id":2,"cancel":true}`, `{"id":-1}`, "\x00\xff", `{"id":1e99,"dsl":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var n int64
		req, err := decodeRequest(line, func() int64 { n++; return n })
		if err != nil {
			var we *wireError
			if !errors.As(err, &we) {
				t.Fatalf("error %v is not a *wireError", err)
			}
			return
		}
		if req.ID <= 0 {
			t.Fatalf("accepted request with id %d", req.ID)
		}
		if !req.Cancel && !json.Valid(encodeAnswer(nil, req.ID, wire.KindLine, mustJSON(req.DSL))) {
			t.Fatalf("answer for %q is not valid JSON", req.DSL)
		}
	})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestDecodePlainEnvelopeMatchesJSON pins the fast path of decodeRequest to
// what encoding/json decodes from the same line.
func TestDecodePlainEnvelopeMatchesJSON(t *testing.T) {
	for _, line := range []string{
		`{"id":1,"dsl":"status"}`,
		`{"id":42,"dsl":"emit bench.load s1 i=7"}`,
		`{"id":123456789012345678,"dsl":"x"}`,
		`{"id":1234567890123456789,"dsl":"x"}`,
		`{"id":9223372036854775808,"dsl":"x"}`,
		`{"id":7,"dsl":""}`,
		`{"id":7,"dsl":"kv put k 'é ü ☃ 𝄞'"}`,
		`{"id":7,"dsl":"a\"b"}`,
		`{"id":7,"dsl":"a\\b"}`,
		`{"id":7,"dsl":"a\u0041"}`,
		"{\"id\":7,\"dsl\":\"a\tb\"}",
		"{\"id\":7,\"dsl\":\"a\xffb\"}",
		`{"id":07,"dsl":"x"}`,
		`{"id":0,"dsl":"x"}`,
		`{"id":-1,"dsl":"x"}`,
		`{"id":1.0,"dsl":"x"}`,
		`{"id":1e3,"dsl":"x"}`,
		`{"id":7,"dsl":"x","cancel":true}`,
		`{"id":7,"dsl":"x"}}`,
		`{"id":7,"dsl":"x"} `,
		`{"id":7,"dsl":"x"`,
		`{"id":7,"dsl":"x}`,
		`{"id":7,"dsl":"x" }`,
		`{"id":7,"dsl":"x\"}`,
		`{"id":7,"dsl":"a"b"}`,
		`{"id":7,"DSL":"x"}`,
	} {
		fast, ok := decodePlainEnvelope([]byte(line))
		if !ok {
			continue
		}
		var env envelope
		if err := json.Unmarshal([]byte(line), &env); err != nil {
			t.Errorf("fast path took %q, which encoding/json refuses: %v", line, err)
			continue
		}
		want := wireRequest{ID: *env.ID, DSL: env.DSL, Cancel: env.Cancel}
		if fast != want {
			t.Errorf("fast path decoded %q as %+v; encoding/json gives %+v", line, fast, want)
		}
	}
}

func FuzzDecodePlainEnvelope(f *testing.F) {
	f.Add(`{"id":1,"dsl":"status"}`)
	f.Add(`{"id":7,"dsl":"a\"b"}`)
	f.Fuzz(func(t *testing.T, line string) {
		fast, ok := decodePlainEnvelope([]byte(line))
		if !ok {
			return
		}
		var env envelope
		if err := json.Unmarshal([]byte(line), &env); err != nil || env.ID == nil {
			t.Fatalf("fast path took %q, which encoding/json refuses: %v", line, err)
		}
		if want := (wireRequest{ID: *env.ID, DSL: env.DSL, Cancel: env.Cancel}); fast != want {
			t.Fatalf("fast path decoded %q as %+v; encoding/json gives %+v", line, fast, want)
		}
	})
}
