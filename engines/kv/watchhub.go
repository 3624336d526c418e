package kv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cairnhq/cairn/journal"
)

// watchBuffer is how many revisions the hub queues for a synced watch
// before it drops the watch back to unsynced (etcd's watch channel holds
// 128 responses).
const watchBuffer = 128

// revOps is one revision's key changes, decoded once and shared by every
// watch the revision concerns: read only.
type revOps struct {
	seq int64
	ops []op
}

// watcher is one watch as the hub indexes it. While it is synced the hub
// owns next and err; once the hub closes ch (or the watch left), the
// watch's goroutine owns them again.
type watcher struct {
	key, end []byte // as RangeRequest: end nil is key alone, "\x00" every key >= key

	next int64 // the first revision not yet handed to the watch
	err  error // why the hub ended the watch (nil: it fell behind)
	ch   chan *revOps

	synced bool  // in the hub's index; guarded by the hub's mu
	mark   int64 // the last revision dispatch selected it for
}

// watchHub is the synced group of etcd's watchableStore: the engine's one
// journal subscription, which decodes each key event once and hands it to
// the watches whose range holds one of its keys, found through an index
// (a map for single keys, an interval index for ranges). Handing over
// never blocks: a watch whose queue is full is dropped back to unsynced,
// and catches up from the journal on its own goroutine.
type watchHub struct {
	mu sync.Mutex
	// rev: every key event up to rev has been handed to the synced
	// watches that wanted it. A watch that joins has read the journal up
	// to at least rev.
	rev     int64
	stopped bool
	err     error // why the hub stopped

	keys   map[string]map[*watcher]struct{} // single-key watches
	ranges map[*watcher]struct{}            // range watches
	index  rangeIndex                       // over ranges, rebuilt when dirty
	dirty  bool
	count  atomic.Int64 // synced watches
	picked []*watcher   // dispatch's scratch
	drops  atomic.Int64 // watches dropped back to unsynced for falling behind

	done chan struct{}
}

// newWatchHub returns a hub that has dispatched every event before from.
func newWatchHub(from int64) *watchHub {
	return &watchHub{rev: from - 1, keys: map[string]map[*watcher]struct{}{}, ranges: map[*watcher]struct{}{}, done: make(chan struct{})}
}

// run feeds the hub from one subscription of st from h.rev+1 on, until
// ctx ends or the journal closes; then every synced watch ends with the
// reason.
func (h *watchHub) run(ctx context.Context, st *journal.Stream) {
	defer close(h.done)
	sub := st.SubscribeKinds(ctx, h.rev+1, keyEventKinds, matchKeyEvents)
	defer sub.Close()
	for {
		it, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, context.Canceled) {
				err = fmt.Errorf("kv watch: the store stopped: %w", journal.ErrClosed)
			}
			h.stop(err)
			return
		}
		if it.Lagged {
			continue // the subscription reads the journal now; nothing is lost
		}
		h.dispatch(it.Raw)
	}
}

