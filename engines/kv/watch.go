package kv

import (
	"context"

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

// Watch delivers every change to [key, end) (end nil: just key; "\x00":
// every key >= key) from startRev (0: from the next revision on): history
// from the journal first, then live, gapless and in revision order. fn gets
// all the Events of one revision together. Watch returns when ctx ends
// (with ctx.Err()) or fn returns an error (that error).
func (s *Store) Watch(ctx context.Context, key, end []byte, startRev int64, prevKV bool, fn func(rev int64, evs []Event) error) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if s.st == nil {
		return wire.Errorf(wire.Unavailable, "kv store not started")
	}
	if startRev < 0 {
		return wire.Errorf(wire.InvalidArgument, "watch start revision %d is negative", startRev)
	}
	sub := s.st.Subscribe(ctx, startRev, matchKeyEvents)
	defer sub.Close()
	for {
		it, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if it.Lagged {
			continue // the subscription reads the journal now; nothing is lost
		}
		evs, err := s.expand(it.Raw, key, end, prevKV)
		if err != nil {
			return err
		}
		if len(evs) > 0 {
			if err := fn(it.Raw.Seq, evs); err != nil {
				return err
			}
		}
	}
}

// expand turns one journal event into the watch Events of the keys in
// [key, end) it changed.
func (s *Store) expand(raw *journal.Raw, key, end []byte, prevKV bool) ([]Event, error) {
	ops, err := rawOps(raw)
	if err != nil {
		return nil, err
	}
	seq := raw.Seq
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
