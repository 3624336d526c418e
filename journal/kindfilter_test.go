package journal

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// kindCounter folds only kinds under its prefix and counts what it is given.
type kindCounter struct {
	prefix string
	folded []string
}

func (k *kindCounter) Name() string                        { return "kindcounter" }
func (k *kindCounter) Decide(*View, any) (Decision, error) { return Decision{}, nil }
func (k *kindCounter) FoldsKind(kind string) bool          { return strings.HasPrefix(kind, k.prefix) }
func (k *kindCounter) Fold(t *Txn, ev *Event) error        { k.folded = append(k.folded, ev.Kind); return nil }

// TestKindFilterSkipsOtherKinds: an engine that declares the kinds it folds
// is never handed (nor made to decode) the others, also on rebuild.
func TestKindFilterSkipsOtherKinds(t *testing.T) {
	kc := &kindCounter{prefix: "mine."}
	opts := testOptions(vfs.NewMem())
	opts.Engines = map[string][]Engine{Audit: {kc}}
	j := mustOpen(t, opts)
	defer j.Close()
	s := j.Stream(Audit)
	mustAppend(t, s, body("mine.a", "x", nil), body("other.b", "y", nil), body("mine.c", "z", nil))
	if got := strings.Join(kc.folded, ","); got != "mine.a,mine.c" {
		t.Fatalf("folded %q, want only mine.a,mine.c", got)
	}
	kc.folded = nil
	if err := s.Rebuild(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(kc.folded, ","); got != "mine.a,mine.c" {
		t.Fatalf("rebuild folded %q, want only mine.a,mine.c", got)
	}
}

// rawCounter is a RawFolder: it reads each event's kind from the stored
// bytes itself and must never be handed a decoded event.
type rawCounter struct{ folded []string }

func (r *rawCounter) Name() string                        { return "rawcounter" }
func (r *rawCounter) Decide(*View, any) (Decision, error) { return Decision{}, nil }
func (r *rawCounter) FoldsKind(kind string) bool          { return strings.HasPrefix(kind, "mine.") }
func (r *rawCounter) Fold(*Txn, *Event) error {
	return errors.New("Fold called on a RawFolder")
}

func (r *rawCounter) FoldRaw(t *Txn, raw *Raw) error {
	var b struct {
		Kind string `cbor:"kind"`
	}
	if err := DecodeFields(raw.Body(), &b); err != nil {
		return err
	}
	r.folded = append(r.folded, b.Kind)
	return t.Set([]byte(b.Kind), []byte("x"))
}

// TestRawFolder: an engine that folds from the stored bytes gets FoldRaw,
// never Fold, from the committer and from Rebuild, for the kinds it folds.
func TestRawFolder(t *testing.T) {
	rc := &rawCounter{}
	opts := testOptions(vfs.NewMem())
	opts.Engines = map[string][]Engine{Audit: {rc}}
	j := mustOpen(t, opts)
	defer j.Close()
	s := j.Stream(Audit)
	mustAppend(t, s, body("mine.a", "x", nil), body("other.b", "y", nil), body("mine.c", "z", nil))
	if got := strings.Join(rc.folded, ","); got != "mine.a,mine.c" {
		t.Fatalf("folded %q, want mine.a,mine.c", got)
	}
	rc.folded = nil
	if err := s.Rebuild(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rc.folded, ","); got != "mine.a,mine.c" {
		t.Fatalf("rebuild folded %q, want mine.a,mine.c", got)
	}
}

// knower decides two events per request and folds them from what it
// decided (Decision.Fold); its Fold, which Rebuild uses, writes the same.
type knower struct {
	folded []int64    // Fold calls: seqs
	known  [][2]int64 // Decision.Fold calls: body, seq
}

func (k *knower) Name() string { return "knower" }
func (k *knower) Decide(_ *View, req any) (Decision, error) {
	tag := req.(string)
	return Decision{
		Bodies: []*Body{body("mine.a", tag, nil), body("mine.b", tag, nil)},
		Fold: func(t *Txn, i int, seq int64) error {
			k.known = append(k.known, [2]int64{int64(i), seq})
			return t.Set(fmt.Appendf(nil, "%d", seq), []byte(tag))
		},
	}, nil
}

func (k *knower) Fold(t *Txn, ev *Event) error {
	k.folded = append(k.folded, ev.Seq)
	return t.Set(fmt.Appendf(nil, "%d", ev.Seq), []byte(ev.Subject))
}

// TestDecisionFold: the engine that decided an event folds it with its
// Decision's Fold, body by body and at the committed seqs, and is not
// handed the stored event; other engines still fold it; Rebuild, which has
// only the stored events, calls Fold and gives the same projection.
func TestDecisionFold(t *testing.T) {
	k, rc := &knower{}, &rawCounter{}
	opts := testOptions(vfs.NewMem())
	opts.Engines = map[string][]Engine{Audit: {k, rc}}
	j := mustOpen(t, opts)
	defer j.Close()
	s := j.Stream(Audit)
	c, _, err := s.Propose(t.Context(), "knower", "x")
	if err != nil {
		t.Fatal(err)
	}
	if len(c) != 2 {
		t.Fatalf("committed %d events, want 2", len(c))
	}
	want := [][2]int64{{0, c[0].Seq}, {1, c[1].Seq}}
	if fmt.Sprint(k.known) != fmt.Sprint(want) || len(k.folded) != 0 {
		t.Fatalf("Decision.Fold calls %v and Fold calls %v, want %v and none", k.known, k.folded, want)
	}
	if got := strings.Join(rc.folded, ","); got != "mine.a,mine.b" {
		t.Fatalf("the other engine folded %q, want mine.a,mine.b", got)
	}
	before := projectionOf(t, s, "knower")
	if len(before) != 2 {
		t.Fatalf("projection %v, want a key per event", before)
	}
	if err := s.Rebuild(t.Context()); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(k.folded) != fmt.Sprint([]int64{c[0].Seq, c[1].Seq}) {
		t.Fatalf("rebuild: Fold calls %v, want both seqs", k.folded)
	}
	if after := projectionOf(t, s, "knower"); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("rebuild changed the projection:\n%v\n%v", before, after)
	}
}
