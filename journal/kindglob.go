package journal

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// A kind glob (kind=build.*) is served by the kind index when the kinds it
// matches hold a small part of it: the index is read once per distinct kind
// to list the kinds, then the matching kinds' entries are merged in seq
// order. An engine that replays its few configuration events at start-up
// reads those, not the whole stream (docs/events.md, "Storage").
// A glob whose kinds are most of the stream is cheaper as a scan of e/,
// which reads each event's kind without decoding its body.

// globIndexShare is the largest share of the kind index's bytes on disk
// the matching kinds may hold for the index to be used: above it, looking
// up each hit costs more than reading every event.
const globIndexShare = 4 // one quarter

// globIndexMaxKinds bounds the index iterators one glob query merges.
const globIndexMaxKinds = 64

// globIndexMaxDistinct bounds the distinct kinds listed for a glob: a
// stream with more (kinds that embed an id) is scanned, as listing them
// would cost a seek each.
const globIndexMaxDistinct = 1024

// cursor is what an Iter steps through: a pebble iterator over e/ or over
// one index's entries, or a seqMerge of several.
type cursor interface {
	First() bool
	Last() bool
	Next() bool
	Prev() bool
	Key() []byte
	ValueAndErr() ([]byte, error)
	Error() error
	Close() error
}

// seqMerge steps through several index iterators in the order of the seq
// that ends their keys (one direction per iteration, as Iter uses it).
type seqMerge struct {
	its     []*pebble.Iterator
	valid   []bool
	cur     int // the iterator at the current entry, -1 when none
	reverse bool
}

func newSeqMerge(its []*pebble.Iterator) *seqMerge {
	return &seqMerge{its: its, valid: make([]bool, len(its)), cur: -1}
}

func (m *seqMerge) First() bool {
	m.reverse = false
	for i, it := range m.its {
		m.valid[i] = it.First()
	}
	return m.pick()
}

func (m *seqMerge) Last() bool {
	m.reverse = true
	for i, it := range m.its {
		m.valid[i] = it.Last()
	}
	return m.pick()
}

func (m *seqMerge) Next() bool { return m.step() }
func (m *seqMerge) Prev() bool { return m.step() }

// step moves the current iterator on, in the direction First or Last set.
func (m *seqMerge) step() bool {
	if m.cur < 0 {
		return false
	}
	if m.reverse {
		m.valid[m.cur] = m.its[m.cur].Prev()
	} else {
		m.valid[m.cur] = m.its[m.cur].Next()
	}
	return m.pick()
}

// pick makes the iterator with the lowest seq (highest in reverse) current.
func (m *seqMerge) pick() bool {
	m.cur = -1
	var best int64
	for i, it := range m.its {
		if !m.valid[i] {
			continue
		}
		seq := seqOfIndexKey(it.Key())
		if m.cur < 0 || (!m.reverse && seq < best) || (m.reverse && seq > best) {
			m.cur, best = i, seq
		}
	}
	return m.cur >= 0
}

func (m *seqMerge) Key() []byte { return m.its[m.cur].Key() }

func (m *seqMerge) ValueAndErr() ([]byte, error) { return m.its[m.cur].ValueAndErr() }

func (m *seqMerge) Error() error {
	var errs []error
	for _, it := range m.its {
		errs = append(errs, it.Error())
	}
	return errors.Join(errs...)
}

func (m *seqMerge) Close() error {
	var errs []error
	for _, it := range m.its {
		errs = append(errs, it.Close())
	}
	return errors.Join(errs...)
}

// kindsMatching lists the kinds in r's kind index that glob matches, with
// one seek per distinct kind; listed is false when the index holds more
// than globIndexMaxDistinct kinds.
func kindsMatching(r pebble.Reader, glob string) (kinds []string, listed bool, err error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: prefixKind, UpperBound: PrefixEnd(prefixKind)})
	if err != nil {
		return nil, false, err
	}
	distinct := 0
	for ok := it.First(); ok; {
		if distinct++; distinct > globIndexMaxDistinct {
			return nil, false, it.Close()
		}
		k := it.Key()[len(prefixKind):]
		n, w := binary.Uvarint(k)
		if w <= 0 || uint64(len(k)-w) < n {
			err := fmt.Errorf("malformed kind index key %q", it.Key())
			_ = it.Close()
			return nil, false, err
		}
		kind := k[w : w+int(n)]
		if globMatch(glob, kind) {
			kinds = append(kinds, string(kind))
		}
		ok = it.SeekGE(PrefixEnd(indexPrefix(prefixKind, string(kind))))
	}
	return kinds, true, errors.Join(it.Error(), it.Close())
}

// kindGlobIndexes returns the kind index prefixes a glob is read through,
// or nil when it is cheaper to scan e/; none is true when the index holds
// no kind the glob matches.
func (s *Stream) kindGlobIndexes(r pebble.Reader, glob string) (prefixes [][]byte, none bool, err error) {
	kinds, listed, err := kindsMatching(r, glob)
	if err != nil || !listed {
		return nil, false, err
	}
	if len(kinds) == 0 {
		return nil, true, nil
	}
	if byIndex, err := s.globByIndex(kinds); err != nil || !byIndex {
		return nil, false, err
	}
	for _, k := range kinds {
		prefixes = append(prefixes, indexPrefix(prefixKind, k))
	}
	return prefixes, false, nil
}

// globByIndex reports whether the kinds are few enough, and hold a small
// enough part of the kind index, to read them through it. Data still in
// the memtable counts for nothing on disk: a stream that small is read
// quickly either way.
func (s *Stream) globByIndex(kinds []string) (bool, error) {
	if len(kinds) > globIndexMaxKinds {
		return false, nil
	}
	all, err := s.db.EstimateDiskUsage(prefixKind, PrefixEnd(prefixKind))
	if err != nil {
		return false, err
	}
	var match uint64
	for _, k := range kinds {
		p := indexPrefix(prefixKind, k)
		n, err := s.db.EstimateDiskUsage(p, PrefixEnd(p))
		if err != nil {
			return false, err
		}
		match += n
	}
	return match*globIndexShare <= all, nil
}
