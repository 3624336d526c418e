package kv

import (
	"context"
	"fmt"
	"strings"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/journal"
)

var (
	qKV    = journal.Query{Kind: "kv.*"}
	qLease = journal.Query{Kind: "lease.*"}
)

// matchKeyEvents is the cheap prefilter of watches: it peeks at the kind
// without decoding the body.
func matchKeyEvents(r *journal.Raw) bool {
	return journal.MatchQuery(qKV, r) || journal.MatchQuery(qLease, r)
}

// keyEventKinds is the committer's side of matchKeyEvents: the kinds the
// hub is handed at all (no other engine's commit wakes it).
func keyEventKinds(kind string) bool {
	return strings.HasPrefix(kind, "kv.") || strings.HasPrefix(kind, "lease.")
}

// WatchOptions are the options of a watch beyond its range and start.
type WatchOptions struct {
	// PrevKV adds to each event the version of the key it replaced.
	PrevKV bool
	// Compaction makes a watch that would replay revisions below the
	// latest kv.compact's revision fail with a *CompactedError, as etcd's
	// watches do (the etcd API when it honours compaction); cairn's own
	// verbs replay the whole history.
	Compaction bool
}

// Watch delivers every change to [key, end) (end nil: just key; "\x00":
// every key >= key) from startRev (0: from the next revision on): history
// from the journal first, then live, gapless and in revision order. fn gets
// all the Events of one revision together. Watch returns when ctx ends
// (with ctx.Err()) or fn returns an error (that error).
func (s *Store) Watch(ctx context.Context, key, end []byte, startRev int64, prevKV bool, fn func(rev int64, evs []Event) error) error {
	return s.WatchWith(ctx, key, end, startRev, WatchOptions{PrevKV: prevKV}, fn)
}

// WatchWith is Watch with options.
//
// A watch is one of two kinds at a time, as in etcd's watchableStore. An
// unsynced watch (one that starts in the past, or fell behind) reads the
// journal on its own goroutine until it reaches the events the hub has
// dispatched, then joins the hub: the synced group, which the engine's one
// journal subscription feeds through an index from key ranges to watches,
// decoding each event once. A synced watch that does not keep up is
// dropped back to unsynced instead of making anyone wait.
func (s *Store) WatchWith(ctx context.Context, key, end []byte, startRev int64, opts WatchOptions, fn func(rev int64, evs []Event) error) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if s.st == nil || s.hub == nil {
		return wire.Errorf(wire.Unavailable, "kv store not started")
	}
	if startRev < 0 {
		return wire.Errorf(wire.InvalidArgument, "watch start revision %d is negative", startRev)
	}
	w := &watcher{key: key, end: end, next: startRev}
	if startRev == 0 {
		w.next = s.st.DurableSeq() + 1
	}
	h := s.hub
	for {
		pending, err := s.catchUp(ctx, w, opts, fn)
		if err != nil {
			return err
		}
		for _, p := range pending {
			if err := s.deliverOps(w, p, opts.PrevKV, fn); err != nil {
				h.leave(w)
				return err
			}
		}
		if err := s.followHub(ctx, w, opts.PrevKV, fn); err != nil {
			return err
		}
		// The hub dropped the watch (it fell behind): w.next is the first
		// revision it was not given; catch up from there.
	}
}

// followHub delivers what the hub hands a synced watch until ctx ends, fn
// fails or the hub drops it (nil: catch up again from w.next).
func (s *Store) followHub(ctx context.Context, w *watcher, prevKV bool, fn func(rev int64, evs []Event) error) error {
	h := s.hub
	for {
		select {
		case ro, ok := <-w.ch:
			if !ok {
				// The hub closed the channel after setting w.next and
				// w.err: they are ours again.
				return w.err
			}
			if err := s.deliverOps(w, ro, prevKV, fn); err != nil {
				h.leave(w)
				return err
			}
		case <-ctx.Done():
			h.leave(w)
			return ctx.Err()
		}
	}
}

// deliverOps calls fn with the events of one revision in w's range, if any.
func (s *Store) deliverOps(w *watcher, ro *revOps, prevKV bool, fn func(rev int64, evs []Event) error) error {
	evs, err := s.expand(ro.seq, ro.ops, w.key, w.end, prevKV)
	if err != nil || len(evs) == 0 {
		return err
	}
	return fn(ro.seq, evs)
}

// catchUpChunk is how many events an unsynced watch reads from the journal
// at a time; it holds no snapshot while it calls fn.
const catchUpChunk = 256

// joinReadMax is how far the hub may be ahead of a watch that joins it:
// the watch reads that many events under the hub's lock (without calling
// fn) so that it joins with no gap.
const joinReadMax = 256

