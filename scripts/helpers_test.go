package scripts

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/journal"
)

// sliceFeed is a history of stored records.
type sliceFeed struct {
	raws []*journal.Raw
	i    int
}

func (f *sliceFeed) Next(ctx context.Context) (*journal.Raw, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f.i >= len(f.raws) {
		return nil, io.EOF
	}
	f.i++
	return f.raws[f.i-1], nil
}

// chain stores events as the journal does: each body encoded with
// journal.EncodeBody, hashed into its stream's chain, and wrapped in a
// record. Seqs left at 0 are numbered per stream.
func chain(t testing.TB, evs []journal.Event) []*journal.Raw {
	t.Helper()
	prev := map[string]journal.Hash{}
	seqs := map[string]int64{}
	var out []*journal.Raw
	for _, ev := range evs {
		if ev.Stream == "" {
			ev.Stream = journal.Audit
		}
		seqs[ev.Stream]++
		if ev.Seq == 0 {
			ev.Seq = seqs[ev.Stream]
		}
		body, err := journal.EncodeBody(&ev.Body)
		if err != nil {
			t.Fatal(err)
		}
		h := journal.ChainHash(ev.Stream, ev.Seq, ev.Time, prev[ev.Stream], body)
		out = append(out, &journal.Raw{Stream: ev.Stream, Seq: ev.Seq, Record: journal.EncodeRecord(ev.Time, prev[ev.Stream], h, body)})
		prev[ev.Stream] = h
	}
	return out
}

// parseEvents reads one event per line in the JSON that -o json prints;
// seq, prev and hash may be left out.
func parseEvents(input string) ([]journal.Event, error) {
	var evs []journal.Event
	for _, line := range strings.Split(input, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			return nil, fmt.Errorf("%s: %w", line, err)
		}
		for _, k := range []string{"prev", "hash"} {
			if _, ok := m[k]; !ok {
				m[k] = strings.Repeat("0", 64)
			}
		}
		b, _ := json.Marshal(m)
		var ev journal.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			return nil, fmt.Errorf("%s: %w", line, err)
		}
		var d struct{ Data map[string]any }
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber()
		if err := dec.Decode(&d); err != nil {
			return nil, err
		}
		if d.Data != nil {
			ev.Data = numbers(d.Data).(map[string]any)
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// numbers turns JSON numbers into int64 or float64, as events carry them.
func numbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if strings.ContainsAny(string(v), ".eE") {
			f, _ := v.Float64()
			return f
		}
		n, _ := v.Int64()
		return n
	case map[string]any:
		for k, x := range v {
			v[k] = numbers(x)
		}
	case []any:
		for i, x := range v {
			v[i] = numbers(x)
		}
	}
	return v
}

// collect returns an Output that appends lines to *lines.
func collect(lines *[]string) func(string) error {
	return func(s string) error { *lines = append(*lines, s); return nil }
}
