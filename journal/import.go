package journal

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Import appends events exported from a stream of the same name verbatim:
// same seq, time, prev, hash and body, so the chain (and every hash a user
// kept) carries over. The committer checks, in commit order, that the
// events continue the stream: the first one's seq is the tip's plus one and
// its prev is the tip's hash — or the stream is empty (no event, no
// retention anchor), in which case it may start anywhere and its prev is
// kept as the stream's anchor, as if retention had dropped what came
// before. Every event must then be well formed, chained to the one before
// it with a time not before it, and carry the hash its contents give.
//
// Imported events are written, indexed and folded into the engines exactly
// as appended ones, in one batch with one fsync, and become visible only
// once durable. Import is all or nothing; a refusal is a
// failed_precondition (does not continue the stream) or an
// invalid_argument (a bad event) *CodeError and writes nothing.
func (s *Stream) Import(ctx context.Context, raws []*Raw) ([]Committed, error) {
	return s.ImportWith(ctx, raws, ImportOptions{})
}

// ImportOptions extend an import.
type ImportOptions struct {
	// Signatures are signed heads of the imported range, checked by the
	// caller: they are stored with the events (a head whose hash is not
	// the imported event's refuses the import).
	Signatures []Signature
	// Accept, when set, is called in the committer once the events were
	// found to continue the stream; its error refuses the import.
	Accept func() error
	// After is appended, in the same batch, right after the imported
	// events (the journal.import event that records who imported them).
	// Its Committed is the last one Import returns.
	After *Body
	// Pending, for a part that more parts follow, is the record owed if
	// none completes the import: kept with the events (m/import), it is
	// written before anything else the stream takes next, or by
	// SettleImport, so no imported event goes unrecorded. A later part
	// replaces it; After clears it.
	Pending *Body
}

// ImportWith imports as Import does, with opts.
func (s *Stream) ImportWith(ctx context.Context, raws []*Raw, opts ImportOptions) ([]Committed, error) {
	if len(raws) == 0 {
		return nil, nil
	}
	r := &request{ctx: ctx, kind: reqImport, imports: raws, importOpts: opts}
	if opts.After != nil {
		units, err := s.encode([]*Body{opts.After})
		if err != nil {
			return nil, invalidf("%s", err)
		}
		r.units = units
	} else if opts.Pending != nil {
		units, err := s.encode([]*Body{opts.Pending})
		if err != nil {
			return nil, invalidf("%s", err)
		}
		r.owed = &units[0]
	}
	if err := s.submit(ctx, r); err != nil {
		return nil, err
	}
	return r.committed, nil
}

// checkImport verifies an import against the tip it would follow, before
// anything of it is written.
func (s *Stream) checkImport(t tip, raws []*Raw) error {
	first := raws[0]
	switch {
	case first.Seq <= 0:
		return invalidf("import into %s: first seq %d: seqs start at 1", s.name, first.Seq)
	case t.seq == 0 && t.hash == (Hash{}):
		// An empty stream takes any start; seq 1 must hang from the zero hash.
		if err := CheckRecord(first.Record); err != nil {
			return invalidf("import into %s: seq %d: %v", s.name, first.Seq, err)
		}
		if first.Seq == 1 && first.Prev() != (Hash{}) {
			return invalidf("import into %s: seq 1 has prev %s, want the zero hash", s.name, first.Prev())
		}
	case first.Seq != t.seq+1:
		return discontinuousf(
			"import into %s: the events start at seq %d but the stream's next seq is %d; an import must continue the stream (its first event's prev is the stream's last hash), and a backup is restored into an empty data directory with `cairn daemon --restore FILE`",
			s.name, first.Seq, t.seq+1)
	default:
		if err := CheckRecord(first.Record); err != nil {
			return invalidf("import into %s: seq %d: %v", s.name, first.Seq, err)
		}
		if first.Prev() != t.hash {
			return discontinuousf(
				"import into %s: seq %d's prev %s is not the hash of the stream's seq %d (%s): the events come from another chain",
				s.name, first.Seq, first.Prev(), t.seq, t.hash)
		}
	}
	prev, prevSeq, prevTime := first.Prev(), first.Seq-1, t.time
	for _, raw := range raws {
		if raw.Stream != s.name {
			return invalidf("import into %s: seq %d belongs to the %s stream", s.name, raw.Seq, raw.Stream)
		}
		if raw.Seq != prevSeq+1 {
			return invalidf("import into %s: seq %d follows seq %d: seqs must be consecutive", s.name, raw.Seq, prevSeq)
		}
		if err := CheckRecord(raw.Record); err != nil {
			return invalidf("import into %s: seq %d: %v", s.name, raw.Seq, err)
		}
		if raw.Prev() != prev {
			return invalidf("import into %s: seq %d's prev %s is not the hash of seq %d (%s): the chain is broken", s.name, raw.Seq, raw.Prev(), prevSeq, prev)
		}
		if raw.Time() < prevTime {
			return invalidf("import into %s: seq %d's time goes backwards", s.name, raw.Seq)
		}
		if h := raw.ComputeHash(); h != raw.Hash() {
			return invalidf("import into %s: seq %d's stored hash %s does not match its contents (%s)", s.name, raw.Seq, raw.Hash(), h)
		}
		if _, _, err := peekEnvelope(raw.Body()); err != nil {
			return invalidf("import into %s: seq %d: %v", s.name, raw.Seq, err)
		}
		prev, prevSeq, prevTime = raw.Hash(), raw.Seq, raw.Time()
	}
	return nil
}

