package filter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/cairnhq/cairn/journal"
)

// fixture is one event of a data-driven test, in both forms a filter sees.
type fixture struct {
	name string
	ev   *journal.Event
	raw  *journal.Raw
}

// newFixture stores ev as the journal would: deterministic body, chained
// hash, record header.
func newFixture(t testing.TB, name string, ev *journal.Event) fixture {
	t.Helper()
	body, err := journal.EncodeBody(&ev.Body)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	ev.Hash = journal.ChainHash(ev.Stream, ev.Seq, ev.Time, ev.Prev, body)
	return fixture{name: name, ev: ev, raw: &journal.Raw{
		Stream: ev.Stream, Seq: ev.Seq,
		Record: journal.EncodeRecord(ev.Time, ev.Prev, ev.Hash, body),
	}}
}

// parseEvent reads an event as `-o json` prints it. JSON has one kind of
// number; here a number written with a point or an exponent is a float in
// data and any other is an int, so fixtures can have both.
func parseEvent(input string) (*journal.Event, error) {
	ev := new(journal.Event)
	if err := json.Unmarshal([]byte(input), ev); err != nil {
		return nil, err
	}
	var d struct{ Data map[string]any }
	dec := json.NewDecoder(strings.NewReader(input))
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		return nil, err
	}
	if d.Data != nil {
		ev.Data = numbers(d.Data).(map[string]any)
	}
	return ev, nil
}

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

// match evaluates f on fx every way there is — the stored record, the
// event it was made from, and the event decoded back from the record — and
// fails the test unless all three agree.
func match(t testing.TB, f *Filter, fx fixture) bool {
	t.Helper()
	raw := f.MatchRaw(fx.raw)
	orig := f.MatchEvent(fx.ev)
	dec, err := fx.raw.Decode()
	if err != nil {
		t.Fatalf("%s: %v", fx.name, err)
	}
	decoded := f.MatchEvent(dec)
	if raw != orig || raw != decoded {
		t.Fatalf("%q on %s: MatchRaw %v, MatchEvent %v, MatchEvent(decoded) %v", f, fx.name, raw, orig, decoded)
	}
	return raw
}

// TestDataDriven runs testdata/match (fixture events and the expressions
// each matches) and testdata/compile (what Compile accepts and refuses).
//
//	event name=NAME     an event as JSON
//	match               one expression per line; prints the events each matches
//	compile             one expression, which may span lines; prints ok or the error
func TestDataDriven(t *testing.T) {
	for _, file := range []string{"testdata/match", "testdata/compile", "testdata/logs"} {
		t.Run(file, func(t *testing.T) {
			var fixtures []fixture
			datadriven.RunTest(t, file, func(t *testing.T, td *datadriven.TestData) string {
				switch td.Cmd {
				case "event":
					var name string
					td.ScanArgs(t, "name", &name)
					ev, err := parseEvent(td.Input)
					if err != nil {
						t.Fatalf("%s: %v", td.Pos, err)
					}
					fixtures = append(fixtures, newFixture(t, name, ev))
					return ""
				case "match":
					var out strings.Builder
					for _, expr := range strings.Split(td.Input, "\n") {
						f, err := Compile(expr)
						if err != nil {
							fmt.Fprintf(&out, "%s → %v\n", expr, err)
							continue
						}
						var names []string
						for _, fx := range fixtures {
							if match(t, f, fx) {
								names = append(names, fx.name)
							}
						}
						if len(names) == 0 {
							names = []string{"(none)"}
						}
						fmt.Fprintf(&out, "%s → %s\n", expr, strings.Join(names, " "))
					}
					return out.String()
				case "compile":
					f, err := Compile(td.Input)
					if err != nil {
						var ce *CompileError
						if !errors.As(err, &ce) {
							t.Fatalf("%s: error %v is not a *CompileError", td.Pos, err)
						}
						return "error: " + err.Error() + "\n"
					}
					out := "ok"
					if f.UsesData() {
						out += " data"
					}
					if f.limited {
						out += " cost-limited"
					}
					return out + "\n"
				default:
					t.Fatalf("%s: unknown command %q", td.Pos, td.Cmd)
					return ""
				}
			})
		})
	}
}

