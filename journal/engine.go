package journal

import (
	"errors"

	"github.com/cockroachdb/pebble/v2"
)

// Engine decides on requests and folds events into its projection, which
// lives under "p/<name>/" in its stream's pebble instance.
type Engine interface {
	// Name returns the engine's name, [a-z0-9_]+.
	Name() string
	// Decide turns a request into events. It must not write; an error means
	// nothing of this request is written.
	Decide(v *View, req any) (Decision, error)
	// Fold applies one committed event to the projection. Rebuild uses the
	// same function, so it must depend only on the event and the projection.
	Fold(t *Txn, ev *Event) error
}

// KindFilter is implemented by an engine that folds only some kinds of
// events: the committer then decodes an event for it only when it wants the
// event's kind (read without decoding the body), so an engine never costs
// the events of others a decode. FoldsKind must not change over time, as
// Rebuild relies on it too.
type KindFilter interface {
	FoldsKind(kind string) bool
}

// RawFolder is implemented by an engine that folds an event from its
// stored bytes itself, decoding only the part it reads (DecodeFields on
// Raw.Body into a struct of those fields), where Fold gets the whole event
// decoded. The committer and Rebuild then call FoldRaw in place of Fold,
// after checking the record; it must fold exactly as Fold folds the
// decoded event.
type RawFolder interface {
	FoldRaw(t *Txn, raw *Raw) error
}

// Decision is what Decide returns: the events to append and a reply handed
// back to the proposer untouched.
type Decision struct {
	Bodies []*Body
	Reply  any
	// Fold, when set, folds body i, committed at seq, into the engine's
	// projection from what Decide already knows of it, in place of Fold
	// (or FoldRaw) of the stored event: the committer then neither
	// decodes the event it has just encoded nor has the engine read again
	// what Decide read. It must write exactly what Fold of the stored
	// event writes, as Rebuild and imports fold those.
	Fold func(t *Txn, i int, seq int64) error
}

// View reads an engine's projection through the batch being built, so a
// request sees the writes of the requests committed before it in the same
// group.
type View struct {
	r       pebble.Reader
	ov      *overlay // the committer's cache of durable values; nil: read r only
	prefix  []byte
	lastSeq int64
	kbuf    []byte
}

func (v *View) key(k []byte) []byte {
	v.kbuf = append(append(v.kbuf[:0], v.prefix...), k...)
	return v.kbuf
}

// Get returns a copy of the value of key, and whether it exists.
func (v *View) Get(key []byte) ([]byte, bool, error) {
	if v.ov != nil {
		return v.ov.get(v.r, v.key(key))
	}
	return readerGet(v.r, v.key(key))
}

// Iter calls fn for every key in [lower, upper) in order, keys relative to
// the engine's prefix; upper nil means the end of the prefix. fn's slices
// are valid only during the call.
func (v *View) Iter(lower, upper []byte, fn func(k, v []byte) error) error {
	return readerIter(v.r, v.prefix, lower, upper, fn)
}

// LastSeq returns the seq of the last event assigned before this request,
// durable or earlier in the same group.
func (v *View) LastSeq() int64 { return v.lastSeq }

// Txn is a View that can also write the engine's projection; Fold gets one.
type Txn struct {
	View
	b    *pebble.Batch
	wbuf []byte
}

func (t *Txn) wkey(k []byte) []byte {
	t.wbuf = append(append(t.wbuf[:0], t.prefix...), k...)
	return t.wbuf
}

// Set sets key to value.
func (t *Txn) Set(key, value []byte) error {
	k := t.wkey(key)
	if t.ov != nil {
		t.ov.set(k, value)
	}
	return t.b.Set(k, value, nil)
}

// Delete deletes key.
func (t *Txn) Delete(key []byte) error {
	k := t.wkey(key)
	if t.ov != nil {
		t.ov.delete(k)
	}
	return t.b.Delete(k, nil)
}

// DeleteRange deletes the keys in [start, end); end nil means the end of
// the engine's prefix.
func (t *Txn) DeleteRange(start, end []byte) error {
	lo := append(append([]byte(nil), t.prefix...), start...)
	var hi []byte
	if end == nil {
		hi = PrefixEnd(t.prefix)
	} else {
		hi = append(append([]byte(nil), t.prefix...), end...)
	}
	if t.ov != nil {
		t.ov.deleteRange(lo, hi)
	}
	return t.b.DeleteRange(lo, hi, nil)
}

func readerGet(r pebble.Reader, key []byte) ([]byte, bool, error) {
	val, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := append([]byte(nil), val...)
	return out, true, closer.Close()
}

func readerIter(r pebble.Reader, prefix, lower, upper []byte, fn func(k, v []byte) error) error {
	lo := append(append([]byte(nil), prefix...), lower...)
	var hi []byte
	if upper == nil {
		hi = PrefixEnd(prefix)
	} else {
		hi = append(append([]byte(nil), prefix...), upper...)
	}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		val, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return err
		}
		if err := fn(it.Key()[len(prefix):], val); err != nil {
			_ = it.Close()
			return err
		}
	}
	if err := it.Error(); err != nil {
		_ = it.Close()
		return err
	}
	return it.Close()
}
