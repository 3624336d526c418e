package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnhq/cairn/journal"
)

// mirror is the engine's state in memory: the fold of its durable events,
// fed by a journal subscription. Reads, DNS answers and blocking queries
// come from here; changed is closed and replaced at every applied event,
// which is what a blocking query waits on.
type mirror struct {
	mu       sync.RWMutex
	seq      int64 // the last event applied
	kv       map[string]*kvEntry
	services map[string]*service
	checks   map[string]*check
	sessions map[string]*session
	idx      map[string]int64 // table -> seq of its last change
	changed  chan struct{}

	// handed are the ops of events the committer folded, by seq (offer):
	// the subscription applies them without decoding the event a second
	// time. An entry is taken when its seq is applied; one the commit
	// did not keep (a commit group rebuilt, its seqs given to other
	// events) is either replaced by the fold of the event that gets its
	// seq, when that event is this engine's, or never asked for.
	handedMu    sync.Mutex
	handed      map[int64][]op
	handedLimit int
	applied     atomic.Int64 // seq, for offer without the read lock
	live        atomic.Bool  // loaded: offers are kept (none while the journal replays before)

	// written is the seq of the last fold that touched each KV key,
	// for the keys folded since the mirror's snapshot (older entries are
	// pruned once applied). It belongs to the journal's committer
	// goroutine, the only one that runs the engine's Fold and Decide:
	// kvCurrent reads it there without a lock.
	written      map[string]int64
	writtenLimit int
	// preLive is the seq of the last KV fold before the mirror was
	// loaded (the committer's goroutine only): those are not kept one by
	// one, and kvCurrent answers nothing until the mirror holds them.
	preLive int64
	// missed is set once an event could not be decoded or applied: the
	// mirror lacks a committed change, so the committer no longer reads
	// from it (kvCurrent), until the daemon restarts.
	missed atomic.Bool

	// target is the newest seq this engine committed: a read waits until
	// the mirror holds it, so a caller reads its own writes without each
	// write waiting for the subscription.
	target atomic.Int64
}

func newMirror() *mirror {
	return &mirror{
		kv: map[string]*kvEntry{}, services: map[string]*service{},
		checks: map[string]*check{}, sessions: map[string]*session{},
		idx: map[string]int64{}, changed: make(chan struct{}), handed: map[int64][]op{}, handedLimit: maxHanded,
		written: map[string]int64{}, writtenLimit: minWrittenLimit,
	}
}

// load fills the mirror from a durable snapshot of the projection.
func (m *mirror) load(sn *journal.Snapshot) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq = sn.Seq()
	m.applied.Store(m.seq)
	m.live.Store(true)
	return sn.Iter(Name, nil, nil, func(k, v []byte) error {
		table, id, ok := strings.Cut(string(k), "/")
		if !ok {
			return nil
		}
		if table == "idx" {
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return fmt.Errorf("index of %s: %w", id, err)
			}
			m.idx[id] = n
			return nil
		}
		return m.setRaw(table, id, v)
	})
}

func (m *mirror) setRaw(table, id string, b []byte) error {
	var err error
	switch table {
	case tabKV:
		e := &kvEntry{}
		if err = parseRecord(b, e); err == nil {
			m.kv[id] = e
		}
	case tabService:
		s := &service{}
		if err = parseRecord(b, s); err == nil {
			m.services[id] = s
		}
	case tabCheck:
		c := &check{}
		if err = parseRecord(b, c); err == nil {
			m.checks[id] = c
		}
	case tabSession:
		s := &session{}
		if err = parseRecord(b, s); err == nil {
			m.sessions[id] = s
		}
	}
	if err != nil {
		return fmt.Errorf("discovery: load %s/%s: %w", table, id, err)
	}
	return nil
}

// setRec sets a record from an event's map.
func (m *mirror) setRec(table, id string, rec map[string]any) error {
	if table == tabKV {
		e, err := kvFromRec(rec)
		if err != nil {
			return fmt.Errorf("discovery: apply %s/%s: %w", table, id, err)
		}
		m.kv[id] = e
		return nil
	}
	var err error
	switch table {
	case tabService:
		s := &service{}
		if err = decodeRecord(rec, s); err == nil {
			m.services[id] = s
		}
	case tabCheck:
		c := &check{}
		if err = decodeRecord(rec, c); err == nil {
			m.checks[id] = c
		}
	case tabSession:
		s := &session{}
		if err = decodeRecord(rec, s); err == nil {
			m.sessions[id] = s
		}
	}
	if err != nil {
		return fmt.Errorf("discovery: apply %s/%s: %w", table, id, err)
	}
	return nil
}

