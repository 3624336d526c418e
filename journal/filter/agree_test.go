package filter

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/journal"
)

// Pools the random events draw from; the random expressions compare
// against the same values, so that they match some events and not others.
var (
	randKinds    = []string{"kv.put", "kv.delete", "capture.exec", "capture.connect", "daemon.start"}
	randSubjects = []string{"", "app/a", "app/b", "pid/1", "other/x"}
	randStrings  = []string{"", "nginx", "curl", "alice", "tcp", "/"}
	randInts     = []int64{0, 1, 33, 80, 1000, -111, 70000}
)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// randEvent builds an event whose every optional part may be absent and
// whose every field may be zero, which is where MatchRaw (reading what the
// encoder left out) and MatchEvent (reading Go zero values) could disagree.
func randEvent(r *rand.Rand, seq int64) *journal.Event {
	s := func() string { return pick(r, randStrings) }
	n := func() int64 { return pick(r, randInts) }
	ev := &journal.Event{
		Stream: pick(r, journal.Streams), Seq: seq, Time: 1767225600000000000 + r.Int64N(1e12),
		Body: journal.Body{
			Kind: pick(r, randKinds), Subject: pick(r, randSubjects), Node: pick(r, []string{"", "host-1"}),
			Actor: journal.Actor{UID: int(n()), GID: int(n()), PID: int(n()), User: s(), Comm: s(), Via: pick(r, []string{"socket", "system"}), Addr: s()},
		},
	}
	if r.IntN(2) == 0 {
		ev.Data = map[string]any{}
		for _, k := range []string{"n", "s", "f", "b"} {
			if r.IntN(2) == 0 {
				continue
			}
			switch k {
			case "n":
				ev.Data[k] = n()
			case "s":
				ev.Data[k] = s()
			case "f":
				ev.Data[k] = pick(r, []float64{0, 1.5, 80, -2.25, 1e300})
			case "b":
				ev.Data[k] = r.IntN(2) == 0
			}
		}
	}
	if r.IntN(2) == 0 {
		ev.Evt = &journal.Evt{Type: s(), Num: n(), Time: r.Int64N(2) * 1767225600000000000, Res: n(), Latency: n()}
	}
	if r.IntN(2) == 0 {
		ev.Proc = &journal.Proc{Name: s(), PID: n(), PPID: n(), Cmdline: s(), Exe: s(), Cwd: s()}
	}
	if r.IntN(2) == 0 {
		ev.User = &journal.User{Name: s(), UID: n()}
	}
	if r.IntN(2) == 0 {
		ev.FD = &journal.FD{Name: s(), Type: s(), SIP: s(), SPort: n(), CIP: s(), CPort: n(), L4Proto: s()}
	}
	if r.IntN(2) == 0 {
		ev.Container = &journal.Container{ID: s()}
	}
	return ev
}

// randAtom is one comparison on a random field.
func randAtom(r *rand.Rand) string {
	name := pick(r, fieldNames)
	f := fieldsByName[name]
	if strings.Contains(name, ".") && r.IntN(5) == 0 {
		return "has(" + name + ")"
	}
	op := pick(r, []string{"==", "!=", "<", ">="})
	switch f.kind {
	case kString:
		if r.IntN(4) == 0 {
			return fmt.Sprintf("%s.startsWith(%q)", name, pick(r, []string{"kv.", "app/", "n", ""}))
		}
		v := pick(r, randStrings)
		if name == "kind" {
			v = pick(r, randKinds)
		}
		return fmt.Sprintf("%s %s %q", name, op, v)
	case kStream:
		return fmt.Sprintf("%s %s %q", name, op, pick(r, journal.Streams))
	case kInt, kSeq, kOne:
		return fmt.Sprintf("%s %s %d", name, op, pick(r, randInts))
	case kTime, kCommit:
		return fmt.Sprintf("%s %s timestamp(%q)", name, op, pick(r, []string{"2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z", "1970-01-01T00:00:00Z"}))
	case kPrev, kHash:
		return fmt.Sprintf("size(%s) == 64", name)
	default:
		key := pick(r, []string{"n", "s", "f", "b", "zz"})
		switch r.IntN(3) {
		case 0:
			return fmt.Sprintf("has(data.%s)", key)
		case 1:
			return fmt.Sprintf("%q in data", key)
		}
		return fmt.Sprintf("data.%s %s %d", key, op, pick(r, randInts))
	}
}

func randExpr(r *rand.Rand, depth int) string {
	if depth == 0 || r.IntN(3) == 0 {
		return randAtom(r)
	}
	switch r.IntN(3) {
	case 0:
		return "!(" + randExpr(r, depth-1) + ")"
	case 1:
		return "(" + randExpr(r, depth-1) + " && " + randExpr(r, depth-1) + ")"
	}
	return "(" + randExpr(r, depth-1) + " || " + randExpr(r, depth-1) + ")"
}

// TestMatchRawAgreesWithMatchEvent: over random events and expressions,
// the lazy reader of stored records and the reader of decoded events give
// the same answer (match fails the test otherwise).
func TestMatchRawAgreesWithMatchEvent(t *testing.T) {
	r := newRand()
	var fixtures []fixture
	for i := range 300 {
		fixtures = append(fixtures, newFixture(t, fmt.Sprint("ev", i), randEvent(r, int64(i+1))))
	}
	exprs, trues, total := 400, 0, 0
	if testing.Short() {
		exprs = 50
	}
	for range exprs {
		expr := randExpr(r, 3)
		f, err := Compile(expr)
		if err != nil {
			t.Fatalf("Compile(%s): %v", expr, err)
		}
		for _, fx := range fixtures {
			if match(t, f, fx) {
				trues++
			}
			total++
		}
	}
	// The comparison only bites if the expressions decide both ways.
	if trues < total/10 || trues > total*9/10 {
		t.Errorf("%d of %d evaluations matched: the random expressions are too one-sided", trues, total)
	}
}

func newRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }
