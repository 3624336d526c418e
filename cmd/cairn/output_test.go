package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/cairnhq/cairn/client"
)

// TestOutput renders answer lines, given as the daemon sends them, the way
// the CLI prints them. Commands:
//
//	render [json] [stream-after=N]
//
// json selects -o json; stream-after=N calls streamRows after N answers, as
// the CLI does when rows keep coming without the statement ending.
// Regenerate with: go test ./cmd/cairn -run TestOutput -rewrite
func TestOutput(t *testing.T) {
	datadriven.RunTest(t, "testdata/output", func(t *testing.T, d *datadriven.TestData) string {
		if d.Cmd != "render" {
			t.Fatalf("unknown command %q", d.Cmd)
		}
		jsonMode := d.HasArg("json")
		streamAfter := -1
		if d.HasArg("stream-after") {
			d.ScanArgs(t, "stream-after", &streamAfter)
		}
		var out bytes.Buffer
		p := newPrinter(&out, jsonMode)
		for i, line := range strings.Split(d.Input, "\n") {
			if i == streamAfter {
				if err := p.streamRows(); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.add(answer(t, line)); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.finish(); err != nil {
			t.Fatal(err)
		}
		return out.String()
	})
}

// answer decodes one wire answer line into the client's Answer.
func answer(t *testing.T, line string) client.Answer {
	var m struct {
		Row   json.RawMessage `json:"row"`
		Event json.RawMessage `json:"event"`
		Line  *string         `json:"line"`
	}
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("bad answer line %q: %v", line, err)
	}
	switch {
	case m.Row != nil:
		return client.Answer{Row: m.Row}
	case m.Event != nil:
		return client.Answer{Event: m.Event}
	case m.Line != nil:
		return client.Answer{Line: *m.Line, HasLine: true}
	}
	t.Fatalf("answer line %q has no row, event or line", line)
	return client.Answer{}
}

func TestOrderedFields(t *testing.T) {
	fields, ok := orderedFields(json.RawMessage(`{"z":1,"a":{"b":[1, 2]},"m":"x","a":2}`))
	if !ok {
		t.Fatal("not an object")
	}
	var got []string
	for _, f := range fields {
		got = append(got, f.key+"="+string(f.raw))
	}
	if want := `[z=1 a=2 m="x"]`; fmt.Sprint(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
	for _, bad := range []string{`[1]`, `"s"`, `{"a":`, ``} {
		if _, ok := orderedFields(json.RawMessage(bad)); ok {
			t.Errorf("orderedFields(%q) ok", bad)
		}
	}
}

func TestFormatTime(t *testing.T) {
	for in, want := range map[string]string{
		`"2026-11-25T10:00:00.123456789Z"`: "2026-11-25T10:00:00.123Z",
		`"2026-11-25T11:00:00.5+01:00"`:    "2026-11-25T10:00:00.500Z",
		strconv.Quote("not a time"):        "not a time",
		`1795600800123456789`:              "2026-11-25T10:00:00.123Z",
		``:                                 "-",
	} {
		if got := formatTime(json.RawMessage(in)); got != want {
			t.Errorf("formatTime(%s) = %q, want %q", in, got, want)
		}
	}
}
