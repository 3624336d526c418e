package journal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairnhq/cairn/journal/cborwalk"
)

// Committed is the acknowledgement of one durable event.
type Committed struct {
	Seq, Time int64
	Hash      Hash
}

// unit is one encoded event body waiting for its seq.
type unit struct {
	body          []byte
	kind, subject string
}

type requestKind int

const (
	reqAppend requestKind = iota
	reqPropose
	reqPrune
	reqRebuild
	reqImport
	reqSettle // write a pending import's record now (SettleImport)
)

// request is one unit of work for the committer. The committer fills the
// result fields and closes done.
type request struct {
	ctx   context.Context
	kind  requestKind
	units []unit // reqAppend

	engine Engine // reqPropose
	req    any
	fold   func(t *Txn, i int, seq int64) error // reqPropose: its Decision's Fold

	prune *pruneRequest // reqPrune

	imports    []*Raw        // reqImport (units: its After event)
	importOpts ImportOptions // reqImport
	owed       *unit         // reqImport: its Pending event

	done      chan struct{}
	committed []Committed
	reply     any
	err       error

	// Filled while building a group.
	planned  []unit
	newFirst int64
	dropped  int64
}

func (r *request) events() int {
	switch r.kind {
	case reqAppend:
		return len(r.units)
	case reqImport:
		return len(r.imports) + len(r.units)
	}
	return 1
}

// Append encodes bodies in the caller's goroutine (Node filled from
// Options.Node when empty), queues them to the committer as one unit and
// returns once they are durable. It is all or nothing.
func (s *Stream) Append(ctx context.Context, bodies ...*Body) ([]Committed, error) {
	if len(bodies) == 0 {
		return nil, nil
	}
	units, err := s.encode(bodies)
	if err != nil {
		return nil, invalidf("%s", err)
	}
	return s.appendUnits(ctx, units)
}

// appendUnits commits encoded units as one request.
func (s *Stream) appendUnits(ctx context.Context, units []unit) ([]Committed, error) {
	r := &request{ctx: ctx, kind: reqAppend, units: units}
	if err := s.submit(ctx, r); err != nil {
		return nil, err
	}
	return r.committed, nil
}

// Encoded is an event body an engine encoded itself, as EncodeBody
// encodes a Body (deterministic CBOR, Node set), with its kind and subject,
// which index it and must be the body's own.
type Encoded struct {
	Body          []byte
	Kind, Subject string
}

// AppendEncoded appends bodies already encoded: for an engine that writes
// the bytes of a high-rate event kind itself, without building a Body.
// The encoding is the caller's to get right (its tests compare it with
// EncodeBody's); the journal checks each kind, and that the first body of
// the call is a CBOR map whose kind and subject are the ones given, then
// commits them as Append does.
func (s *Stream) AppendEncoded(ctx context.Context, bodies ...Encoded) ([]Committed, error) {
	if len(bodies) == 0 {
		return nil, nil
	}
	kind, subject, err := peekEnvelope(bodies[0].Body)
	if err != nil {
		return nil, invalidf("encoded body: %s", err)
	}
	if string(kind) != bodies[0].Kind || string(subject) != bodies[0].Subject {
		return nil, invalidf("encoded body of kind %q and subject %q given as %q and %q", kind, subject, bodies[0].Kind, bodies[0].Subject)
	}
	units := make([]unit, len(bodies))
	for i, e := range bodies {
		if i == 0 || e.Kind != bodies[i-1].Kind {
			if err := ValidateKind(e.Kind); err != nil {
				return nil, invalidf("encoded body %d: %s", i, err)
			}
		}
		if major, _, _, _, ok := cborwalk.Head(e.Body, 0); !ok || major != cborwalk.MajorMap {
			return nil, invalidf("encoded body %d is not a CBOR map", i)
		}
		units[i] = unit{body: e.Body, kind: e.Kind, subject: e.Subject}
	}
	return s.appendUnits(ctx, units)
}

// Propose queues req for the named engine's Decide, in commit order, and
// returns once the events it decided on are durable, with Decide's reply.
func (s *Stream) Propose(ctx context.Context, engine string, req any) ([]Committed, any, error) {
	e := s.engineByName[engine]
	if e == nil {
		return nil, nil, fmt.Errorf("%s stream has no engine %q", s.name, engine)
	}
	r := &request{ctx: ctx, kind: reqPropose, engine: e, req: req}
	if err := s.submit(ctx, r); err != nil {
		return nil, nil, err
	}
	return r.committed, r.reply, nil
}

