package journal

import (
	"context"
	"fmt"
	"sync"
)

// Item is what a subscription delivers: an event, or (Lagged) the notice
// that the subscriber fell behind the live feed and now reads the journal;
// nothing is lost either way.
type Item struct {
	Raw    *Raw
	Lagged bool
}

// Subscription delivers a stream's durable events in seq order: first from
// disk, then live. It is read by one goroutine at a time; Close may be
// called from any.
type Subscription struct {
	s     *Stream
	ctx   context.Context
	match func(*Raw) bool
	kinds func(kind string) bool // nil: every kind; see SubscribeKinds

	next   int64 // the next seq to deliver
	buf    []*Raw
	live   bool
	lagged bool // a Lagged item is owed

	ch   chan *Raw     // live events, filled by publish
	kick chan struct{} // signalled when publish dropped us for overflowing ch

	done      chan struct{}
	closeOnce sync.Once
}

// catchUpChunk is how many events a catching-up subscription reads from
// disk at a time; it holds no pebble resources between reads.
const catchUpChunk = 256

// Subscribe catches up from disk from seq from (from <= 0: start after the
// current durable seq), then delivers live events, with no gap and no
// duplicate, and only durable ones. match (nil = all) selects events. A
// slow subscriber never blocks appends: when its live buffer overflows it
// goes back to reading from disk, and Next returns one Item with
// Lagged=true before continuing. The Raws it returns are shared: do not
// modify them.
func (s *Stream) Subscribe(ctx context.Context, from int64, match func(*Raw) bool) *Subscription {
	sub := &Subscription{
		s:     s,
		ctx:   ctx,
		match: match,
		next:  from,
		kick:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	if from <= 0 {
		sub.next = s.DurableSeq() + 1
	}
	return sub
}

// SubscribeKinds is Subscribe for a subscriber that reads only some kinds:
// events whose kind kinds rejects are skipped before they are handed over,
// so commits of other kinds do not wake it (a KV put woke every
// subscriber of the audit stream). kinds runs in the committer with the
// stream's lock held: it must be quick and must not block, a lookup or a
// prefix test. match, if not nil, then selects among the kinds' events.
func (s *Stream) SubscribeKinds(ctx context.Context, from int64, kinds func(kind string) bool, match func(*Raw) bool) *Subscription {
	sub := s.Subscribe(ctx, from, match)
	sub.kinds = kinds
	return sub
}

// ofKind reports whether r passes the subscription's kinds.
func (sub *Subscription) ofKind(r *Raw) bool {
	if sub.kinds == nil {
		return true
	}
	k, err := r.Kind()
	return err == nil && sub.kinds(k)
}

// wants reports whether r passes the subscription's kinds and match.
func (sub *Subscription) wants(r *Raw) bool {
	return sub.ofKind(r) && (sub.match == nil || sub.match(r))
}

// Next returns the next matching event or a lag notice. It returns
// ErrClosed once the subscription or the journal is closed, and the
// context's error when ctx or the subscription's context ends.
func (sub *Subscription) Next(ctx context.Context) (Item, error) {
	it, _, err := sub.take(ctx, true)
	return it, err
}

// TryNext is Next without waiting for a commit: ok is false when Next would
// wait. A reader writes out what it gathered before it waits.
func (sub *Subscription) TryNext() (it Item, ok bool, err error) {
	return sub.take(context.Background(), false)
}

func (sub *Subscription) take(ctx context.Context, wait bool) (Item, bool, error) {
	for {
		if err := sub.check(ctx); err != nil {
			return Item{}, false, err
		}
		if sub.lagged {
			sub.lagged = false
			return Item{Lagged: true}, true, nil
		}
		if len(sub.buf) > 0 {
			r := sub.buf[0]
			sub.buf[0] = nil
			sub.buf = sub.buf[1:]
			sub.next = r.Seq + 1
			if sub.wants(r) {
				return Item{Raw: r}, true, nil
			}
			continue
		}
		if !sub.live {
			if err := sub.catchUp(); err != nil {
				return Item{}, false, err
			}
			continue
		}
		if !wait && len(sub.ch) == 0 {
			return Item{}, false, nil
		}
		select {
		case r := <-sub.ch:
			if r.Seq < sub.next {
				continue
			}
			// With kinds, deliver skips the other kinds' events: a gap.
			if r.Seq != sub.next && sub.kinds == nil {
				return Item{}, false, fmt.Errorf("%s subscription: live event %d after %d", sub.s.name, r.Seq, sub.next-1)
			}
			sub.next = r.Seq + 1
			if sub.wants(r) {
				return Item{Raw: r}, true, nil
			}
		case <-sub.kick:
			// publish dropped us; what is left in ch is re-read from disk.
			sub.live, sub.ch, sub.lagged = false, nil, true
		case <-ctx.Done():
			return Item{}, false, ctx.Err()
		case <-sub.ctx.Done():
			sub.Close()
			return Item{}, false, sub.ctx.Err()
		case <-sub.done:
			return Item{}, false, ErrClosed
		case <-sub.s.closedCh:
			return Item{}, false, ErrClosed
		}
	}
}

func (sub *Subscription) check(ctx context.Context) error {
	select {
	case <-sub.done:
		return ErrClosed
	case <-sub.s.closedCh:
		return ErrClosed
	default:
	}
	if err := sub.ctx.Err(); err != nil {
		sub.Close()
		return err
	}
	return ctx.Err()
}

// catchUp reads the next chunk from disk or, when there is nothing more to
// read, joins the live feed. Publishing holds s.mu while it moves the
// durable seq and hands out events, so joining under s.mu with
// durable == next-1 means no event falls between disk and live.
func (sub *Subscription) catchUp() error {
	s := sub.s
	if first := s.FirstSeq(); first > sub.next {
		sub.next = first // retention dropped what was asked for
	}
	it := s.Scan(Query{From: sub.next, To: sub.next + catchUpChunk - 1})
	snapSeq := int64(0)
	if it.st != nil {
		snapSeq = it.st.seq
	}
	for it.Next() {
		sub.buf = append(sub.buf, it.Raw().Clone())
	}
	if err := it.Close(); err != nil {
		return err
	}
	if len(sub.buf) > 0 {
		return nil
	}
	if snapSeq >= sub.next && s.FirstSeq() <= sub.next {
		return fmt.Errorf("%s subscription: event %d is missing from the journal", s.name, sub.next)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subs == nil {
		return ErrClosed
	}
	if s.durable.Load() < sub.next {
		sub.ch = make(chan *Raw, s.j.opts.SubscriberBuffer)
		select {
		case <-sub.kick: // a stale signal from an earlier overflow
		default:
		}
		s.subs[sub] = struct{}{}
		sub.live = true
	}
	return nil
}

// deliver hands a group's events to a live subscriber; called by publish
// under s.mu. It never blocks: a full buffer drops the subscriber from the
// live feed and tells it so.
func (sub *Subscription) deliver(raws []*Raw) {
	for _, r := range raws {
		if !sub.ofKind(r) {
			continue
		}
		select {
		case sub.ch <- r:
		default:
			delete(sub.s.subs, sub)
			sub.s.cstats.lagging.Add(1)
			select {
			case sub.kick <- struct{}{}:
			default:
			}
			return
		}
	}
}

// Close ends the subscription; a blocked Next returns ErrClosed.
func (sub *Subscription) Close() {
	sub.closeOnce.Do(func() {
		close(sub.done)
		s := sub.s
		s.mu.Lock()
		if s.subs != nil {
			delete(s.subs, sub)
		}
		s.mu.Unlock()
	})
}
