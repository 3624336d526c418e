package journal

import (
	"bytes"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Query selects events of a stream. Zero values are open bounds.
type Query struct {
	From, To     int64 // inclusive seq bounds
	Since, Until int64 // inclusive time bounds in ns, turned into seqs by binary search
	// Kind is a glob ('*' any run, '?' one byte, '\' escapes); an exact kind
	// uses the kind index, and so does a glob whose kinds are a small part
	// of the stream (kindglob.go).
	Kind string
	// Subject is a glob as Kind ('*' also crosses '/'); an exact subject uses
	// the subject history index, except on capture, which keeps none.
	Subject string
	Reverse bool
}

// Iter iterates over the events a query selects, in seq order (or reverse).
// It is used by one goroutine at a time.
type Iter struct {
	s  *Stream
	st *snapState
	q  Query

	started, done bool
	err           error

	it       cursor           // over e/, or over the index entries in use
	ev       *pebble.Iterator // over e/, for index hits
	indexed  bool             // it is over index entries, not e/
	byKind   bool             // the index is the kind index
	lo, hi   int64
	kbuf     []byte
	raw      Raw
	released bool
}

// Scan iterates over the events of the durable state matching q. It takes
// its own snapshot, released by Close.
func (s *Stream) Scan(q Query) *Iter {
	st := s.acquire()
	if st == nil {
		return &Iter{s: s, err: ErrClosed, done: true, released: true}
	}
	return s.newIter(st, q)
}

// Scan iterates over the snapshot's events matching q.
func (sn *Snapshot) Scan(q Query) *Iter {
	if sn.st == nil || sn.closed.Load() {
		return &Iter{err: ErrClosed, done: true, released: true}
	}
	sn.st.refs.Add(1)
	return sn.st.s.newIter(sn.st, q)
}

func (s *Stream) newIter(st *snapState, q Query) *Iter {
	it := &Iter{s: s, st: st, q: q, raw: Raw{Stream: s.name}}
	s.mu.Lock()
	if s.iters == nil {
		s.mu.Unlock()
		it.err, it.done = ErrClosed, true
		it.releaseSnap()
		return it
	}
	s.iters[it] = struct{}{}
	s.mu.Unlock()
	return it
}

// Next advances to the next matching event and reports whether there is one.
func (it *Iter) Next() bool {
	if it.done {
		return false
	}
	s := it.s
	s.rw.RLock()
	defer s.rw.RUnlock()
	if s.closed {
		it.err, it.done = ErrClosed, true
		return false
	}
	var ok bool
	if !it.started {
		it.started = true
		if err := it.init(); err != nil {
			it.err, it.done = err, true
			return false
		}
		if it.it == nil {
			it.done = true
			return false
		}
		if it.q.Reverse {
			ok = it.it.Last()
		} else {
			ok = it.it.First()
		}
	} else if it.q.Reverse {
		ok = it.it.Prev()
	} else {
		ok = it.it.Next()
	}
	for ; ok; ok = it.step() {
		matched, err := it.load()
		if err != nil {
			it.err, it.done = s.readError(err, it.raw.Seq), true
			return false
		}
		if matched {
			return true
		}
	}
	if err := it.it.Error(); err != nil {
		it.err = s.readError(err, it.raw.Seq)
	}
	it.done = true
	return false
}

func (it *Iter) step() bool {
	if it.q.Reverse {
		return it.it.Prev()
	}
	return it.it.Next()
}

// load reads the event at the iterator's position into it.raw and reports
// whether it matches the query.
func (it *Iter) load() (bool, error) {
	var seq int64
	var rec []byte
	var err error
	if it.indexed {
		seq = seqOfIndexKey(it.it.Key())
		it.kbuf = appendEventKey(it.kbuf[:0], seq)
		if !it.ev.SeekGE(it.kbuf) || !bytes.Equal(it.ev.Key(), it.kbuf) {
			return false, it.ev.Error() // an index entry left by an interrupted prune
		}
		rec, err = it.ev.ValueAndErr()
	} else {
		if seq, err = seqOfEventKey(it.it.Key()); err != nil {
			return false, err
		}
		rec, err = it.it.ValueAndErr()
	}
	if err != nil {
		return false, err
	}
	if err := CheckRecord(rec); err != nil {
		return false, fmt.Errorf("%s seq %d: %w", it.s.name, seq, err)
	}
	it.raw.Seq, it.raw.Record = seq, rec
	needKind := it.q.Kind != "" && !(it.indexed && it.byKind)
	needSubject := it.q.Subject != "" && !(it.indexed && !it.byKind)
	if !needKind && !needSubject {
		return true, nil
	}
	kind, subject, err := peekEnvelope(it.raw.Body())
	if err != nil {
		return false, fmt.Errorf("%s seq %d: %w", it.s.name, seq, err)
	}
	if needKind && !globMatch(it.q.Kind, kind) {
		return false, nil
	}
	if needSubject && !globMatch(it.q.Subject, subject) {
		return false, nil
	}
	return true, nil
}

// init turns the query into a seq range and opens the iterators.
func (it *Iter) init() error {
	snap := it.st.snap
	it.lo, it.hi = max(it.q.From, 1), it.st.seq
	if it.q.To > 0 {
		it.hi = min(it.hi, it.q.To)
	}
	if it.lo > it.hi {
		return nil
	}
	if it.q.Since != 0 || it.q.Until != 0 {
		lo, hi, err := timeRange(snap, it.q.Since, it.q.Until, it.st.seq)
		if err != nil {
			return err
		}
		it.lo, it.hi = max(it.lo, lo), min(it.hi, hi)
		if it.lo > it.hi {
			return nil
		}
	}
	var indexes [][]byte
	switch {
	case it.q.Subject != "" && !isGlob(it.q.Subject) && !it.s.noSubjectIndex:
		indexes = [][]byte{indexPrefix(prefixSubject, it.q.Subject)}
	case it.q.Kind != "" && !isGlob(it.q.Kind):
		indexes, it.byKind = [][]byte{indexPrefix(prefixKind, it.q.Kind)}, true
	case it.q.Kind != "":
		var none bool
		var err error
		if indexes, none, err = it.s.kindGlobIndexes(snap, it.q.Kind); err != nil || none {
			return err // none: no event has such a kind
		}
		it.byKind = indexes != nil
	}
	if len(indexes) == 0 {
		eit, err := snap.NewIter(&pebble.IterOptions{LowerBound: eventKey(it.lo), UpperBound: eventKey(it.hi + 1)})
		if err != nil {
			return err
		}
		it.it = eit
		return nil
	}
	its := make([]*pebble.Iterator, 0, len(indexes))
	for _, p := range indexes {
		lo := appendSeq(append([]byte(nil), p...), it.lo)
		hi := appendSeq(append([]byte(nil), p...), it.hi+1)
		iit, err := snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			for _, o := range its {
				_ = o.Close()
			}
			return err
		}
		its = append(its, iit)
	}
	if len(its) == 1 {
		it.it = its[0]
	} else {
		it.it = newSeqMerge(its)
	}
	it.indexed = true
	var err error
	it.ev, err = snap.NewIter(&pebble.IterOptions{LowerBound: prefixEvent, UpperBound: PrefixEnd(prefixEvent)})
	return err
}

