package journal

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// pruneRequest asks the committer to drop old events for one reason.
type pruneRequest struct {
	now    time.Time
	reason string // "age" or "size"
	from   int64  // filled by planPrune: the dropped range
	to     int64
}

// CheckpointKind is the kind of the event retention appends after it drops
// a range; its data holds dropped_from, dropped_to, anchor (the hex hash of
// dropped_to) and reason ("age" or "size").
const CheckpointKind = "journal.checkpoint"

// Prune runs one retention pass over a capture-like stream (a no-op on
// audit-like ones): it drops the events older than its Retention.MaxAge,
// then, while pebble uses more than Retention.MaxBytes, the oldest tenth of what is
// left, each drop followed by a checkpoint event that keeps the chain
// verifiable. It returns how many events it dropped.
func (s *Stream) Prune(ctx context.Context, now time.Time) (dropped int64, err error) {
	ret := s.spec.Retention
	if s.spec.Class != CaptureLike {
		return 0, nil
	}
	if ret.MaxAge > 0 {
		n, err := s.pruneOnce(ctx, now, "age")
		dropped += n
		if err != nil {
			return dropped, err
		}
	}
	if ret.MaxBytes > 0 {
		n, err := s.pruneOnce(ctx, now, "size")
		dropped += n
		if err != nil {
			return dropped, err
		}
	}
	return dropped, nil
}

func (s *Stream) pruneOnce(ctx context.Context, now time.Time, reason string) (int64, error) {
	pr := &pruneRequest{now: now, reason: reason}
	r := &request{ctx: ctx, kind: reqPrune, prune: pr}
	if err := s.submit(ctx, r); err != nil {
		return 0, err
	}
	if r.dropped == 0 {
		return 0, nil
	}
	// Reclaim the space now, so a size pass sees the effect of this one.
	s.rw.RLock()
	defer s.rw.RUnlock()
	if s.closed {
		return r.dropped, nil
	}
	if err := s.db.Compact(ctx, eventKey(pr.from), eventKey(pr.to+1), true); err != nil && ctx.Err() == nil {
		s.log.Warn("compact after prune", "err", err)
	}
	return r.dropped, nil
}

// planPrune writes the drop of an old range into b, in the committer: the
// event range, its index entries and the anchor, and plans the checkpoint
// event. It reads the durable state, which is all pebble holds here.
func (s *Stream) planPrune(b *pebble.Batch, r *request) error {
	pr, ret := r.prune, s.spec.Retention
	first, last := s.first.Load(), s.last.seq
	r.dropped, r.newFirst = 0, 0
	if first == 0 || last <= first {
		return nil
	}
	var to int64
	switch pr.reason {
	case "age":
		cutoff := pr.now.Add(-ret.MaxAge).UnixNano()
		_, hi, err := timeRange(s.db, 0, cutoff-1, last)
		if err != nil {
			return err
		}
		to = hi
	case "size":
		if int64(s.db.Metrics().DiskSpaceUsage()) <= ret.MaxBytes {
			return nil
		}
		to = first + max((last-first+1)/10, 1) - 1
	}
	if to < first {
		return nil
	}
	// Index entries: read each dropped record's kind and subject.
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: eventKey(first), UpperBound: eventKey(to + 1)})
	if err != nil {
		return err
	}
	var kbuf []byte
	var anchor Hash
	for ok := it.First(); ok; ok = it.Next() {
		seq, err := seqOfEventKey(it.Key())
		if err != nil {
			_ = it.Close()
			return err
		}
		rec := it.Value()
		if CheckRecord(rec) != nil {
			continue // Verify reports it; nothing to index
		}
		raw := Raw{Stream: s.name, Seq: seq, Record: rec}
		if seq == to {
			anchor = raw.Hash()
		}
		kind, subject, err := peekEnvelope(raw.Body())
		if err != nil {
			continue
		}
		if len(subject) > 0 && !s.noSubjectIndex {
			kbuf = appendIndexKey(kbuf[:0], prefixSubject, string(subject), seq)
			if err := b.Delete(kbuf, nil); err != nil {
				_ = it.Close()
				return err
			}
		}
		kbuf = appendIndexKey(kbuf[:0], prefixKind, string(kind), seq)
		if err := b.Delete(kbuf, nil); err != nil {
			_ = it.Close()
			return err
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return err
	}
	if err := b.DeleteRange(eventKey(first), eventKey(to+1), nil); err != nil {
		return err
	}
	if err := b.Set(keyAnchor, encodeAnchor(to, anchor), nil); err != nil {
		return err
	}
	// Signatures of dropped heads can no longer be checked.
	if err := b.DeleteRange(sigSeqKey(first), sigSeqKey(to+1), nil); err != nil {
		return err
	}
	units, err := s.encode([]*Body{{
		Kind:  CheckpointKind,
		Actor: SystemActor(),
		Data: map[string]any{
			"dropped_from": first,
			"dropped_to":   to,
			"anchor":       anchor.String(),
			"reason":       pr.reason,
		},
	}})
	if err != nil {
		return err
	}
	r.planned = units
	pr.from, pr.to = first, to
	r.dropped, r.newFirst = to-first+1, to+1
	return nil
}

// retentionLoops runs one retention loop per capture-like stream that has
// a retention, until ctx ends.
func (j *Journal) retentionLoops(ctx context.Context) {
	defer close(j.retentionDone)
	var wg sync.WaitGroup
	for _, sp := range j.specs {
		if sp.Class != CaptureLike || sp.Retention.MaxAge == 0 && sp.Retention.MaxBytes == 0 {
			continue
		}
		wg.Go(func() { j.streams[sp.Name].retentionLoop(ctx) })
	}
	wg.Wait()
}

// retentionLoop prunes the stream every Retention.Every.
func (s *Stream) retentionLoop(ctx context.Context) {
	t := time.NewTicker(s.spec.Retention.Every)
	defer t.Stop()
	j := s.j
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := s.Prune(ctx, j.opts.Now())
			if err != nil && ctx.Err() == nil {
				s.log.Error("retention", "err", err)
			} else if n > 0 {
				s.log.Info("retention dropped events", "events", n)
			}
		}
	}
}