// apply folds one event into memory.
func (m *mirror) apply(ev *journal.Event) error {
	ops, err := opsOf(ev.Data)
	if err != nil {
		m.markMissed()
		return err
	}
	return m.applyOps(ev.Seq, ops)
}

// offer hands over the ops of the event at seq, as the committer's fold
// decoded them, unless the mirror is not loaded yet or that seq is
// applied already (a rebuild refolds).
// It never waits for the mirror's readers.
func (m *mirror) offer(seq int64, ops []op) {
	if !m.live.Load() || m.missed.Load() || seq <= m.applied.Load() {
		return
	}
	m.handedMu.Lock()
	m.handed[seq] = ops
	m.handedMu.Unlock()
}

// takeHanded returns the ops offered for seq, if any.
func (m *mirror) takeHanded(seq int64) ([]op, bool) {
	m.handedMu.Lock()
	defer m.handedMu.Unlock()
	ops, ok := m.handed[seq]
	delete(m.handed, seq)
	return ops, ok
}

// maxHanded is the least number of offers kept before those at or below
// the applied seq (left by commit groups that were rebuilt) are swept; the
// limit doubles with what a sweep leaves (a subscription far behind), so
// that sweeps stay rare.
const maxHanded = 1024

// applied notes that seq is applied: its offer, if one came late, and
// stale ones are dropped.
func (m *mirror) noteApplied(seq int64) {
	m.applied.Store(seq)
	m.handedMu.Lock()
	defer m.handedMu.Unlock()
	delete(m.handed, seq)
	if len(m.handed) > m.handedLimit {
		for s := range m.handed {
			if s <= seq {
				delete(m.handed, s)
			}
		}
		m.handedLimit = max(maxHanded, 2*len(m.handed))
	}
}

// markMissed marks the mirror as no longer following the stream (an event
// it could not decode or apply, a refold, the subscription's end): the
// committer stops reading from it and offering to it, and the ops already
// offered are dropped, so none of them is taken for another event at
// the same seq.
func (m *mirror) markMissed() {
	m.missed.Store(true)
	m.handedMu.Lock()
	clear(m.handed)
	m.handedMu.Unlock()
}

// minWrittenLimit is the size of written past which applied entries are
// pruned (the limit doubles with what stays, so pruning stays rare).
const minWrittenLimit = 4096

// noteWritten records the KV keys an event folded at seq touches. The
// committer's goroutine only.
func (m *mirror) noteWritten(seq int64, ops []op) {
	if !m.live.Load() {
		m.preLive = max(m.preLive, seq)
		return
	}
	if seq <= m.applied.Load() {
		// A fold of an event the mirror holds: a rebuild refolds every
		// event into a new projection, which the mirror, loaded before,
		// need not match.
		m.markMissed()
		return
	}
	for _, o := range ops {
		if o.Table == tabKV {
			m.written[o.ID] = seq
		}
	}
	if len(m.written) <= m.writtenLimit {
		return
	}
	applied := m.applied.Load()
	for k, s := range m.written {
		if s <= applied {
			delete(m.written, k)
		}
	}
	m.writtenLimit = max(minWrittenLimit, 2*len(m.written))
}

// kvCurrent answers the committed state of a KV key from memory (nil: no
// such key) when the mirror holds every event that wrote it: none was
// folded after the mirror's last applied seq (the event batch being
// built included). ok is false otherwise, when a writer holds the mirror
// (the committer never waits for readers), or once the mirror missed an
// event: the caller reads the projection. The committer's goroutine only
// (Decide).
func (m *mirror) kvCurrent(key string) (e *kvEntry, ok bool) {
	if !m.live.Load() || m.missed.Load() || !m.mu.TryRLock() {
		return nil, false
	}
	defer m.mu.RUnlock()
	if m.preLive > m.seq {
		return nil, false
	}
	if s, seen := m.written[key]; seen && s > m.seq {
		return nil, false
	}
	return m.kv[key], true
}