// Rebuild drops every engine projection of the stream and refolds all
// events, in the committer, so appends wait meanwhile. The result is the
// state the incremental folds built.
func (s *Stream) Rebuild(ctx context.Context) error {
	return s.submit(ctx, &request{ctx: ctx, kind: reqRebuild})
}

func (s *Stream) encode(bodies []*Body) ([]unit, error) {
	units := make([]unit, len(bodies))
	for i, b := range bodies {
		if b.Node == "" && s.j.opts.Node != "" {
			c := *b
			c.Node = s.j.opts.Node
			b = &c
		}
		p, err := EncodeBody(b)
		if err != nil {
			return nil, err
		}
		units[i] = unit{body: p, kind: b.Kind, subject: b.Subject}
	}
	return units, nil
}

// submit queues r and waits for its answer. A request whose context ends
// while it waits may still be committed; it is never reported committed
// when it was not.
func (s *Stream) submit(ctx context.Context, r *request) error {
	r.done = make(chan struct{})
	select {
	case s.reqs <- r:
	case <-s.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	case <-s.committerDone:
		select {
		case <-r.done:
			return r.err
		default:
			return ErrClosed // queued after the committer drained the queue
		}
	}
}

// run is the committer: it takes a request, gathers whatever else is
// queued into a group, and commits the group with one fsync. Groups of
// appends are pipelined: while one group's fsync runs, the next is built,
// and the first is settled (published and answered) before the second is
// handed to pebble (docs/events.md, "Storage").
func (s *Stream) run() {
	defer close(s.committerDone)
	for {
		var first *request
		switch {
		case s.pending != nil:
			first, s.pending = s.pending, nil
		case s.inflight != nil:
			select {
			case first = <-s.reqs:
			default:
				// Nothing to build meanwhile: wait for the fsync.
				s.settle()
				continue
			}
		default:
			select {
			case first = <-s.reqs:
			case <-s.stop:
				s.drain()
				return
			}
		}
		s.process(s.gather(first))
	}
}

// drain commits what was queued before Close.
func (s *Stream) drain() {
	defer s.settle()
	for {
		var first *request
		if s.pending != nil {
			first, s.pending = s.pending, nil
		} else {
			select {
			case first = <-s.reqs:
			default:
				return
			}
		}
		s.process(s.gather(first))
	}
}

func (s *Stream) gather(first *request) []*request {
	group := []*request{first}
	if first.kind == reqRebuild {
		return group
	}
	n := first.events()
	for n < s.j.opts.MaxGroupEvents {
		select {
		case r := <-s.reqs:
			if r.kind == reqRebuild {
				s.pending = r
				return group
			}
			group = append(group, r)
			n += r.events()
		default:
			return group
		}
	}
	return group
}

func answer(r *request, err error) {
	r.err = err
	close(r.done)
}