// catchUp replays the journal from w.next for an unsynced watch, calling
// fn, until it is level with the hub, then joins the hub. It returns the
// revisions read while joining, which the caller delivers before what the
// hub hands it.
func (s *Store) catchUp(ctx context.Context, w *watcher, opts WatchOptions, fn func(rev int64, evs []Event) error) ([]*revOps, error) {
	h := s.hub
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// A compaction's revision is at most the journal's tip when it
		// was made, so only a watch that starts at or below the tip can
		// need compacted revisions. One from now on does not read the
		// projection for it: that read would leave every such watch's
		// goroutine parked on a stack grown for pebble's lookup, which
		// the next collection must scan and shrink, 3,000 watches at a
		// time in etcd's fan-out benchmark.
		if opts.Compaction && w.next <= s.st.DurableSeq() {
			if c := s.CompactRev(); c > 0 && w.next < c {
				return nil, &CompactedError{Rev: c}
			}
		}
		// Cheap join first: nothing to read when the hub has not
		// dispatched w.next yet.
		h.mu.Lock()
		if h.stopped {
			h.mu.Unlock()
			return nil, h.err
		}
		if h.rev < w.next {
			h.join(w)
			h.mu.Unlock()
			return nil, nil
		}
		if h.rev-w.next < joinReadMax {
			// Read the few revisions the hub is ahead under its lock:
			// it cannot move on meanwhile, so the watch joins exactly
			// after them.
			chunk, full, err := s.readChunk(w, h.rev)
			if err == nil && !full {
				h.join(w)
				h.mu.Unlock()
				return chunk, nil
			}
			h.mu.Unlock()
			if err != nil {
				return nil, err
			}
			continue
		}
		h.mu.Unlock()
		chunk, _, err := s.readChunk(w, 0)
		if err != nil {
			return nil, err
		}
		for _, ro := range chunk {
			if err := s.deliverOps(w, ro, opts.PrevKV, fn); err != nil {
				return nil, err
			}
		}
	}
}

// readChunk reads the key changes of up to catchUpChunk events from w.next
// (up to upTo when > 0) and moves w.next past the events read. full
// reports that the chunk was cut before reaching upTo (or the tip).
func (s *Store) readChunk(w *watcher, upTo int64) (out []*revOps, full bool, err error) {
	if first := s.st.FirstSeq(); first > w.next {
		w.next = first // retention dropped what was asked for
	}
	to := w.next + catchUpChunk - 1
	if upTo > 0 && upTo < to {
		to = upTo
	}
	it := s.st.Scan(journal.Query{From: w.next, To: to})
	n := 0
	last := w.next - 1
	for it.Next() {
		r := it.Raw()
		n++
		last = r.Seq
		if !matchKeyEvents(r) {
			continue
		}
		ops, err := storedOps(r)
		if err != nil {
			it.Close()
			return nil, false, err
		}
		if len(ops) > 0 {
			out = append(out, &revOps{seq: r.Seq, ops: ops})
		}
	}
	if err := it.Close(); err != nil {
		return nil, false, err
	}
	if upTo > 0 && last < upTo {
		if s.st.FirstSeq() <= w.next {
			return nil, false, fmt.Errorf("kv watch: events %d to %d are missing from the journal", last+1, upTo)
		}
	}
	w.next = last + 1
	return out, n == catchUpChunk && (upTo == 0 || last < upTo), nil
}

// expand turns one revision's key changes into the watch Events of the
// keys in [key, end).
func (s *Store) expand(seq int64, ops []op, key, end []byte, prevKV bool) ([]Event, error) {
	var (
		out []Event
		sn  *journal.Snapshot
	)
	defer func() {
		if sn != nil {
			sn.Close()
		}
	}()
	for i := range ops {
		o := &ops[i]
		if !inRange(o.Key, key, end) {
			continue
		}
		e := Event{Type: Put, KV: KeyValue{Key: o.Key, Value: o.Value, CreateRev: o.CreateRev, ModRev: seq, Version: o.Version, Lease: o.Lease}}
		if o.Del {
			e = Event{Type: Delete, KV: KeyValue{Key: o.Key, ModRev: seq}}
		}
		if prevKV && o.PrevRev != 0 {
			if sn == nil {
				sn = s.st.Snapshot()
			}
			prev, err := versionAt(snapReader{sn}, o.Key, o.PrevRev)
			if err != nil {
				return nil, err
			}
			e.PrevKV = prev
		}
		out = append(out, e)
	}
	return out, nil
}

// versionAt returns the version of key written at exactly rev, or nil.
func versionAt(r reader, key []byte, rev int64) (*KeyValue, error) {
	b, ok, err := r.Get(histKey(key, rev))
	if err != nil || !ok || len(b) == 0 || b[0] != 'p' {
		return nil, err
	}
	kv, err := decodeKV(key, b[1:])
	if err != nil {
		return nil, err
	}
	return &kv, nil
}

// CompactedError is what a watch or a read answers, when asked to honour
// compaction, for a revision below the latest compaction's: etcd's
// ErrCompacted, with the compact revision a client re-lists from.
type CompactedError struct{ Rev int64 }

func (e *CompactedError) Error() string {
	return fmt.Sprintf("required revision has been compacted (compact revision %d)", e.Rev)
}

// Unwrap makes a CompactedError match ErrCompacted (and carry its code).
func (e *CompactedError) Unwrap() error { return ErrCompacted }
