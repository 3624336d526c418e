package journal

import (
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// snapState is one pebble snapshot at a durable seq, shared by every
// Snapshot handle and Iter taken while it was current.
type snapState struct {
	s    *Stream
	snap *pebble.Snapshot
	seq  int64
	refs atomic.Int32
}

func (st *snapState) release() {
	if st.refs.Add(-1) != 0 {
		return
	}
	s := st.s
	s.rw.RLock()
	defer s.rw.RUnlock()
	if s.closed {
		return // close released it
	}
	s.mu.Lock()
	delete(s.snaps, st)
	s.mu.Unlock()
	_ = st.snap.Close()
}

// acquire returns the current durable snapState with a reference taken, or
// nil once the stream is closed.
func (s *Stream) acquire() *snapState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.cur
	if st != nil {
		st.refs.Add(1)
	}
	return st
}

// Snapshot is a read view at exactly a durable state of its stream: the
// events through Seq and the projections as they were after folding them.
type Snapshot struct {
	st     *snapState
	closed atomic.Bool
}

// Snapshot returns a view of the current durable state. Close it when done.
func (s *Stream) Snapshot() *Snapshot {
	return &Snapshot{st: s.acquire()}
}

// Seq returns the last seq the snapshot holds.
func (sn *Snapshot) Seq() int64 {
	if sn.st == nil {
		return 0
	}
	return sn.st.seq
}

// reader runs fn with the pebble snapshot while the stream cannot close.
func (sn *Snapshot) reader(fn func(r pebble.Reader) error) error {
	if sn.st == nil || sn.closed.Load() {
		return ErrClosed
	}
	s := sn.st.s
	s.rw.RLock()
	defer s.rw.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return fn(sn.st.snap)
}

// Get returns a copy of the engine's projection value of key.
func (sn *Snapshot) Get(engine string, key []byte) (val []byte, ok bool, err error) {
	err = sn.reader(func(r pebble.Reader) error {
		val, ok, err = readerGet(r, append(projPrefix(engine), key...))
		return err
	})
	return val, ok, err
}

// Iter calls fn for each key of the engine's projection in [lower, upper),
// keys relative to the engine's prefix; upper nil means to its end.
func (sn *Snapshot) Iter(engine string, lower, upper []byte, fn func(k, v []byte) error) error {
	return sn.reader(func(r pebble.Reader) error {
		return readerIter(r, projPrefix(engine), lower, upper, fn)
	})
}

// Close releases the snapshot. It is idempotent.
func (sn *Snapshot) Close() {
	if sn.st != nil && sn.closed.CompareAndSwap(false, true) {
		sn.st.release()
	}
}
