package filter

import (
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/interpreter"

	"github.com/cairnhq/cairn/journal"
)

// errMissing is what a known field resolves to when an event does not carry
// it. Comparing it yields an error, and an evaluation that ends in an error
// does not match: `proc.name == "nginx"` is false for an audit event, while
// `proc.name == "nginx" || kind == "kv.put"` still matches kv.put events
// (CEL's || and && absorb errors when the other side decides). It is shared
// and carries a node id so cel-go never labels it in place.
var errMissing = types.NewErrWithNodeID(-1, "field not carried by this event")

// rawActivation resolves a filter's variables from a stored record, reading
// only the fields the evaluation asks for. Activations are pooled: one
// evaluation of an envelope predicate allocates nothing for the activation
// itself.
type rawActivation struct {
	raw      *journal.Raw
	idx      bodyIndex
	data     any // decoded data (map[string]any) or errMissing, once dataDone
	dataDone bool
	last     []boxed // by field idx, for fields that repeat
}

// boxed is the last value of a field handed to CEL. Boxing a string or an
// int above 255 in an interface allocates; an immutable boxed value can be
// handed out again for as long as the field keeps its value. It never
// aliases a record.
type boxed struct {
	v  any
	s  string
	i  int64
	ok bool
}

func (a *rawActivation) boxString(f *field, s string) any {
	if !f.repeats {
		return types.String(s)
	}
	b := &a.last[f.idx]
	if !b.ok || b.s != s {
		s = strings.Clone(s)
		*b = boxed{v: types.String(s), s: s, ok: true}
	}
	return b.v
}

func (a *rawActivation) boxInt(f *field, n int64) any {
	if !f.repeats || n >= 0 && n < 256 { // small ints box without allocating
		return types.Int(n)
	}
	b := &a.last[f.idx]
	if !b.ok || b.i != n {
		*b = boxed{v: types.Int(n), i: n, ok: true}
	}
	return b.v
}

var (
	_ interpreter.Activation = (*rawActivation)(nil)
	_ interpreter.Activation = (*eventActivation)(nil)
)

var rawPool = sync.Pool{New: func() any { return &rawActivation{last: make([]boxed, len(fields))} }}

func getRawActivation(r *journal.Raw) *rawActivation {
	a := rawPool.Get().(*rawActivation)
	a.raw = r
	a.idx.reset(r.Body())
	return a
}

func (a *rawActivation) release() {
	// Drop every reference into the record and its data so the pool keeps
	// nothing alive.
	a.raw, a.data, a.dataDone = nil, nil, false
	a.idx.reset(nil)
	rawPool.Put(a)
}

// ResolveName returns the value of a declared variable, or errMissing when
// the record does not carry it.
func (a *rawActivation) ResolveName(name string) (any, bool) {
	f := fieldsByName[name]
	if f == nil {
		return nil, false
	}
	return a.resolve(f), true
}

// Parent returns nil: the record is the only scope.
func (a *rawActivation) Parent() interpreter.Activation { return nil }

func (a *rawActivation) resolve(f *field) any {
	switch f.kind {
	case kSeq:
		return types.Int(a.raw.Seq)
	case kOne:
		return types.Int(1)
	case kStream:
		return a.boxString(f, a.raw.Stream)
	case kCommit:
		return timestamp(a.raw.Time())
	case kPrev:
		h := a.raw.Prev()
		return types.String(hex.EncodeToString(h[:]))
	case kHash:
		h := a.raw.Hash()
		return types.String(hex.EncodeToString(h[:]))
	case kData:
		if !a.dataDone {
			a.data, a.dataDone = a.decodeData(), true
		}
		return a.data
	case kDerived:
		return f.derive(a)
	}
	body := a.idx.body
	i, ok := a.idx.lookup(f)
	if !ok {
		return errMissing
	}
	switch f.kind {
	case kString:
		if s, ok := readText(body, i); ok {
			return a.boxString(f, s)
		}
	case kInt:
		if n, ok := readInt(body, i); ok {
			return a.boxInt(f, n)
		}
	case kTime:
		if n, ok := readInt(body, i); ok {
			return timestamp(n)
		}
	}
	return errMissing
}

// decodeData decodes the body's `data` map, the one part of a body a filter
// needs fxamacker/cbor for.
func (a *rawActivation) decodeData() any {
	start, end, ok := a.idx.value(topData)
	if !ok {
		return errMissing
	}
	var m map[string]any
	if err := journal.DecodeValue(a.idx.body[start:end], &m); err != nil || m == nil {
		return errMissing
	}
	return m
}

func timestamp(ns int64) types.Timestamp {
	return types.Timestamp{Time: time.Unix(0, ns).UTC()}
}

// eventActivation resolves a filter's variables from a decoded event. A field
// is missing exactly when journal.EncodeBody would leave it out (a nil
// object, or a zero value under omitempty), so MatchEvent and MatchRaw agree.
type eventActivation struct {
	ev *journal.Event
}

var eventPool = sync.Pool{New: func() any { return new(eventActivation) }}

// ResolveName returns the value of a declared variable, or errMissing when
// the event does not carry it.
func (a *eventActivation) ResolveName(name string) (any, bool) {
	f := fieldsByName[name]
	if f == nil {
		return nil, false
	}
	return a.resolve(f), true
}

// Parent returns nil: the event is the only scope.
func (a *eventActivation) Parent() interpreter.Activation { return nil }

func (a *eventActivation) resolve(f *field) any {
	ev := a.ev
	switch f.kind {
	case kSeq:
		return types.Int(ev.Seq)
	case kOne:
		return types.Int(1)
	case kStream:
		return types.String(ev.Stream)
	case kCommit:
		return timestamp(ev.Time)
	case kPrev:
		return types.String(ev.Prev.String())
	case kHash:
		return types.String(ev.Hash.String())
	case kData:
		if len(ev.Data) == 0 {
			return errMissing
		}
		return ev.Data
	case kDerived:
		return f.derive(a)
	}
	v, ok := f.event(ev)
	if !ok || f.omitEmpty && v == (scalar{}) {
		return errMissing
	}
	switch f.kind {
	case kString:
		return types.String(v.s)
	case kTime:
		return timestamp(v.i)
	default:
		return types.Int(v.i)
	}
}

// fieldReader is what a derived field reads: other fields, by name, as
// CEL values (errMissing when the event lacks them), and keys of data.
type fieldReader interface {
	get(name string) any
	dataKey(key string) (any, bool)
}

func (a *rawActivation) get(name string) any { return a.resolve(fieldsByName[name]) }

func (a *rawActivation) dataKey(key string) (any, bool) {
	m, ok := a.resolve(fieldsByName["data"]).(map[string]any)
	if !ok {
		return nil, false
	}
	v, ok := m[key]
	return v, ok && v != nil
}

func (a *eventActivation) get(name string) any { return a.resolve(fieldsByName[name]) }

func (a *eventActivation) dataKey(key string) (any, bool) {
	v, ok := a.ev.Data[key]
	return v, ok && v != nil
}