func TestFields(t *testing.T) {
	got := Fields()
	if !slices.IsSorted(got) {
		t.Errorf("Fields() is not sorted: %v", got)
	}
	for _, want := range []string{"seq", "time", "kind", "actor.uid", "proc.name", "fd.sport", "container.id", "data", "prev", "hash"} {
		if !slices.Contains(got, want) {
			t.Errorf("Fields() lacks %s", want)
		}
	}
	got[0] = "mutated"
	if Fields()[0] == "mutated" {
		t.Error("Fields() returns the package's own slice")
	}
}

func TestTopKeyNames(t *testing.T) {
	for k := topKey(1); k < nTop; k++ {
		if got := topKeyOf([]byte(topNames[k])); got != k {
			t.Errorf("topKeyOf(%q) = %d, want %d", topNames[k], got, k)
		}
	}
}

func TestString(t *testing.T) {
	const expr = `kind == "kv.put"`
	f, err := Compile(expr)
	if err != nil {
		t.Fatal(err)
	}
	if f.String() != expr {
		t.Errorf("String() = %q, want %q", f.String(), expr)
	}
}

// TestMalformedRecord: a record too short for its header, or of an unknown
// version, or with a garbage body, matches nothing and does not panic.
func TestMalformedRecord(t *testing.T) {
	f, err := Compile(`seq == 1 || kind == "kv.put"`)
	if err != nil {
		t.Fatal(err)
	}
	fx := newFixture(t, "ok", &journal.Event{Stream: "audit", Seq: 1, Body: journal.Body{Kind: "kv.put"}})
	if !f.MatchRaw(fx.raw) {
		t.Fatal("well-formed record does not match")
	}
	bad := [][]byte{nil, {journal.RecordVersion}, append([]byte{9}, fx.raw.Record[1:]...)}
	for _, rec := range bad {
		if f.MatchRaw(&journal.Raw{Stream: "audit", Seq: 1, Record: rec}) {
			t.Errorf("record %x matches", rec)
		}
	}
	garbage := bytes.Clone(fx.raw.Record[:73])
	garbage = append(garbage, 0xbf, 0xff, 0x1c)
	g, _ := Compile(`kind == "kv.put"`)
	if g.MatchRaw(&journal.Raw{Stream: "audit", Seq: 2, Record: garbage}) {
		t.Error("garbage body matches kind")
	}
	if f.MatchRaw(nil) || f.MatchEvent(nil) {
		t.Error("nil matches")
	}
}

// TestEnvelopeDoesNotDecodeData: a body whose data fxamacker cannot decode
// into a map[string]any (an integer key) still answers envelope predicates,
// which never touch data; data predicates on it are false.
func TestEnvelopeDoesNotDecodeData(t *testing.T) {
	body := encode(t, map[string]any{
		"kind":  "kv.put",
		"actor": map[string]any{"uid": 1000, "via": "socket"},
		"data":  map[int]any{1: "x"},
	})
	raw := &journal.Raw{Stream: "audit", Seq: 1, Record: journal.EncodeRecord(1, journal.Hash{}, journal.Hash{}, body)}
	for expr, want := range map[string]bool{
		`kind == "kv.put" && actor.uid == 1000`: true,
		`has(data.x)`:                           false,
		`!has(data.x)`:                          false, // data itself is missing
		`kind == "kv.put" || data.x == 1`:       true,
	} {
		f, err := Compile(expr)
		if err != nil {
			t.Fatal(err)
		}
		if f.UsesData() != strings.Contains(expr, "data") {
			t.Errorf("%s: UsesData() = %v", expr, f.UsesData())
		}
		if got := f.MatchRaw(raw); got != want {
			t.Errorf("%s: MatchRaw = %v, want %v", expr, got, want)
		}
	}
}

// TestConcurrentMatch: one Filter serves many goroutines (run with -race).
func TestConcurrentMatch(t *testing.T) {
	f, err := Compile(`kind == "kv.put" && actor.uid == 1000 && data.n > 2`)
	if err != nil {
		t.Fatal(err)
	}
	r := newRand()
	var fixtures []fixture
	for i := range 64 {
		fixtures = append(fixtures, newFixture(t, "ev", randEvent(r, int64(i+1))))
	}
	want := make([]bool, len(fixtures))
	for i, fx := range fixtures {
		want[i] = f.MatchEvent(fx.ev)
	}
	done := make(chan error)
	for g := range 4 {
		go func() {
			for n := range 200 {
				i := (g*7 + n) % len(fixtures)
				if got := f.MatchRaw(fixtures[i].raw); got != want[i] {
					done <- fmt.Errorf("event %d: MatchRaw %v, MatchEvent %v", i, got, want[i])
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
