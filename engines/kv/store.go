package kv

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/journal"
)

// Options configures a Store.
type Options struct {
	// Now is the clock lease deadlines are measured on; default time.Now.
	// It should be the journal's clock: deadlines count from commit times.
	Now func() time.Time
	// Logger receives the store's messages; default slog.Default().
	Logger *slog.Logger
	// ExpiryEvery is how often the lease loop looks for due leases
	// (default 100ms).
	ExpiryEvery time.Duration
}

// Store is the KV engine's API: etcd's KV, Watch and Lease operations on
// the audit stream. Writes go through the stream's commit pipeline (Decide
// and Fold); reads use durable snapshots.
type Store struct {
	eng  *engine
	now  func() time.Time
	log  *slog.Logger
	tick time.Duration

	st       *journal.Stream
	loopDone chan struct{}
	hub      *watchHub // the synced watches, fed by one subscription

	// etcdHonourCompaction: the etcd API answers ErrCompacted below the
	// latest compaction (--etcd-honour-compaction).
	etcdHonourCompaction atomic.Bool

	mu     sync.Mutex
	leases map[int64]*leaseMem

	newID func() int64 // lease ids for LeaseGrant(id 0); tests make them predictable

	revCache atomic.Pointer[revCache]
}

// leaseMem is a live lease's deadline. covered is the deadline the journal
// records (grant or last checkpoint): a keepalive past it writes a
// checkpoint, so a restart never expires a lease early.
type leaseMem struct {
	granted  int64
	deadline time.Time
	covered  time.Time
	inFlight bool // a checkpoint is being written
}

// New returns a Store; its Engine must be passed to journal.Open, then
// Start binds it to the journal.
func New(opts Options) *Store {
	s := &Store{now: opts.Now, log: opts.Logger, tick: opts.ExpiryEvery, leases: map[int64]*leaseMem{}}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.tick <= 0 {
		s.tick = 100 * time.Millisecond
	}
	s.eng = &engine{due: s.due}
	s.etcdHonourCompaction.Store(true) // docs/kv.md, Compaction: etcd clients rely on ErrCompacted
	s.newID = randomID
	return s
}

func randomID() int64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return int64(binary.BigEndian.Uint64(b[:]) >> 1)
}

// Engine returns the journal engine to fold the audit stream with.
func (s *Store) Engine() journal.Engine { return s.eng }

// Start binds the store to j's audit stream, loads the lease deadlines,
// expires the overdue ones and starts the expiry loop, which runs until
// ctx ends.
func (s *Store) Start(ctx context.Context, j *journal.Journal) error {
	s.st = j.Stream(journal.Audit)
	if s.st == nil {
		return errors.New("kv: the journal has no audit stream")
	}
	sn := s.st.Snapshot()
	if err := s.loadRevFloor(sn); err != nil {
		sn.Close()
		return fmt.Errorf("kv: load the KV revision: %w", err)
	}
	err := sn.Iter(Name, pfxLease, []byte("l0"), func(k, v []byte) error {
		l, err := decodeLease(v)
		if err != nil {
			return err
		}
		id := int64(binary.BigEndian.Uint64(k[len(pfxLease):]))
		d := time.Unix(0, l.Base).Add(time.Duration(l.Remaining) * time.Second)
		s.leases[id] = &leaseMem{granted: l.Granted, deadline: d, covered: d}
		return nil
	})
	sn.Close()
	if err != nil {
		return fmt.Errorf("kv: load leases: %w", err)
	}
	if err := s.expireDue(ctx); err != nil {
		return fmt.Errorf("kv: expire overdue leases: %w", err)
	}
	s.hub = newWatchHub(s.st.DurableSeq() + 1)
	go s.hub.run(ctx, s.st)
	s.loopDone = make(chan struct{})
	go s.loop(ctx)
	return nil
}

