package journal

import (
	"errors"
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
