package journal

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// VerifyReport is what Verify found. BadSeq is 0 when the chain is intact.
type VerifyReport struct {
	First, Last, Events int64
	BadSeq              int64
	Problem             string
	// SignedSeq is the highest seq whose head carries a valid signature
	// (0: none): the chain is signed up to it, by the key SignedBy (its
	// Fingerprint). Signatures counts the valid signatures checked.
	SignedSeq  int64
	SignedBy   string
	Signatures int64
}

// Verify recomputes the chain from the anchor (or the zero hash) through
// the durable seq: each record's stored hash must equal ChainHash of its
// parts, each prev the previous hash, times must not decrease and seqs must
// be gapless. It reports the first bad seq.
func (s *Stream) Verify(ctx context.Context) (VerifyReport, error) {
	var rep VerifyReport
	st := s.acquire()
	if st == nil {
		return rep, ErrClosed
	}
	defer st.release()
	s.rw.RLock()
	defer s.rw.RUnlock()
	if s.closed {
		return rep, ErrClosed
	}
	snap := st.snap

	var prev Hash
	var prevSeq, prevTime int64
	if v, ok, err := readerGet(snap, keyAnchor); err != nil {
		return rep, err
	} else if ok {
		if prevSeq, prev, err = decodeAnchor(v); err != nil {
			return rep, err
		}
	}
	bad := func(seq int64, format string, args ...any) (VerifyReport, error) {
		rep.BadSeq, rep.Problem = seq, fmt.Sprintf(format, args...)
		return rep, nil
	}
	sigs, err := s.signatures(prevSeq+1, st.seq)
	if err != nil {
		return rep, err
	}
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: prefixEvent, UpperBound: eventKey(st.seq + 1)})
	if err != nil {
		return rep, err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if rep.Events%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
		}
		seq, err := seqOfEventKey(it.Key())
		if err != nil {
			return bad(prevSeq+1, "%v", err)
		}
		if seq != prevSeq+1 {
			return bad(prevSeq+1, "seq %d is missing (next stored is %d)", prevSeq+1, seq)
		}
		rec, err := it.ValueAndErr()
		if err != nil {
			// A record in a damaged blob file.
			if de := (*DataLossError)(nil); errors.As(s.readError(err, prevSeq), &de) {
				return bad(seq, "unreadable: %s is damaged (%v)", de.File, firstLine(err))
			}
			return rep, err
		}
		if err := CheckRecord(rec); err != nil {
			return bad(seq, "%v", err)
		}
		r := Raw{Stream: s.name, Seq: seq, Record: rec}
		if r.Prev() != prev {
			return bad(seq, "prev %s is not the hash of seq %d (%s)", r.Prev(), prevSeq, prev)
		}
		if h := r.ComputeHash(); h != r.Hash() {
			return bad(seq, "stored hash %s does not match the event's contents (%s)", r.Hash(), h)
		}
		if r.Time() < prevTime {
			return bad(seq, "time goes backwards")
		}
		for ; len(sigs) > 0 && sigs[0].Seq <= seq; sigs = sigs[1:] {
			sig := sigs[0]
			if sig.Hash != r.Hash() {
				return bad(seq, "the signature of seq %d by key %s signs hash %s, not the event's %s", seq, sig.Signer(), sig.Hash, r.Hash())
			}
			if err := sig.Check(s.name); err != nil {
				return bad(seq, "%v", err)
			}
			rep.SignedSeq, rep.SignedBy, rep.Signatures = seq, sig.Signer(), rep.Signatures+1
		}
		if rep.First == 0 {
			rep.First = seq
		}
		rep.Last, rep.Events = seq, rep.Events+1
		prev, prevSeq, prevTime = r.Hash(), seq, r.Time()
	}
	if err := it.Error(); err != nil {
		if de := (*DataLossError)(nil); errors.As(s.readError(err, prevSeq), &de) {
			return bad(prevSeq+1, "unreadable: %s is damaged (%v)", de.File, firstLine(err))
		}
		return rep, err
	}
	if prevSeq < st.seq {
		return bad(prevSeq+1, "seq %d is missing", prevSeq+1)
	}
	return rep, nil
}