// loadRevFloor finds the KV revision of a projection folded before the
// projection recorded it: the newest revision of the history index (one
// pass over it, once). The next write records it.
func (s *Store) loadRevFloor(sn *journal.Snapshot) error {
	if _, ok, err := sn.Get(Name, keyKVRev); err != nil || ok {
		return err
	}
	var top int64
	err := sn.Iter(Name, pfxHist, []byte("h0"), func(k, _ []byte) error {
		_, rev, err := parseHistKey(k)
		top = max(top, rev)
		return err
	})
	s.eng.revFloor.Store(top)
	return err
}

// Stop waits for the expiry loop, which ends with Start's context, then
// (the daemon calls it after its listeners closed and its requests
// drained, so no keepalive can follow) expires the leases that fell due
// and records the exact remaining TTL of every lease whose journaled
// deadline is later than its real one: after a clean stop a lease expires
// on time (within a second), while after a crash it may live up to TTL/2
// past its last keepalive's deadline (docs/kv.md, Leases).
func (s *Store) Stop() {
	if s.loopDone == nil {
		return
	}
	<-s.loopDone
	s.loopDone = nil
	<-s.hub.done
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.expireDue(ctx); err != nil {
		s.log.Error("expire leases at stop", "err", err)
	}
	if err := s.checkpointExact(ctx); err != nil {
		s.log.Error("checkpoint leases at stop", "err", err)
	}
}

// checkpointExact writes a lease.checkpoint for every live lease whose
// journaled deadline (covered) is a second or more past its real one. The
// TTL recorded is the remaining time rounded up to a second, counted from
// the checkpoint's commit time, which is not before now: never early, at
// most a second late.
func (s *Store) checkpointExact(ctx context.Context) error {
	now := s.now()
	var list []leaseTTL
	s.mu.Lock()
	for id, l := range s.leases {
		if now.Before(l.deadline) && l.covered.Sub(l.deadline) >= time.Second {
			list = append(list, leaseTTL{id: id, ttl: ceilSeconds(l.deadline.Sub(now))})
		}
	}
	s.mu.Unlock()
	if len(list) == 0 {
		return nil
	}
	sort.Slice(list, func(i, j int) bool { return list[i].id < list[j].id })
	_, _, err := s.propose(ctx, &stopCheckpointReq{leases: list})
	return err
}

func (s *Store) loop(ctx context.Context) {
	defer close(s.loopDone)
	t := time.NewTicker(s.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.expireDue(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("expire leases", "err", err)
			}
		}
	}
}

// due reports whether lease id has reached its deadline (or is unknown).
func (s *Store) due(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.leases[id]
	return l == nil || !s.now().Before(l.deadline)
}

// expireDue proposes a lease.expire for every lease past its deadline.
func (s *Store) expireDue(ctx context.Context) error {
	now := s.now()
	var due []int64
	s.mu.Lock()
	for id, l := range s.leases {
		if !now.Before(l.deadline) {
			due = append(due, id)
		}
	}
	s.mu.Unlock()
	sort.Slice(due, func(i, j int) bool { return due[i] < due[j] })
	for _, id := range due {
		committed, reply, err := s.st.Propose(ctx, Name, &expireReq{id: id})
		if err != nil {
			return fmt.Errorf("expire lease %s: %w", FormatLeaseID(id), err)
		}
		if keep, _ := reply.(bool); !keep {
			// Expired now, or gone from the projection already (revoked).
			s.mu.Lock()
			delete(s.leases, id)
			s.mu.Unlock()
		}
		if len(committed) > 0 {
			s.log.Debug("lease expired", "lease", FormatLeaseID(id), "seq", committed[0].Seq)
		}
	}
	return nil
}

// Rev returns the current KV revision: the seq of the last durable event
// that changed a key (lease grants and checkpoints, other engines' events
// take seqs of the audit stream but do not move it). 0 until a key is
// written; on an error reading it, the durable seq.
func (s *Store) Rev() int64 {
	sn := s.st.Snapshot()
	defer sn.Close()
	rev, err := s.kvRevAt(sn)
	if err != nil {
		s.log.Error("read the KV revision", "err", err)
		return sn.Seq()
	}
	return rev
}