// dispatch hands one event to the synced watches it concerns.
func (h *watchHub) dispatch(raw *journal.Raw) {
	var (
		ops     []op
		err     error
		decoded bool
	)
	// With no watch, the event is not even decoded.
	if h.count.Load() > 0 {
		ops, err = storedOps(raw)
		decoded = true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rev = raw.Seq
	if h.count.Load() == 0 {
		return
	}
	if !decoded {
		ops, err = storedOps(raw)
	}
	if err != nil {
		// Not expected of an event the engine wrote; every synced watch
		// ends with it, as each would have reading it itself.
		for w := range h.all() {
			w.err = err
			h.drop(w, raw.Seq)
		}
		return
	}
	if len(ops) == 0 {
		return
	}
	if h.dirty {
		h.index.build(h.ranges)
		h.dirty = false
	}
	seq := raw.Seq
	h.picked = h.picked[:0]
	pick := func(w *watcher) {
		if w.mark != seq && w.next <= seq {
			w.mark = seq
			h.picked = append(h.picked, w)
		}
	}
	for i := range ops {
		k := ops[i].Key
		for w := range h.keys[string(k)] {
			pick(w)
		}
		if len(h.ranges) > 0 {
			h.index.stab(k, pick)
		}
	}
	if len(h.picked) == 0 {
		return
	}
	ro := &revOps{seq: seq, ops: ops}
	for _, w := range h.picked {
		select {
		case w.ch <- ro:
		default:
			h.drop(w, seq) // it falls behind: it catches up on its own
			h.drops.Add(1)
		}
	}
	clear(h.picked)
}

// all iterates over the synced watches; h.mu is held.
func (h *watchHub) all() func(func(*watcher) bool) {
	return func(yield func(*watcher) bool) {
		var list []*watcher
		for _, set := range h.keys {
			for w := range set {
				list = append(list, w)
			}
		}
		for w := range h.ranges {
			list = append(list, w)
		}
		for _, w := range list {
			if !yield(w) {
				return
			}
		}
	}
}

// join adds w to the synced group; h.mu is held and w has read the
// journal up to h.rev at least.
func (h *watchHub) join(w *watcher) {
	w.ch = make(chan *revOps, watchBuffer)
	w.synced = true
	w.err = nil
	if w.end == nil {
		set := h.keys[string(w.key)]
		if set == nil {
			set = map[*watcher]struct{}{}
			h.keys[string(w.key)] = set
		}
		set[w] = struct{}{}
	} else {
		h.ranges[w] = struct{}{}
		h.dirty = true
	}
	h.count.Add(1)
}

// remove takes w out of the index; h.mu is held.
func (h *watchHub) remove(w *watcher) {
	if !w.synced {
		return
	}
	w.synced = false
	if w.end == nil {
		set := h.keys[string(w.key)]
		delete(set, w)
		if len(set) == 0 {
			delete(h.keys, string(w.key))
		}
	} else {
		delete(h.ranges, w)
		h.dirty = true
	}
	h.count.Add(-1)
}

// drop ends w's synced time: from revision next on it is not handed
// anything. Closing ch (after setting next) tells its goroutine, which
// takes what is queued first; h.mu is held.
func (h *watchHub) drop(w *watcher, next int64) {
	h.remove(w)
	w.next = next
	close(w.ch)
}

// leave takes a watch that ends out of the synced group, if it is there.
func (h *watchHub) leave(w *watcher) {
	h.mu.Lock()
	h.remove(w)
	h.mu.Unlock()
}

// stop ends every synced watch with err; watches that try to join later
// get err too.
func (h *watchHub) stop(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped, h.err = true, err
	for w := range h.all() {
		w.err = err
		h.drop(w, h.rev+1)
	}
}

// rangeIndex finds the range watches holding a key: the ranges sorted by
// start, as an implicit balanced tree (the middle of each slice is its
// root) where each node knows the largest end below it, so a lookup visits
// only subtrees that may hold the key: O(log n) plus the matches.
type rangeIndex struct {
	ws     []*watcher
	maxEnd []bound
}

// bound is a range end; inf is "\x00" (every key from the start on).
type bound struct {
	b   []byte
	inf bool
}

func endOf(w *watcher) bound {
	if isAllFrom(w.end) {
		return bound{inf: true}
	}
	return bound{b: w.end}
}

// after reports whether key is before the end.
func (e bound) after(key []byte) bool { return e.inf || bytes.Compare(key, e.b) < 0 }

func maxBound(a, b bound) bound {
	if a.inf || b.inf {
		return bound{inf: true}
	}
	if bytes.Compare(a.b, b.b) >= 0 {
		return a
	}
	return b
}

func (x *rangeIndex) build(set map[*watcher]struct{}) {
	x.ws = x.ws[:0]
	for w := range set {
		x.ws = append(x.ws, w)
	}
	slices.SortFunc(x.ws, func(a, b *watcher) int { return bytes.Compare(a.key, b.key) })
	x.maxEnd = slices.Grow(x.maxEnd[:0], len(x.ws))[:len(x.ws)]
	x.fill(0, len(x.ws))
}

// fill computes maxEnd of the subtree [lo, hi), stored at its root.
func (x *rangeIndex) fill(lo, hi int) bound {
	if lo >= hi {
		return bound{}
	}
	mid := (lo + hi) / 2
	m := endOf(x.ws[mid])
	m = maxBound(m, x.fill(lo, mid))
	m = maxBound(m, x.fill(mid+1, hi))
	x.maxEnd[mid] = m
	return m
}

// stab calls fn with every range holding key.
func (x *rangeIndex) stab(key []byte, fn func(*watcher)) { x.stabIn(0, len(x.ws), key, fn) }

func (x *rangeIndex) stabIn(lo, hi int, key []byte, fn func(*watcher)) {
	for lo < hi {
		mid := (lo + hi) / 2
		if !x.maxEnd[mid].after(key) {
			return // every range below ends at or before key
		}
		x.stabIn(lo, mid, key, fn)
		w := x.ws[mid]
		if bytes.Compare(w.key, key) > 0 {
			return // this range and those after it start past key
		}
		if endOf(w).after(key) {
			fn(w)
		}
		lo = mid + 1
	}
}