func (s *Stream) process(group []*request) {
	live := group[:0]
	for _, r := range group {
		switch {
		case r.ctx.Err() != nil:
			answer(r, r.ctx.Err())
		case s.failed != nil:
			answer(r, s.failed)
		default:
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return
	}
	if !pipelined(live) {
		s.settle()
		if s.failed != nil { // the group in flight failed: nothing may build on it
			s.fail(live, s.failed)
			return
		}
	}
	if live[0].kind == reqRebuild {
		answer(live[0], s.rebuild())
		return
	}
	if err := s.commitReserve(); err != nil {
		// Retention frees space, so it runs whatever the reserve says.
		kept := live[:0]
		for _, r := range live {
			if r.kind == reqPrune {
				kept = append(kept, r)
			} else {
				answer(r, err)
			}
		}
		live = kept
		if len(live) == 0 {
			return
		}
	}
	s.commitGroup(live)
}

func (s *Stream) checkReserve() error {
	_, err := s.readReserve()
	return err
}

// readReserve reads the free space and checks it against the reserve; free
// is 0 when it cannot be read.
func (s *Stream) readReserve() (free uint64, err error) {
	free, err = s.j.opts.DiskFree(s.dir)
	if err != nil {
		// Not knowing the free space must not stop the journal; pebble's
		// own errors still stop a write that cannot be made.
		s.log.Warn("cannot read free disk space", "dir", s.dir, "err", err)
		return 0, nil
	}
	if free < s.reserve {
		return free, &reserveError{dir: s.dir, free: free, reserve: s.reserve}
	}
	return free, nil
}

// Far from the reserve, the committer trusts a reading of the free space
// for a while instead of asking the file system before every group (a
// statfs cost a lone etcd put 2–5% of its time): for freeTrustFor, while
// the space it saw, less the margin and eight times the bytes committed
// since (for the WAL, the flush and compactions), is still above the
// reserve. Near the reserve every group reads it.
const (
	freeTrustFor    = 100 * time.Millisecond
	freeTrustMargin = 64 << 20
)

// freeReading is the committer's last reading of the free space.
type freeReading struct {
	at      time.Time
	free    uint64
	written uint64 // batch bytes committed since
	// trustFor, when set, replaces freeTrustFor (tests).
	trustFor time.Duration
}

// commitReserve is checkReserve for the committer, which may trust its
// last reading (freeTrustFor).
func (s *Stream) commitReserve() error {
	r := &s.freeSeen
	trust := freeTrustFor
	if r.trustFor > 0 {
		trust = r.trustFor
	}
	if !r.at.IsZero() && time.Since(r.at) < trust &&
		r.free > s.reserve+freeTrustMargin+8*r.written {
		return nil
	}
	free, err := s.readReserve()
	if free > 0 && s.j.opts.DiskFreeTrusted {
		*r = freeReading{at: time.Now(), free: free, trustFor: r.trustFor}
	}
	return err
}

// keptBatchBytes is the largest batch buffer pebble keeps for reuse: a
// logs stream's group (two or three forward messages of 500 1 KiB
// records) is 1–2 MiB, past pebble's 1 MB, and a fresh buffer for each
// group was a third of the daemon's page faults under forward load: on
// this project's VMs a first touch of a page costs ~15 µs.
const keptBatchBytes = 4 << 20

// built is a group's batch ready to commit.
type built struct {
	b    *pebble.Batch
	tip  tip
	raws []Raw
	reqs []*request
	// owed is the import record owed after this batch (nil: none),
	// which the committer keeps as the stream's once the batch is applied
	// (the next group is built on it; PendingImport moves once durable).
	owed *unit
	// ov holds the batch's projection writes for the cache (nil: no cache).
	ov *overlay
}

// build writes the group's events, indexes and folds into one batch. A
// request whose Decide fails writes nothing; one whose Fold fails (a bug in
// an engine) is dropped and the batch is built again without it.
func (s *Stream) build(group []*request) (*built, error) {
	now := s.j.opts.Now().UnixNano()
	for {
		bt, failed, err := s.buildOnce(group, now)
		if err != nil {
			return nil, err
		}
		if failed == nil {
			return bt, nil
		}
		var kept []*request
		for _, r := range group {
			if r != failed {
				kept = append(kept, r)
			}
		}
		group = kept
	}
}

func (s *Stream) buildOnce(group []*request, now int64) (bt *built, failed *request, err error) {
	var b *pebble.Batch
	if len(s.engines) > 0 {
		b = s.db.NewIndexedBatch()
	} else {
		// Sized for the appended events, so that a group of megabytes
		// is not copied again each time the batch doubles, and kept for
		// the next group up to keptBatchBytes (pebble keeps 1 MB).
		b = s.db.NewBatchWithSize(groupSize(group), pebble.WithMaxRetainedSizeBytes(keptBatchBytes))
	}
	bt = &built{b: b, tip: s.last, owed: s.owed, ov: s.pcache.overlay()}
	defer func() {
		if failed != nil || err != nil {
			_ = b.Close()
		}
	}()
	var kbuf []byte
	var idx []indexEntry // the group's index keys, written after its records
	for _, r := range group {
		r.committed, r.reply, r.err, r.planned, r.fold = r.committed[:0], nil, nil, nil, nil
		switch r.kind {
		case reqAppend:
			r.planned = r.units
		case reqPropose:
			v := &View{r: b, ov: bt.ov, prefix: projPrefix(r.engine.Name()), lastSeq: bt.tip.seq}
			dec, err := r.engine.Decide(v, r.req)
			if err != nil {
				r.err = err
				continue
			}
			units, err := s.encode(dec.Bodies)
			if err != nil {
				r.err = fmt.Errorf("engine %s: %w", r.engine.Name(), err)
				continue
			}
			r.planned, r.reply, r.fold = units, dec.Reply, dec.Fold
		case reqPrune:
			if err := s.planPrune(b, r); err != nil {
				r.err = err
				continue
			}
		case reqImport:
			if err := s.checkImport(bt.tip, r.imports); err != nil {
				r.err = err
				continue
			}
			if err := s.checkImportSignatures(r.imports, r.importOpts.Signatures); err != nil {
				r.err = err
				continue
			}
			if r.importOpts.Accept != nil {
				if err := r.importOpts.Accept(); err != nil {
					r.err = err
					continue
				}
			}
			bt.reqs = append(bt.reqs, r)
			if kbuf, err = s.buildImport(b, bt, r, kbuf); err != nil {
				if r.err != nil {
					return bt, r, nil // a fold failed
				}
				return nil, nil, err
			}
			r.planned = r.units // the After event follows the imported ones
			if err := s.planPending(b, bt, r); err != nil {
				return nil, nil, err
			}
		case reqSettle:
		}
		if r.kind != reqImport {
			bt.reqs = append(bt.reqs, r)
			// Nothing follows imported events before the record of their
			// import: an interrupted multi-part import gets it here.
			if bt.owed != nil && (len(r.planned) > 0 || r.kind == reqSettle) {
				if kbuf, err = s.putPending(b, bt, kbuf); err != nil {
					if errors.Is(err, errPendingFold) {
						r.err = err
						return bt, r, nil
					}
					return nil, nil, err
				}
			}
		}
		for i, u := range r.planned {
			t := bt.tip
			seq := t.seq + 1
			tm := max(now, t.time)
			h := ChainHash(s.name, seq, tm, t.hash, u.body)
			raw := Raw{Stream: s.name, Seq: seq, Record: EncodeRecord(tm, t.hash, h, u.body), kind: u.kind}
			kbuf = appendEventKey(kbuf[:0], seq)
			if err := b.Set(kbuf, raw.Record, nil); err != nil {
				return nil, nil, err
			}
			idx = append(idx, indexEntry{seq: seq, kind: u.kind, subject: u.subject})
			var known knownFold
			if r.fold != nil {
				known = knownFold{engine: r.engine.Name(), fold: r.fold, i: i}
			}
			if err := s.fold(b, bt.ov, &raw, known); err != nil {
				r.err = err
				return bt, r, nil
			}
			bt.raws = append(bt.raws, raw)
			r.committed = append(r.committed, Committed{Seq: seq, Time: tm, Hash: h})
			bt.tip = tip{seq: seq, time: tm, hash: h}
		}
	}
	if _, err := s.putIndexes(b, kbuf, idx); err != nil {
		return nil, nil, err
	}
	return bt, nil, nil
}

// indexEntry is one event's index keys to write.
type indexEntry struct {
	seq           int64
	kind, subject string
}

// putIndexes writes the kind index keys of events, then their subject
// index keys (except on a stream without that index). A group's keys are
// written after its records, and one index after the other, so that
// pebble inserts each run of them into the memtable in order: its
// skiplist inserter then finds each key's place next to the last one,
// where records and index keys in turn sent every insert searching from
// the top (BenchmarkCaptureAppend1K).
func (s *Stream) putIndexes(b *pebble.Batch, kbuf []byte, idx []indexEntry) ([]byte, error) {
	for _, e := range idx {
		kbuf = appendIndexKey(kbuf[:0], prefixKind, e.kind, e.seq)
		if err := b.Set(kbuf, nil, nil); err != nil {
			return kbuf, err
		}
	}
	if s.noSubjectIndex {
		return kbuf, nil
	}
	for _, e := range idx {
		if e.subject == "" {
			continue
		}
		kbuf = appendIndexKey(kbuf[:0], prefixSubject, e.subject, e.seq)
		if err := b.Set(kbuf, nil, nil); err != nil {
			return kbuf, err
		}
	}
	return kbuf, nil
}

// groupSize estimates the bytes a batch of group's appended events takes:
// each record (header and body) under its key, and its index keys.
func groupSize(group []*request) int {
	n := 0
	for _, r := range group {
		for _, u := range r.units {
			n += recordHeaderLen + len(u.body) + 2*len(u.kind) + 2*len(u.subject) + 64
		}
	}
	return n
}

// put writes one event's record and its index keys (putIndexes) into b:
// an imported event, or an import's record. A group's appended events are
// written by buildOnce, their index keys after all their records.
func (s *Stream) put(b *pebble.Batch, kbuf []byte, raw *Raw, kind, subject string) ([]byte, error) {
	kbuf = appendEventKey(kbuf[:0], raw.Seq)
	if err := b.Set(kbuf, raw.Record, nil); err != nil {
		return kbuf, err
	}
	return s.putIndexes(b, kbuf, []indexEntry{{seq: raw.Seq, kind: kind, subject: subject}})
}

// knownFold is the Decision.Fold of the engine that decided an event (its
// body i), or nothing (fold nil).
type knownFold struct {
	engine string
	fold   func(t *Txn, i int, seq int64) error
	i      int
}

// fold applies every engine's Fold to one event, decoded from its stored
// bytes exactly as Rebuild decodes it (or FoldRaw, for an engine that
// decodes the stored bytes itself); the engine that decided the event, if
// its Decision has a Fold (known), folds it from what it knew instead.
func (s *Stream) fold(b *pebble.Batch, ov *overlay, raw *Raw, known knownFold) error {
	var ev *Event
	for _, e := range s.engines {
		decided := known.fold != nil && e.Name() == known.engine
		if !decided {
			wants, err := foldsKind(e, raw)
			if err != nil {
				return err
			}
			if !wants {
				continue
			}
		}
		t := &Txn{View: View{r: b, ov: ov, prefix: projPrefix(e.Name()), lastSeq: raw.Seq}, b: b}
		var err error
		switch rf, isRaw := e.(RawFolder); {
		case decided:
			err = known.fold(t, known.i, raw.Seq)
		case isRaw:
			if err := CheckRecord(raw.Record); err != nil {
				return fmt.Errorf("%s seq %d: %w", raw.Stream, raw.Seq, err)
			}
			err = rf.FoldRaw(t, raw)
		default:
			if ev == nil {
				if ev, err = raw.Decode(); err != nil {
					return err
				}
			}
			err = e.Fold(t, ev)
		}
		if err != nil {
			kind, _ := raw.Kind()
			return fmt.Errorf("engine %s: fold %s seq %d: %w", e.Name(), kind, raw.Seq, err)
		}
	}
	return nil
}

// foldsKind reports whether e folds raw's kind (every kind, unless it is a
// KindFilter).
func foldsKind(e Engine, raw *Raw) (bool, error) {
	kf, ok := e.(KindFilter)
	if !ok {
		return true, nil
	}
	kind, err := raw.Kind()
	if err != nil {
		return false, err
	}
	return kf.FoldsKind(kind), nil
}

// commitGroup builds the group while the group before it (if any) is
// being made durable, settles that one, and hands this one to pebble. A
// group of appends is left in flight: its fsync runs while the committer
// builds the next group. Any other is settled at once.
//
// A group is built on the state the groups before it leave, durable or not,
// and answered only once they and it are durable: if one's fsync fails, the
// stream stops, and no later group is written or acknowledged.
func (s *Stream) commitGroup(group []*request) {
	bt, err := s.build(group)
	s.settle()
	if s.failed != nil {
		if err == nil {
			_ = bt.b.Close()
		}
		s.fail(group, s.failed)
		return
	}
	if err != nil {
		s.fail(group, fmt.Errorf("build %s batch: %w", s.name, err))
		return
	}
	if bt.b.Empty() {
		_ = bt.b.Close()
		for _, r := range group {
			answer(r, r.err)
		}
		return
	}
	// Counted before the apply: pebble takes over a batch larger than
	// half a memtable and empties it.
	size := uint64(bt.b.Len())
	start := time.Now()
	if err := s.db.ApplyNoSyncWait(bt.b, pebble.Sync); err != nil {
		s.stopAfter(group, err)
		return
	}
	// The next group is built on this one: the tip, the import owed and
	// the cached projection move on now.
	s.freeSeen.written += size
	bt.ov.commit()
	s.last = bt.tip
	s.owed = bt.owed
	s.inflight = &inflight{bt: bt, group: group, start: start}
	if !pipelined(group) {
		// Answered now, as before pipelining: the next group is gathered
		// once this one is durable, from all that queued meanwhile.
		s.settle()
	}
}

// inflight is a group handed to pebble whose fsync is not yet waited for.
type inflight struct {
	bt    *built
	group []*request
	start time.Time
}

// settle waits for the in-flight group's fsync, then publishes and answers
// it.
func (s *Stream) settle() {
	f := s.inflight
	if f == nil {
		return
	}
	s.inflight = nil
	if err := f.bt.b.SyncWait(); err != nil {
		s.stopAfter(f.group, err)
		return
	}
	s.cstats.observeCommit(time.Since(f.start), len(f.bt.raws))
	bt := f.bt
	_ = bt.b.Close()
	s.owedKnown.Store(bt.owed != nil)
	s.publish(bt)
	s.signer.note(bt.tip)
	s.commits.Add(1)
	for _, r := range f.group {
		if r.err != nil {
			r.committed = nil
		}
		answer(r, r.err)
	}
}

// stopAfter stops the stream after a failed write and answers group.
func (s *Stream) stopAfter(group []*request, err error) {
	// The batch may be in the memtable though not durable; nothing past
	// the durable seq is ever shown, and the stream takes no more writes,
	// so a restart recovers exactly what the WAL holds.
	s.failed = fmt.Errorf("%s stream stopped after a write error; restart cairn: %w", s.name, err)
	s.log.Error("commit failed", "err", err)
	for _, r := range group {
		answer(r, s.failed)
	}
}

// pipelined reports whether group may be built while the group in flight
// is being made durable: a group of appends, whose build reads only the
// chain's tip and the engines' state the groups before it left. Engine
// proposals are not: under 64 KV writers it made groups smaller and a put
// costlier (51–53 CPU-µs against 44–46, BenchmarkPutParallel64) for no more
// puts a second. A retention pass, an import or a rebuild reads the stream
// as a whole and waits for durable state.
func pipelined(group []*request) bool {
	for _, r := range group {
		if r.kind != reqAppend {
			return false
		}
	}
	return true
}

// applySynced commits b durably: ApplyNoSyncWait and SyncWait rather than
// Apply, as pebble hands a failed WAL write or fsync back to SyncWait as an
// error, where Apply would call Logger.Fatalf.
func applySynced(db *pebble.DB, b *pebble.Batch) error {
	if err := db.ApplyNoSyncWait(b, pebble.Sync); err != nil {
		return err
	}
	return b.SyncWait()
}

func (s *Stream) fail(group []*request, err error) {
	for _, r := range group {
		answer(r, err)
	}
}

// publish makes the group visible: the new durable seq, a snapshot at it,
// and the live events to subscribers, all under s.mu so a subscription
// switching from catch-up to live sees either all of it or none.
func (s *Stream) publish(bt *built) {
	st := &snapState{s: s, snap: s.db.NewSnapshot(), seq: bt.tip.seq}
	st.refs.Store(1)
	var newFirst int64
	for _, r := range bt.reqs {
		if r.err == nil && r.newFirst > 0 {
			newFirst = r.newFirst
		}
	}
	s.mu.Lock()
	old := s.cur
	s.cur = st
	s.snaps[st] = struct{}{}
	if newFirst > 0 {
		s.first.Store(newFirst)
	} else if s.first.Load() == 0 && len(bt.raws) > 0 {
		s.first.Store(bt.raws[0].Seq)
	}
	s.durable.Store(bt.tip.seq)
	if len(s.subs) > 0 && len(bt.raws) > 0 {
		raws := make([]*Raw, len(bt.raws))
		for i := range bt.raws {
			// Every subscriber gets the same *Raw: encode its JSON once.
			bt.raws[i].shared = new(rawCache)
			raws[i] = &bt.raws[i]
		}
		for sub := range s.subs {
			sub.deliver(raws)
		}
	}
	s.mu.Unlock()
	if old != nil {
		old.release()
	}
}

// rebuild drops the projections and refolds every stored event in one
// batch, so a crash leaves either the old or the new projection.
func (s *Stream) rebuild() error {
	if len(s.engines) == 0 {
		return nil
	}
	b := s.db.NewIndexedBatch()
	defer b.Close()
	if err := b.DeleteRange(prefixProj, PrefixEnd(prefixProj), nil); err != nil {
		return err
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefixEvent, UpperBound: PrefixEnd(prefixEvent)})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		seq, err := seqOfEventKey(it.Key())
		if err != nil {
			_ = it.Close()
			return err
		}
		raw := Raw{Stream: s.name, Seq: seq, Record: it.Value()}
		if err := s.fold(b, nil, &raw, knownFold{}); err != nil {
			_ = it.Close()
			return fmt.Errorf("rebuild: %w", err)
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return err
	}
	s.freeSeen.written += uint64(b.Len())
	if err := s.db.ApplyNoSyncWait(b, pebble.Sync); err != nil {
		return err
	}
	if err := b.SyncWait(); err != nil {
		s.failed = fmt.Errorf("%s stream stopped after a write error; restart cairn: %w", s.name, err)
		return s.failed
	}
	s.pcache.clear()
	s.publish(&built{tip: s.last})
	return nil
}
