package filter

import (
	"testing"

	"github.com/cairnhq/cairn/journal"
)

// benchRaw is a typical audit record: a kv.put with a small data payload.
func benchRaw(b *testing.B) *journal.Raw {
	b.Helper()
	body, err := journal.EncodeBody(&journal.Body{
		Kind: "kv.put", Subject: "app/config/db", Node: "host-1",
		Actor: journal.Actor{UID: 1000, GID: 1000, PID: 4242, User: "alice", Comm: "cairn", Via: "socket"},
		Data:  map[string]any{"key": "app/config/db", "value": "postgres://db:5432", "rev": 17, "lease": 0, "ratio": 0.25},
	})
	if err != nil {
		b.Fatal(err)
	}
	return &journal.Raw{Stream: journal.Audit, Seq: 123456, Record: journal.EncodeRecord(1767225600000000000, journal.Hash{1}, journal.Hash{2}, body)}
}

func benchMatch(b *testing.B, expr string, want bool) {
	f, err := Compile(expr)
	if err != nil {
		b.Fatal(err)
	}
	r := benchRaw(b)
	if got := f.MatchRaw(r); got != want {
		b.Fatalf("MatchRaw(%s) = %v, want %v", expr, got, want)
	}
	b.ReportAllocs()
	for b.Loop() {
		f.MatchRaw(r)
	}
}

// BenchmarkMatchRawEnvelope measures an envelope predicate, which must not
// decode data.
func BenchmarkMatchRawEnvelope(b *testing.B) {
	benchMatch(b, `kind == "kv.put" && actor.uid == 1000`, true)
}

// BenchmarkMatchRawData measures a predicate on data, which decodes it.
func BenchmarkMatchRawData(b *testing.B) {
	benchMatch(b, `data.rev > 10 && data.value.startsWith("postgres:")`, true)
}

// BenchmarkMatchRawEnvelopeMixed runs the envelope predicate over 1024
// varied events, so values change from one record to the next as in a scan.
func BenchmarkMatchRawEnvelopeMixed(b *testing.B) {
	f, err := Compile(`kind == "kv.put" && actor.uid == 1000`)
	if err != nil {
		b.Fatal(err)
	}
	r := newRand()
	raws := make([]*journal.Raw, 1024)
	for i := range raws {
		raws[i] = newFixture(b, "ev", randEvent(r, int64(i+1))).raw
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		f.MatchRaw(raws[i&1023])
		i++
	}
}