func appendSeq(dst []byte, seq int64) []byte {
	return append(dst, byte(seq>>56), byte(seq>>48), byte(seq>>40), byte(seq>>32),
		byte(seq>>24), byte(seq>>16), byte(seq>>8), byte(seq))
}

// timeRange returns the seqs of the first event at or after since and the
// last at or before until (0 = open), by binary search: times never
// decrease within a stream.
func timeRange(r pebble.Reader, since, until, last int64) (lo, hi int64, err error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: prefixEvent, UpperBound: PrefixEnd(prefixEvent)})
	if err != nil {
		return 0, 0, err
	}
	defer it.Close()
	if !it.First() {
		return 1, 0, it.Error()
	}
	first, err := seqOfEventKey(it.Key())
	if err != nil {
		return 0, 0, err
	}
	var kbuf []byte
	// timeAt returns the time of the first stored event at or after seq.
	timeAt := func(seq int64) (int64, error) {
		kbuf = appendEventKey(kbuf[:0], seq)
		if !it.SeekGE(kbuf) {
			return 0, fmt.Errorf("event %d missing: %w", seq, it.Error())
		}
		rec := it.Value()
		if err := CheckRecord(rec); err != nil {
			return 0, fmt.Errorf("event %d: %w", seq, err)
		}
		return (&Raw{Record: rec}).Time(), nil
	}
	// search returns the smallest seq in [first, last+1) for which
	// pred(time(seq)) holds, or last+1.
	search := func(pred func(t int64) bool) (int64, error) {
		a, b := first, last+1
		for a < b {
			m := a + (b-a)/2
			t, err := timeAt(m)
			if err != nil {
				return 0, err
			}
			if pred(t) {
				b = m
			} else {
				a = m + 1
			}
		}
		return a, nil
	}
	lo, hi = first, last
	if since != 0 {
		if lo, err = search(func(t int64) bool { return t >= since }); err != nil {
			return 0, 0, err
		}
	}
	if until != 0 {
		after, err := search(func(t int64) bool { return t > until })
		if err != nil {
			return 0, 0, err
		}
		hi = after - 1
	}
	return lo, hi, nil
}

// Raw returns the current event. It is valid until the next call to Next;
// its Record may alias pebble's memory, so keep a Clone.
func (it *Iter) Raw() *Raw { return &it.raw }

// Err returns the error that ended the iteration, if any.
func (it *Iter) Err() error { return it.err }

// Close releases the iterator and its snapshot. It is idempotent.
func (it *Iter) Close() error {
	it.done = true
	if it.released {
		return it.err
	}
	s := it.s
	s.rw.RLock()
	if !s.closed {
		it.closeIters()
		s.mu.Lock()
		delete(s.iters, it)
		s.mu.Unlock()
	}
	s.rw.RUnlock()
	it.releaseSnap()
	return it.err
}

func (it *Iter) releaseSnap() {
	if !it.released {
		it.released = true
		it.st.release()
	}
}

func (it *Iter) closeIters() {
	if it.it != nil {
		_ = it.it.Close()
		it.it = nil
	}
	if it.ev != nil {
		_ = it.ev.Close()
		it.ev = nil
	}
}

// forceClose is called by the stream's close, with pebble about to close.
func (it *Iter) forceClose() {
	it.closeIters()
}

// SeqsAt returns, for each of times (ns), the first durable seq whose
// event's time is at or after it, or DurableSeq()+1 when no event is: the
// boundaries between which a stream's events are counted without reading
// them (times never decrease within a stream, so the count of events in
// [t0, t1) is SeqsAt(t1) - SeqsAt(t0)). Each time costs one binary search
// over the stored events.
func (s *Stream) SeqsAt(times []int64) ([]int64, error) {
	st := s.acquire()
	if st == nil {
		return nil, ErrClosed
	}
	defer st.release()
	s.rw.RLock()
	defer s.rw.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	out := make([]int64, len(times))
	for i, t := range times {
		lo, _, err := timeRange(st.snap, t, 0, st.seq)
		if err != nil {
			return nil, s.readError(err, 0)
		}
		out[i] = min(lo, st.seq+1)
	}
	return out, nil
}