// DBSize is the size on disk of the audit stream that holds the KV, as
// etcd's endpoint status reports its database size.
func (s *Store) DBSize() int64 { return s.st.Stats().Bytes }

func (s *Store) propose(ctx context.Context, req any) ([]journal.Committed, any, error) {
	if s.st == nil {
		return nil, nil, wire.Errorf(wire.Unavailable, "kv store not started")
	}
	return s.st.Propose(ctx, Name, req)
}

// Put writes one key.
func (s *Store) Put(ctx context.Context, actor journal.Actor, r PutRequest) (PutResponse, error) {
	committed, reply, err := s.propose(ctx, &putReq{actor: actor, r: r})
	if err != nil {
		return PutResponse{}, err
	}
	resp := reply.(*PutResponse)
	resp.Rev = committed[0].Seq
	return *resp, nil
}

// Delete deletes one key or a range. Deleting nothing writes no event and
// answers the current revision.
func (s *Store) Delete(ctx context.Context, actor journal.Actor, r DeleteRequest) (DeleteResponse, error) {
	committed, reply, err := s.propose(ctx, &deleteReq{actor: actor, r: r})
	if err != nil {
		return DeleteResponse{}, err
	}
	resp := reply.(*DeleteResponse)
	if len(committed) > 0 {
		resp.Rev = committed[0].Seq
	}
	return *resp, nil
}

// Txn runs a transaction as one revision. A txn that writes nothing writes
// no event and answers the current revision.
func (s *Store) Txn(ctx context.Context, actor journal.Actor, r TxnRequest) (TxnResponse, error) {
	committed, reply, err := s.propose(ctx, &txnReq{actor: actor, r: r})
	if err != nil {
		return TxnResponse{}, err
	}
	resp := reply.(*TxnResponse)
	if len(committed) > 0 {
		resp.setRev(committed[0].Seq)
	}
	return *resp, nil
}

// Range reads keys from the durable state; r.Rev > 0 answers from history.
// The answer's Rev is the current KV revision, as etcd's header.
func (s *Store) Range(ctx context.Context, r RangeRequest) (RangeResponse, error) {
	if err := checkRange(&r); err != nil {
		return RangeResponse{}, err
	}
	if s.st == nil {
		return RangeResponse{}, wire.Errorf(wire.Unavailable, "kv store not started")
	}
	sn := s.st.Snapshot()
	defer sn.Close()
	cur := sn.Seq()
	if r.Rev > cur {
		return RangeResponse{}, fmt.Errorf("revision %d (current %d): %w", r.Rev, cur, ErrFutureRev)
	}
	rev, err := s.kvRevAt(sn)
	if err != nil {
		return RangeResponse{}, err
	}
	var kvs []KeyValue
	if r.Rev == 0 || r.Rev >= rev {
		// Nothing changed a key since rev: the state at r.Rev is the
		// current one.
		kvs, err = newEval(snapReader{sn}, cur).rangeKVs(r.Key, r.End)
	} else {
		kvs, err = rangeAt(ctx, snapReader{sn}, r.Key, r.End, r.Rev)
	}
	if err != nil {
		return RangeResponse{}, err
	}
	return *shapeRange(kvs, &r, rev), nil
}

// revCache is the KV revision at one durable seq, so that reads at an
// unchanged seq do not look it up again.
type revCache struct{ seq, rev int64 }

// kvRevAt returns the KV revision as of snapshot sn.
func (s *Store) kvRevAt(sn *journal.Snapshot) (int64, error) {
	seq := sn.Seq()
	if c := s.revCache.Load(); c != nil && c.seq == seq {
		return c.rev, nil
	}
	rev, err := s.eng.kvRev(snapReader{sn}, seq)
	if err != nil {
		return 0, err
	}
	s.revCache.Store(&revCache{seq: seq, rev: rev})
	return rev, nil
}