// applyOps folds the ops of the event at seq into memory.
func (m *mirror) applyOps(seq int64, ops []op) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.noteApplied(seq)
	for _, o := range ops {
		if o.kv != nil { // a KV record FoldRaw decoded into its entry
			m.kv[o.ID] = o.kv
			m.idx[o.Table] = seq
			continue
		}
		if o.Rec == nil {
			switch o.Table {
			case tabKV:
				delete(m.kv, o.ID)
			case tabService:
				delete(m.services, o.ID)
			case tabCheck:
				delete(m.checks, o.ID)
			case tabSession:
				delete(m.sessions, o.ID)
			}
		} else if err := m.setRec(o.Table, o.ID, o.Rec); err != nil {
			m.markMissed()
			return err
		}
		m.idx[o.Table] = seq
	}
	m.seq = seq
	close(m.changed)
	m.changed = make(chan struct{})
	return nil
}

// follow applies the stream's events of this engine from seq from on,
// until ctx ends.
func (m *mirror) follow(ctx context.Context, st *journal.Stream, from int64, log *slog.Logger) {
	sub := st.SubscribeKinds(ctx, from, ours, nil)
	defer sub.Close()
	for {
		it, err := sub.Next(ctx)
		if err != nil {
			m.markMissed()
			if ctx.Err() == nil && !errors.Is(err, journal.ErrClosed) {
				log.Error("discovery: the journal subscription ended", "err", err)
			}
			return
		}
		if it.Raw == nil {
			continue // a lag notice: nothing is lost, the events follow
		}
		// The committer's fold handed over the ops of the events it
		// folded; an event without (folded before this daemon started)
		// is decoded.
		if ops, ok := m.takeHanded(it.Raw.Seq); ok {
			if err := m.applyOps(it.Raw.Seq, ops); err != nil {
				log.Error("discovery: apply an event", "seq", it.Raw.Seq, "err", err)
			}
			continue
		}
		ev, err := it.Raw.Decode()
		if err != nil {
			m.markMissed()
			log.Error("discovery: decode an event", "err", err)
			continue
		}
		if err := m.apply(ev); err != nil {
			log.Error("discovery: apply an event", "seq", ev.Seq, "kind", ev.Kind, "err", err)
		}
	}
}

// committed records that seq is durable: reads from now on see it.
func (m *mirror) committed(seq int64) {
	for {
		cur := m.target.Load()
		if seq <= cur || m.target.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// catchUpLimit bounds how long a read waits for the subscription to bring
// the mirror to the last committed seq (it answers from what it has then).
const catchUpLimit = 5 * time.Second

// read runs fn with the mirror read-locked, once it holds every event
// committed before the call, and returns the channel closed at its next
// change.
func (m *mirror) read(fn func()) <-chan struct{} {
	target := m.target.Load()
	var timer *time.Timer
	for {
		m.mu.RLock()
		if m.seq >= target {
			defer m.mu.RUnlock()
			fn()
			return m.changed
		}
		ch := m.changed
		m.mu.RUnlock()
		if timer == nil {
			timer = time.NewTimer(catchUpLimit)
			defer timer.Stop()
		}
		select {
		case <-ch:
		case <-timer.C:
			target = 0
		}
	}
}

// index is a table's last change, at least 1 (Consul never answers 0).
func (m *mirror) index(tables ...string) int64 {
	var n int64 = 1
	for _, t := range tables {
		n = max(n, m.idx[t])
	}
	return n
}

// kvList returns the entries under prefix, sorted by key. The caller holds
// the lock.
func (m *mirror) kvList(prefix string) []*kvEntry {
	var out []*kvEntry
	for k, e := range m.kv {
		if strings.HasPrefix(k, prefix) {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// servicesNamed are the instances of a service, sorted by id. The caller
// holds the lock.
func (m *mirror) servicesNamed(name string) []*service {
	var out []*service
	for _, s := range m.services {
		if s.Name == name {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// checksOf are the checks of a service instance, and the node's, sorted by
// id. The caller holds the lock.
func (m *mirror) checksOf(serviceID string) []*check {
	var out []*check
	for _, c := range m.checks {
		if c.ServiceID == serviceID || c.ServiceID == "" {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// aggregate is the worst state among checks (passing with none).
func aggregate(cs []*check) string {
	st := statePassing
	for _, c := range cs {
		switch c.Status {
		case stateCritical:
			return stateCritical
		case stateWarning:
			st = stateWarning
		}
	}
	return st
}