// checkImportSignatures checks that each signature signs an imported head.
func (s *Stream) checkImportSignatures(raws []*Raw, sigs []Signature) error {
	first, last := raws[0].Seq, raws[len(raws)-1].Seq
	for _, sig := range sigs {
		if sig.Seq < first || sig.Seq > last {
			return invalidf("import into %s: a signature of seq %d, outside the imported seqs %d–%d", s.name, sig.Seq, first, last)
		}
		if h := raws[sig.Seq-first].Hash(); h != sig.Hash {
			return invalidf("import into %s: the signature of seq %d signs hash %s, the event's is %s", s.name, sig.Seq, sig.Hash, h)
		}
		if err := sig.Check(s.name); err != nil {
			return invalidf("import into %s: %v", s.name, err)
		}
	}
	return nil
}

// buildImport writes a checked import into b through the path appends take
// (put, then fold) and advances the batch's tip. A failed fold sets r.err.
func (s *Stream) buildImport(b *pebble.Batch, bt *built, r *request, kbuf []byte) ([]byte, error) {
	var err error
	if first := r.imports[0]; bt.tip.seq == 0 && first.Seq > 1 {
		if err := b.Set(keyAnchor, encodeAnchor(first.Seq-1, first.Prev()), nil); err != nil {
			return kbuf, err
		}
	}
	for _, in := range r.imports {
		// The batch keeps a copy of the record; the Raw handed to
		// subscribers must not alias the caller's memory either.
		raw := Raw{Stream: s.name, Seq: in.Seq, Record: append([]byte(nil), in.Record...)}
		kind, subject, perr := peekEnvelope(raw.Body())
		if perr != nil {
			return kbuf, perr // checkImport peeked every body already
		}
		if kbuf, err = s.put(b, kbuf, &raw, string(kind), string(subject)); err != nil {
			return kbuf, err
		}
		if err := s.fold(b, bt.ov, &raw, knownFold{}); err != nil {
			r.err = invalidf("import into %s: %v", s.name, err)
			return kbuf, r.err
		}
		bt.raws = append(bt.raws, raw)
		r.committed = append(r.committed, Committed{Seq: raw.Seq, Time: raw.Time(), Hash: raw.Hash()})
		bt.tip = tip{seq: raw.Seq, time: raw.Time(), hash: raw.Hash()}
	}
	if err := putSignatures(b, r.importOpts.Signatures); err != nil {
		return kbuf, err
	}
	return kbuf, nil
}

// SettleImport writes the record of an import that more parts were to
// follow and none did (the importer's connection ended): the
// ImportOptions.Pending of its last part, timed now. Without one it does
// nothing.
func (s *Stream) SettleImport(ctx context.Context) ([]Committed, error) {
	r := &request{ctx: ctx, kind: reqSettle}
	if err := s.submit(ctx, r); err != nil {
		return nil, err
	}
	return r.committed, nil
}

// PendingImport reports whether the stream owes the record of an
// interrupted import.
func (s *Stream) PendingImport() bool { return s.owedKnown.Load() }

var errPendingFold = errors.New("fold of a pending import record")

// planPending keeps, after import request r, the record the stream owes:
// none when r carried its After, r's Pending when more parts follow.
func (s *Stream) planPending(b *pebble.Batch, bt *built, r *request) error {
	switch {
	case len(r.units) > 0:
		bt.owed = nil
		return b.Delete(keyPendingImport, nil)
	case r.owed != nil:
		bt.owed = r.owed
		return b.Set(keyPendingImport, r.owed.body, nil)
	}
	return nil
}

// putPending writes the owed import record as the batch's next event,
// attributed to no request of the batch.
func (s *Stream) putPending(b *pebble.Batch, bt *built, kbuf []byte) ([]byte, error) {
	u := bt.owed
	t := bt.tip
	seq, tm := t.seq+1, max(s.j.opts.Now().UnixNano(), t.time)
	h := ChainHash(s.name, seq, tm, t.hash, u.body)
	raw := Raw{Stream: s.name, Seq: seq, Record: EncodeRecord(tm, t.hash, h, u.body)}
	kbuf, err := s.put(b, kbuf, &raw, u.kind, u.subject)
	if err != nil {
		return kbuf, err
	}
	if err := s.fold(b, bt.ov, &raw, knownFold{}); err != nil {
		return kbuf, fmt.Errorf("%w: %v", errPendingFold, err)
	}
	if err := b.Delete(keyPendingImport, nil); err != nil {
		return kbuf, err
	}
	bt.raws = append(bt.raws, raw)
	bt.tip = tip{seq: seq, time: tm, hash: h}
	bt.owed = nil
	return kbuf, nil
}

// loadOwed reads, at open, the record an unfinished import owes.
func (s *Stream) loadOwed() error {
	v, closer, err := s.db.Get(keyPendingImport)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read m/import: %w", err)
	}
	defer closer.Close()
	kind, subject, err := peekEnvelope(v)
	if err != nil {
		return fmt.Errorf("m/import: %w", err)
	}
	s.owed = &unit{body: append([]byte(nil), v...), kind: string(kind), subject: string(subject)}
	s.owedKnown.Store(true)
	return nil
}