// rangeAt reads [key, end) as it was at rev from the history index: per
// key, the latest version at or before rev, unless that is a delete.
func rangeAt(ctx context.Context, r reader, key, end []byte, rev int64) ([]KeyValue, error) {
	var out []KeyValue
	err := eachAt(ctx, r, key, end, rev, func(kv KeyValue) error {
		out = append(out, kv)
		return nil
	})
	return out, err
}

// eachAt calls fn with each key of [key, end) as it was at rev, in key
// order, reading the history index.
func eachAt(ctx context.Context, r reader, key, end []byte, rev int64, fn func(KeyValue) error) error {
	lo, hi := histRangeBounds(key, end)
	if end == nil {
		hi = histKey(key, rev+1)
	}
	var (
		curKey  []byte
		last    []byte // value of the latest version <= rev of curKey
		haveKey bool
		n       int
	)
	flush := func() error {
		if haveKey && last != nil && last[0] == 'p' {
			kv, err := decodeKV(curKey, last[1:])
			if err != nil {
				return err
			}
			return fn(kv)
		}
		return nil
	}
	err := r.Iter(lo, hi, func(k, v []byte) error {
		if n++; n&4095 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		uk, vrev, err := parseHistKey(k)
		if err != nil {
			return err
		}
		if !haveKey || string(uk) != string(curKey) {
			if err := flush(); err != nil {
				return err
			}
			curKey, last, haveKey = uk, nil, true
		}
		if vrev <= rev {
			last = append(last[:0], v...)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// Version is one version of a key in its history: a put, or a delete
// (Deleted, with only Key and ModRev set).
type Version struct {
	KeyValue
	Deleted bool
}

// History calls fn with each version of key, oldest first (newest first
// with reverse), at most limit of them (0: all), read from the history
// index a bounded page at a time: memory does not grow with the history,
// and fn runs outside any journal read (it may block on a slow client).
// The Version is only valid during the call. A reverse read with a limit
// reads about limit versions, however long the history.
func (s *Store) History(ctx context.Context, key []byte, limit int, reverse bool, fn func(*Version) error) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if s.st == nil {
		return wire.Errorf(wire.Unavailable, "kv store not started")
	}
	sn := s.st.Snapshot()
	defer sn.Close()
	return history(ctx, snapReader{sn}, sn.Seq(), key, limit, reverse, fn)
}

// History pages: at most histPageMax versions and about histPageBytes of
// values are held at once.
const (
	histPageMax   = 256
	histPageBytes = 4 << 20
)

type histEntry struct {
	rev int64
	val []byte
}

// histPage reads key's versions in [lower, upper) (history keys), oldest
// first, into buf until it holds max entries or histPageBytes; more
// reports that the range holds versions after the last one read.
func histPage(r reader, lower, upper []byte, max int, buf []histEntry) (out []histEntry, more bool, err error) {
	out, size := buf[:0], 0
	err = r.Iter(lower, upper, func(k, v []byte) error {
		if len(out) >= max || size >= histPageBytes {
			more = true
			return errStop
		}
		_, rev, err := parseHistKey(k)
		if err != nil {
			return err
		}
		out = append(out, histEntry{rev: rev, val: append([]byte(nil), v...)})
		size += len(v)
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return out, more, err
}

func histVersion(key []byte, e *histEntry) (Version, error) {
	if len(e.val) > 0 && e.val[0] == 'p' {
		kv, err := decodeKV(key, e.val[1:])
		return Version{KeyValue: kv}, err
	}
	return Version{KeyValue: KeyValue{Key: append([]byte(nil), key...), ModRev: e.rev}, Deleted: true}, nil
}

// history pages through key's versions up to revision cur; see History.
//
// Forward, each page seeks past the last revision read. The journal's
// snapshots iterate forward only, so reverse reads revision windows
// [hi-span, hi) from the newest down, emitting each newest first: the
// first window is limit revisions wide (the history index is dense when
// the key is hot), empty or thin windows widen it, and a window holding
// more than a page is narrowed and read again.
func history(ctx context.Context, r reader, cur int64, key []byte, limit int, reverse bool, fn func(*Version) error) error {
	lo, hi := histRangeBounds(key, nil)
	n := 0
	want := func() int {
		if limit > 0 {
			return min(limit-n, histPageMax)
		}
		return histPageMax
	}
	emit := func(e *histEntry) error {
		v, err := histVersion(key, e)
		if err != nil {
			return err
		}
		n++
		return fn(&v)
	}
	var buf []histEntry
	if !reverse {
		lower := lo
		for limit == 0 || n < limit {
			if err := ctx.Err(); err != nil {
				return err
			}
			page, more, err := histPage(r, lower, hi, want(), buf)
			if err != nil {
				return err
			}
			for i := range page {
				if err := emit(&page[i]); err != nil {
					return err
				}
			}
			if !more || len(page) == 0 {
				return nil
			}
			lower = histKey(key, page[len(page)-1].rev+1)
			buf = page[:0]
		}
		return nil
	}
	// The oldest version bounds the walk down.
	first, _, err := histPage(r, lo, hi, 1, nil)
	if err != nil || len(first) == 0 {
		return err
	}
	oldest := first[0].rev
	top := cur + 1
	span := int64(want())
	for top > oldest && (limit == 0 || n < limit) {
		if err := ctx.Err(); err != nil {
			return err
		}
		bottom := max(oldest, top-span)
		page, more, err := histPage(r, histKey(key, bottom), histKey(key, top), histPageMax, buf)
		if err != nil {
			return err
		}
		buf = page[:0]
		if more {
			// Too many (or too large) versions in the window: narrow it
			// to half of what filled a page and read it again.
			span = max(1, min(span/2, (page[len(page)-1].rev-bottom+1)/2))
			continue
		}
		for i := len(page) - 1; i >= 0 && (limit == 0 || n < limit); i-- {
			if err := emit(&page[i]); err != nil {
				return err
			}
		}
		top = bottom
		switch {
		case len(page) == 0:
			span *= 4
		case len(page) < want()/2:
			span *= 2
		}
		span = min(span, 1<<40)
	}
	return nil
}

// LeaseGrant grants a lease of ttl seconds, at least MinLeaseTTL (a
// shorter one, 0 or less included, gets MinLeaseTTL, as etcd's does); id 0
// picks a fresh random id.
func (s *Store) LeaseGrant(ctx context.Context, actor journal.Actor, id, ttl int64) (Lease, error) {
	if id < 0 {
		return Lease{}, wire.Errorf(wire.InvalidArgument, "lease id must be positive")
	}
	ttl = max(ttl, MinLeaseTTL)
	pick := id == 0
	for attempt := 0; ; attempt++ {
		if pick {
			if id = s.newID(); id == 0 {
				continue
			}
		}
		committed, reply, err := s.propose(ctx, &grantReq{actor: actor, id: id, ttl: ttl})
		if err != nil {
			if pick && errors.Is(err, ErrLeaseExists) && attempt < 8 {
				continue
			}
			return Lease{}, err
		}
		l := *reply.(*Lease)
		d := time.Unix(0, committed[0].Time).Add(time.Duration(ttl) * time.Second)
		s.mu.Lock()
		s.leases[id] = &leaseMem{granted: ttl, deadline: d, covered: d}
		s.mu.Unlock()
		return l, nil
	}
}

// LeaseRevoke ends a lease and deletes its keys in one revision, and
// returns the seq of its lease.revoke event.
func (s *Store) LeaseRevoke(ctx context.Context, actor journal.Actor, id int64) (int64, error) {
	seq, _, err := s.revoke(ctx, actor, id)
	return seq, err
}

// LeaseRevokeKV is LeaseRevoke answering the KV revision after the revoke,
// as etcd's header: the revoke's seq when it deleted keys, else the KV
// revision unchanged.
func (s *Store) LeaseRevokeKV(ctx context.Context, actor journal.Actor, id int64) (int64, error) {
	_, rev, err := s.revoke(ctx, actor, id)
	return rev, err
}

func (s *Store) revoke(ctx context.Context, actor journal.Actor, id int64) (seq, kvRev int64, err error) {
	committed, reply, err := s.propose(ctx, &revokeReq{actor: actor, id: id})
	if err != nil {
		return 0, 0, err
	}
	s.mu.Lock()
	delete(s.leases, id)
	s.mu.Unlock()
	return committed[0].Seq, reply.(int64), nil
}

// LeaseKeepAlive renews a lease for its granted TTL. It writes a
// lease.checkpoint only when the renewed deadline passes the one the
// journal records, which covers TTL/2 of keepalives ahead: at most one
// checkpoint per TTL/2.
func (s *Store) LeaseKeepAlive(ctx context.Context, actor journal.Actor, id int64) (Lease, error) {
	now := s.now()
	s.mu.Lock()
	l := s.leases[id]
	if l == nil || !now.Before(l.deadline) {
		s.mu.Unlock()
		return Lease{ID: id, TTL: -1}, fmt.Errorf("lease %s: %w", FormatLeaseID(id), ErrLeaseNotFound)
	}
	granted := l.granted
	l.deadline = now.Add(time.Duration(granted) * time.Second)
	need := l.deadline.After(l.covered) && !l.inFlight
	if need {
		l.inFlight = true
	}
	s.mu.Unlock()
	if need {
		ahead := granted + (granted+1)/2
		committed, _, err := s.propose(ctx, &checkpointReq{actor: actor, id: id, ttl: ahead})
		s.mu.Lock()
		if l := s.leases[id]; l != nil {
			l.inFlight = false
			if err == nil {
				l.covered = time.Unix(0, committed[0].Time).Add(time.Duration(ahead) * time.Second)
			}
		}
		if errors.Is(err, ErrLeaseNotFound) {
			delete(s.leases, id)
		}
		s.mu.Unlock()
		if err != nil {
			return Lease{ID: id, TTL: -1}, err
		}
	}
	return Lease{ID: id, TTL: granted, GrantedTTL: granted}, nil
}

// LeaseTimeToLive reports a lease's remaining TTL (rounded up to a second)
// and, with keys, the keys attached to it. A missing or expired lease is
// ErrLeaseNotFound, with TTL -1 in the Lease returned beside it.
func (s *Store) LeaseTimeToLive(ctx context.Context, id int64, keys bool) (Lease, error) {
	now := s.now()
	s.mu.Lock()
	l := s.leases[id]
	var out Lease
	if l != nil && now.Before(l.deadline) {
		out = Lease{ID: id, TTL: ceilSeconds(l.deadline.Sub(now)), GrantedTTL: l.granted}
	}
	s.mu.Unlock()
	if out.ID == 0 {
		return Lease{ID: id, TTL: -1}, fmt.Errorf("lease %s: %w", FormatLeaseID(id), ErrLeaseNotFound)
	}
	if keys {
		sn := s.st.Snapshot()
		ks, err := leaseKeys(snapReader{sn}, id)
		sn.Close()
		if err != nil {
			return Lease{}, err
		}
		out.Keys = ks
	}
	return out, nil
}

func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// Leases lists the live leases by id.
func (s *Store) Leases(ctx context.Context) ([]Lease, error) {
	now := s.now()
	s.mu.Lock()
	out := make([]Lease, 0, len(s.leases))
	for id, l := range s.leases {
		if now.Before(l.deadline) {
			out = append(out, Lease{ID: id, TTL: ceilSeconds(l.deadline.Sub(now)), GrantedTTL: l.granted})
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// HashKV returns a hash of the KV state at revision rev (0: the current
// one) and the KV revision it describes: CRC-32C (Castagnoli, as etcd's
// HashKV) over every live key in key order, each as be64(len(key)) key
// be64(len(value)) value be64(create_rev) be64(mod_rev) be64(version)
// be64(lease). It depends only on the state, so it is the same before and
// after a restart or a rebuild, and at any revision between two changes.
func (s *Store) HashKV(ctx context.Context, rev int64) (hash uint32, at int64, err error) {
	if s.st == nil {
		return 0, 0, wire.Errorf(wire.Unavailable, "kv store not started")
	}
	if rev < 0 {
		return 0, 0, wire.Errorf(wire.InvalidArgument, "revision %d is negative", rev)
	}
	sn := s.st.Snapshot()
	defer sn.Close()
	if rev > sn.Seq() {
		return 0, 0, fmt.Errorf("revision %d (current %d): %w", rev, sn.Seq(), ErrFutureRev)
	}
	cur, err := s.kvRevAt(sn)
	if err != nil {
		return 0, 0, err
	}
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	var buf []byte
	add := func(kv KeyValue) error {
		buf = binary.BigEndian.AppendUint64(buf[:0], uint64(len(kv.Key)))
		buf = append(buf, kv.Key...)
		buf = binary.BigEndian.AppendUint64(buf, uint64(len(kv.Value)))
		buf = append(buf, kv.Value...)
		for _, n := range []int64{kv.CreateRev, kv.ModRev, kv.Version, kv.Lease} {
			buf = binary.BigEndian.AppendUint64(buf, uint64(n))
		}
		h.Write(buf)
		return nil
	}
	all, end := []byte{0}, []byte{0}
	if rev == 0 || rev >= cur {
		rev = cur
		lo, hi := curBounds(all, end)
		n := 0
		err = snapReader{sn}.Iter(lo, hi, func(k, v []byte) error {
			if n++; n&4095 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			kv, err := decodeKV(k[len(pfxCur):], v)
			if err != nil {
				return err
			}
			return add(kv)
		})
	} else {
		err = eachAt(ctx, snapReader{sn}, all, end, rev, add)
	}
	if err != nil {
		return 0, 0, err
	}
	return h.Sum32(), rev, nil
}

// SpaceShort returns the error an append to the audit stream would fail
// with now for the free-space reserve (matching
// journal.ErrResourceExhausted), or nil: etcd's NOSPACE condition.
func (s *Store) SpaceShort() error {
	if s.st == nil {
		return nil
	}
	return s.st.ReserveShort()
}

// Compact records an etcd compaction at rev as a kv.compact event and
// returns the KV revision (which a compaction does not move). Nothing is
// dropped: history stays readable through cairn's verbs, and the etcd API
// answers ErrCompacted below rev only when it honours compaction
// (HonoursCompaction). A rev at or below the latest compaction's is a
// *CompactedError, one past the journal's tip ErrFutureRev, as in etcd.
func (s *Store) Compact(ctx context.Context, actor journal.Actor, rev int64, physical bool) (int64, error) {
	_, reply, err := s.propose(ctx, &compactReq{actor: actor, rev: rev, physical: physical})
	if err != nil {
		return 0, err
	}
	return reply.(int64), nil
}

// CompactRev returns the revision of the latest kv.compact, -1 when there
// was none.
func (s *Store) CompactRev() int64 {
	if s.st == nil {
		return -1
	}
	sn := s.st.Snapshot()
	defer sn.Close()
	rev, err := compactRev(snapReader{sn})
	if err != nil {
		s.log.Error("read the compact revision", "err", err)
		return -1
	}
	return rev
}

// HonoursCompaction reports whether the etcd API answers ErrCompacted for
// reads and watches below the latest compaction (--etcd-honour-compaction).
func (s *Store) HonoursCompaction() bool { return s.etcdHonourCompaction.Load() }

// SetHonourCompaction sets HonoursCompaction (default true).
func (s *Store) SetHonourCompaction(on bool) { s.etcdHonourCompaction.Store(on) }

// Defragment compacts the audit stream that holds the KV (a pebble manual
// compaction), as etcd's defragment rewrites its database file. History
// stays: nothing is dropped but what pebble already superseded.
func (s *Store) Defragment(ctx context.Context) error {
	if s.st == nil {
		return wire.Errorf(wire.Unavailable, "kv store not started")
	}
	return s.st.Compact(ctx)
}
