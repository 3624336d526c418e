package journal

import (
	"context"
	"crypto/sha256"
	"encoding/binary"

	"github.com/cockroachdb/pebble/v2"
)

// ProjectionDigest is a SHA-256 over every engine projection key and value
// of the stream at its durable seq, and how many keys it covers. Folding
// live, refolding with Rebuild and reopening after a crash must all give
// the same digest: that is how the daemon shows that an engine's state is
// the fold of its events and nothing else.
func (s *Stream) ProjectionDigest(ctx context.Context) (Hash, int64, error) {
	st := s.acquire()
	if st == nil {
		return Hash{}, 0, ErrClosed
	}
	defer st.release()
	s.rw.RLock()
	defer s.rw.RUnlock()
	if s.closed {
		return Hash{}, 0, ErrClosed
	}
	it, err := st.snap.NewIter(&pebble.IterOptions{LowerBound: prefixProj, UpperBound: PrefixEnd(prefixProj)})
	if err != nil {
		return Hash{}, 0, err
	}
	defer it.Close()
	h := sha256.New()
	var n int64
	var lenBuf [binary.MaxVarintLen64]byte
	for ok := it.First(); ok; ok = it.Next() {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return Hash{}, 0, err
			}
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return Hash{}, 0, s.readError(err, 0)
		}
		for _, b := range [][]byte{it.Key(), v} {
			h.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(b)))])
			h.Write(b)
		}
		n++
	}
	if err := it.Error(); err != nil {
		return Hash{}, 0, s.readError(err, 0)
	}
	var out Hash
	copy(out[:], h.Sum(nil))
	return out, n, nil
}
