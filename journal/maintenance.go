package journal

import (
	"bytes"
	"context"
)

// ReserveShort returns the error an append would fail with now because the
// free disk space is below the stream's reserve (it matches
// ErrResourceExhausted), or nil when there is room. It lets a caller
// report the condition (etcd's NOSPACE alarm) without trying to append.
func (s *Stream) ReserveShort() error { return s.checkReserve() }

// Compact runs a manual compaction of the stream's whole key space (what
// etcd's defragment is to its bbolt file): it rewrites the stream's tables
// into the bottom level, dropping overwritten and deleted values. Appends
// and reads go on meanwhile. It returns ErrClosed once the journal closed.
func (s *Stream) Compact(ctx context.Context) error {
	s.rw.RLock()
	defer s.rw.RUnlock()
	if s.closed {
		return ErrClosed
	}
	it, err := s.db.NewIter(nil)
	if err != nil {
		return err
	}
	var lo, hi []byte
	if it.First() {
		lo = bytes.Clone(it.Key())
	}
	if it.Last() {
		hi = append(bytes.Clone(it.Key()), 0) // past the last key
	}
	if err := it.Close(); err != nil {
		return err
	}
	if lo == nil {
		return nil // empty
	}
	return s.db.Compact(ctx, lo, hi, true)
}
