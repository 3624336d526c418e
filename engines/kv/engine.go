package kv

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync/atomic"
	"unicode/utf8"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/journal"
)

// Name is the engine's name: its projection lives under "p/kv/" of the
// audit stream.
const Name = "kv"

// MaxLeaseTTL is the longest lease TTL in seconds (etcd's MaxLeaseTTL).
const MaxLeaseTTL = 9_000_000_000

// The requests Decide accepts.
type (
	putReq struct {
		actor journal.Actor
		r     PutRequest
	}
	deleteReq struct {
		actor journal.Actor
		r     DeleteRequest
	}
	txnReq struct {
		actor journal.Actor
		r     TxnRequest
	}
	grantReq struct {
		actor   journal.Actor
		id, ttl int64
	}
	revokeReq struct {
		actor journal.Actor
		id    int64
	}
	expireReq struct{ id int64 }
	// checkpointReq records that lease id lives at least ttl more seconds.
	checkpointReq struct {
		actor   journal.Actor
		id, ttl int64
	}
	// compactReq records an etcd compaction at rev (kv.compact).
	compactReq struct {
		actor    journal.Actor
		rev      int64
		physical bool
	}
	// stopCheckpointReq records the exact remaining TTL of leases at a
	// clean stop: one lease.checkpoint per lease still granted, in one batch.
	stopCheckpointReq struct{ leases []leaseTTL }
)

// leaseTTL is a lease id and a TTL in seconds.
type leaseTTL struct{ id, ttl int64 }

// engine is the journal engine: Decide validates and evaluates requests
// against the projection, Fold applies events to it.
type engine struct {
	// due reports whether lease id is still due to expire; Decide asks it
	// so that a keepalive that raced the expiry loop wins.
	due func(id int64) bool
	// revFloor is the KV revision of a projection folded before it
	// recorded one (see Store.Start); 0 for any other.
	revFloor atomic.Int64
}

// kvRev returns the KV revision r holds, last being its last seq: the seq
// of the last event that changed a key. Lease grants, checkpoints, revokes
// of a lease without keys and other engines' events take seqs but leave
// it, as etcd's leases live outside its MVCC revisions.
//
// Before any key changed it is 1 once the stream holds an event (that
// event changed no key, so the state at 1 is the empty one), as etcd's
// store starts at 1: clients take revision 0 to mean "now" (a watch from
// a Get's header revision 0 would miss the first put).
func (e *engine) kvRev(r reader, last int64) (int64, error) {
	b, ok, err := r.Get(keyKVRev)
	if err != nil || !ok {
		rev := e.revFloor.Load()
		if rev == 0 && last > 0 {
			rev = 1
		}
		return rev, err
	}
	if len(b) != 8 {
		return 0, errors.New("kv: bad KV revision record")
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// compactRev returns the revision of the latest kv.compact r holds, -1
// when there was none (etcd's HashKV answers -1 then).
func compactRev(r reader) (int64, error) {
	b, ok, err := r.Get(keyCompact)
	if err != nil || !ok {
		return -1, err
	}
	if len(b) != 8 {
		return 0, errors.New("kv: bad compact revision record")
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

var _ journal.Engine = (*engine)(nil)

func (e *engine) Name() string { return Name }

// reader is what both a View (Decide) and a Snapshot (reads) offer.
type reader interface {
	Get(key []byte) ([]byte, bool, error)
	Iter(lower, upper []byte, fn func(k, v []byte) error) error
}

type snapReader struct{ sn *journal.Snapshot }

func (r snapReader) Get(key []byte) ([]byte, bool, error) { return r.sn.Get(Name, key) }
func (r snapReader) Iter(lo, hi []byte, fn func(k, v []byte) error) error {
	return r.sn.Iter(Name, lo, hi, fn)
}

// subjectOf returns a key as an event subject: itself when it is UTF-8,
// else "b64:" and its base64.
func subjectOf(key []byte) string {
	if utf8.Valid(key) {
		return string(key)
	}
	return "b64:" + base64.StdEncoding.EncodeToString(key)
}

// evalState evaluates requests over a reader plus the writes of the txn
// being evaluated (overlay), recording the key changes as ops.
type evalState struct {
	r    reader
	rev  int64 // the revision a write gets
	over map[string]*KeyValue
	ops  []op
	prev *KeyValue // the version the latest put found (nil: none)
}

func newEval(r reader, rev int64) *evalState {
	return &evalState{r: r, rev: rev, over: map[string]*KeyValue{}}
}

func (s *evalState) get(key []byte) (*KeyValue, error) {
	if kv, ok := s.over[string(key)]; ok {
		return kv, nil
	}
	b, ok, err := s.r.Get(curKey(key))
	if err != nil || !ok {
		return nil, err
	}
	kv, err := decodeKV(key, b)
	if err != nil {
		return nil, err
	}
	return &kv, nil
}

func (s *evalState) rangeKVs(key, end []byte) ([]KeyValue, error) {
	if end == nil {
		kv, err := s.get(key)
		if err != nil || kv == nil {
			return nil, err
		}
		return []KeyValue{*kv}, nil
	}
	lo, hi := curBounds(key, end)
	var out []KeyValue
	err := s.r.Iter(lo, hi, func(k, v []byte) error {
		k = k[len(pfxCur):]
		if _, ok := s.over[string(k)]; ok {
			return nil
		}
		kv, err := decodeKV(k, v)
		if err != nil {
			return err
		}
		out = append(out, kv)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(s.over) > 0 {
		added := false
		for k, kv := range s.over {
			if kv != nil && inRange([]byte(k), key, end) {
				out = append(out, *kv)
				added = true
			}
		}
		if added {
			sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].Key, out[j].Key) < 0 })
		}
	}
	return out, nil
}

func checkKey(key []byte) error {
	if len(key) == 0 {
		return ErrEmptyKey
	}
	return nil
}

func (s *evalState) leaseExists(id int64) (bool, error) {
	_, ok, err := s.r.Get(leaseKey(id))
	return ok, err
}

func (s *evalState) put(p *PutRequest) (*PutResponse, error) {
	if err := checkKey(p.Key); err != nil {
		return nil, err
	}
	if len(p.Value) > MaxValueSize || len(p.Key) > MaxValueSize {
		return nil, ErrValueTooLarge
	}
	prev, err := s.get(p.Key)
	if err != nil {
		return nil, err
	}
	val, lease := p.Value, p.Lease
	if p.IgnoreValue || p.IgnoreLease {
		if prev == nil {
			return nil, fmt.Errorf("put %q with ignore_value or ignore_lease: %w", p.Key, ErrKeyNotFound)
		}
		if p.IgnoreValue {
			val = prev.Value
		}
		if p.IgnoreLease {
			lease = prev.Lease
		}
	}
	if lease != 0 {
		ok, err := s.leaseExists(lease)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("lease %s: %w", FormatLeaseID(lease), ErrLeaseNotFound)
		}
	}
	kv := &KeyValue{Key: append([]byte(nil), p.Key...), Value: append([]byte{}, val...), CreateRev: s.rev, ModRev: s.rev, Version: 1, Lease: lease}
	o := op{Key: kv.Key, Value: kv.Value, Lease: lease}
	if prev != nil {
		kv.CreateRev, kv.Version, o.PrevRev = prev.CreateRev, prev.Version+1, prev.ModRev
	}
	o.CreateRev, o.Version = kv.CreateRev, kv.Version
	s.ops = append(s.ops, o)
	s.prev = prev
	s.over[string(p.Key)] = kv
	resp := &PutResponse{Rev: s.rev}
	if p.PrevKV && prev != nil {
		c := *prev
		resp.PrevKV = &c
	}
	return resp, nil
}

func (s *evalState) del(d *DeleteRequest) (*DeleteResponse, error) {
	if err := checkKey(d.Key); err != nil {
		return nil, err
	}
	kvs, err := s.rangeKVs(d.Key, d.End)
	if err != nil {
		return nil, err
	}
	resp := &DeleteResponse{Rev: s.rev, Deleted: int64(len(kvs))}
	for _, kv := range kvs {
		s.ops = append(s.ops, op{Del: true, Key: kv.Key, PrevRev: kv.ModRev})
		s.over[string(kv.Key)] = nil
	}
	if d.PrevKV {
		resp.PrevKVs = kvs
	}
	return resp, nil
}

// rng answers a range of a txn. Without Rev it reads the state as the
// txn leaves it so far; with Rev it reads the history at that revision,
// as etcd's txn does (the txn's own writes are at s.rev, once it made
// any).
func (s *evalState) rng(r *RangeRequest) (*RangeResponse, error) {
	if err := checkRange(r); err != nil {
		return nil, err
	}
	last := s.rev - 1
	var kvs []KeyValue
	var err error
	switch {
	case r.Rev == 0 || (r.Rev == last && len(s.ops) == 0) || (r.Rev == s.rev && len(s.ops) > 0):
		kvs, err = s.rangeKVs(r.Key, r.End)
	case r.Rev > last:
		return nil, fmt.Errorf("revision %d (current %d): %w", r.Rev, last, ErrFutureRev)
	default:
		kvs, err = rangeAt(context.Background(), s.r, r.Key, r.End, r.Rev)
	}
	if err != nil {
		return nil, err
	}
	return shapeRange(kvs, r, s.rev), nil
}

// checkRange refuses a RangeRequest the store cannot answer whatever its
// state: an empty key, a negative revision, an unknown sort.
func checkRange(r *RangeRequest) error {
	if err := checkKey(r.Key); err != nil {
		return err
	}
	if r.Rev < 0 {
		return wire.Errorf(wire.InvalidArgument, "revision %d is negative", r.Rev)
	}
	if r.SortOrder < SortNone || r.SortOrder > SortDescend || r.SortTarget < SortByKey || r.SortTarget > SortByValue {
		return fmt.Errorf("sort order %d, sort target %d: %w", r.SortOrder, r.SortTarget, ErrBadSort)
	}
	return nil
}

// shapeRange applies a RangeRequest's revision filters, sort, limit,
// keys-only and count-only to the keys of its range (in key order), as
// etcd's server does above its store: Count is the keys in the range
// before filtering, More says the limit cut the filtered, sorted keys.
func shapeRange(kvs []KeyValue, r *RangeRequest, rev int64) *RangeResponse {
	resp := &RangeResponse{Count: int64(len(kvs)), Rev: rev}
	if r.CountOnly {
		return resp
	}
	if r.MinModRev != 0 || r.MaxModRev != 0 || r.MinCreateRev != 0 || r.MaxCreateRev != 0 {
		kvs = slices.DeleteFunc(kvs, func(x KeyValue) bool {
			return (r.MinModRev > 0 && x.ModRev < r.MinModRev) ||
				(r.MaxModRev > 0 && x.ModRev > r.MaxModRev) ||
				(r.MinCreateRev > 0 && x.CreateRev < r.MinCreateRev) ||
				(r.MaxCreateRev > 0 && x.CreateRev > r.MaxCreateRev)
		})
	}
	order := r.SortOrder
	switch {
	case order == SortNone && r.SortTarget != SortByKey:
		order = SortAscend // as etcd: a target without an order ascends
	case order == SortAscend && r.SortTarget == SortByKey:
		order = SortNone // already in key order
	}
	if order != SortNone {
		sortKVs(kvs, r.SortTarget, order == SortDescend)
	}
	if r.Limit > 0 && int64(len(kvs)) > r.Limit {
		kvs, resp.More = kvs[:r.Limit], true
	}
	if r.KeysOnly {
		for i := range kvs {
			kvs[i].Value = nil
		}
	}
	resp.KVs = kvs
	return resp
}

// sortKVs sorts stably by target, so that keys stay in key order among
// equals.
func sortKVs(kvs []KeyValue, target SortTarget, desc bool) {
	cmp := func(a, b KeyValue) int {
		switch target {
		case SortByVersion:
			return cmpInt(a.Version, b.Version)
		case SortByCreate:
			return cmpInt(a.CreateRev, b.CreateRev)
		case SortByMod:
			return cmpInt(a.ModRev, b.ModRev)
		case SortByValue:
			return bytes.Compare(a.Value, b.Value)
		}
		return bytes.Compare(a.Key, b.Key)
	}
	if desc {
		slices.SortStableFunc(kvs, func(a, b KeyValue) int { return cmp(b, a) })
	} else {
		slices.SortStableFunc(kvs, cmp)
	}
}

// compare evaluates one txn guard.
func (s *evalState) compare(c *Compare) (bool, error) {
	if err := checkKey(c.Key); err != nil {
		return false, err
	}
	kvs, err := s.rangeKVs(c.Key, c.End)
	if err != nil {
		return false, err
	}
	if len(kvs) == 0 {
		if c.Target == CompareValue {
			return false, nil
		}
		kvs = []KeyValue{{Key: c.Key}}
	}
	for _, kv := range kvs {
		var cmp int
		switch c.Target {
		case CompareValue:
			cmp = bytes.Compare(kv.Value, c.Value)
		case CompareVersion:
			cmp = cmpInt(kv.Version, c.Int)
		case CompareCreate:
			cmp = cmpInt(kv.CreateRev, c.Int)
		case CompareMod:
			cmp = cmpInt(kv.ModRev, c.Int)
		case CompareLease:
			cmp = cmpInt(kv.Lease, c.Int)
		default:
			return false, wire.Errorf(wire.InvalidArgument, "unknown compare target %d", c.Target)
		}
		var ok bool
		switch c.Result {
		case Equal:
			ok = cmp == 0
		case NotEqual:
			ok = cmp != 0
		case Greater:
			ok = cmp > 0
		case Less:
			ok = cmp < 0
		default:
			return false, wire.Errorf(wire.InvalidArgument, "unknown compare result %d", c.Result)
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type interval struct {
	key, end []byte
	at       int // index of the op in its branch
}

// Txn parts an OpError can be about.
const (
	TxnCompare = iota // the compares (DSL: if)
	TxnSuccess        // the success branch (DSL: then)
	TxnFailure        // the failure branch (DSL: else)
)

// OpError is an error about one part of a txn: Index in the compares or
// in a branch (Part), so that the DSL can point at the word. For an
// operation inside a nested txn, Index is the nested txn's. It unwraps to
// the error itself (ErrDuplicateKey, ErrLeaseNotFound, …).
type OpError struct {
	Part  int
	Index int
	Err   error
}

func (e *OpError) Error() string { return e.Err.Error() }
func (e *OpError) Unwrap() error { return e.Err }

// checkOps enforces etcd's txn rules on one branch: at most MaxTxnOps,
// no key put twice, no delete overlapping a put. It returns the branch's
// put keys and delete ranges for the enclosing branch to check; an error
// comes with the index of the op that broke a rule (the first op whose
// addition makes the branch invalid: the second write to a key).
func checkOps(ops []Op) (puts map[string]int, dels []interval, at int, err error) {
	if len(ops) > MaxTxnOps {
		return nil, nil, MaxTxnOps, ErrTooManyOps
	}
	puts = map[string]int{}
	at = -1
	fail := func(i int, e error) {
		if at < 0 || i < at {
			at, err = i, e
		}
	}
	for i, o := range ops {
		switch {
		case o.Put != nil:
			if _, dup := puts[string(o.Put.Key)]; dup {
				fail(i, fmt.Errorf("key %q: %w", o.Put.Key, ErrDuplicateKey))
				continue
			}
			puts[string(o.Put.Key)] = i
		case o.Delete != nil:
			dels = append(dels, interval{o.Delete.Key, o.Delete.End, i})
		case o.Txn != nil:
			union := map[string]bool{}
			for _, branch := range [][]Op{o.Txn.Success, o.Txn.Failure} {
				p, d, _, e := checkOps(branch)
				if e != nil {
					fail(i, e)
					break
				}
				for k := range p {
					union[k] = true
				}
				for _, iv := range d {
					dels = append(dels, interval{iv.key, iv.end, i})
				}
			}
			for k := range union {
				if _, dup := puts[k]; dup {
					fail(i, fmt.Errorf("key %q: %w", k, ErrDuplicateKey))
					continue
				}
				puts[k] = i
			}
		case o.Range != nil:
		default:
			fail(i, wire.Errorf(wire.InvalidArgument, "empty txn operation"))
		}
	}
	for _, d := range dels {
		for k, pi := range puts {
			if inRange([]byte(k), d.key, d.end) {
				fail(max(pi, d.at), fmt.Errorf("key %q put and deleted: %w", k, ErrDuplicateKey))
			}
		}
	}
	if err != nil {
		return nil, nil, at, err
	}
	return puts, dels, -1, nil
}

func (s *evalState) txn(t *TxnRequest) (*TxnResponse, error) {
	if _, _, at, err := checkOps(t.Success); err != nil {
		return nil, &OpError{Part: TxnSuccess, Index: at, Err: err}
	}
	if _, _, at, err := checkOps(t.Failure); err != nil {
		return nil, &OpError{Part: TxnFailure, Index: at, Err: err}
	}
	if len(t.Compare) > MaxTxnOps {
		return nil, &OpError{Part: TxnCompare, Index: MaxTxnOps, Err: ErrTooManyOps}
	}
	ok := true
	for i := range t.Compare {
		held, err := s.compare(&t.Compare[i])
		if err != nil {
			return nil, &OpError{Part: TxnCompare, Index: i, Err: err}
		}
		if !held {
			ok = false
			break
		}
	}
	branch, part := t.Success, TxnSuccess
	if !ok {
		branch, part = t.Failure, TxnFailure
	}
	resp := &TxnResponse{Succeeded: ok, Rev: s.rev, Responses: make([]OpResponse, len(branch))}
	for i, o := range branch {
		var err error
		switch {
		case o.Put != nil:
			resp.Responses[i].Put, err = s.put(o.Put)
		case o.Delete != nil:
			resp.Responses[i].Delete, err = s.del(o.Delete)
		case o.Range != nil:
			resp.Responses[i].Range, err = s.rng(o.Range)
		case o.Txn != nil:
			resp.Responses[i].Txn, err = s.txn(o.Txn)
		}
		if err != nil {
			return nil, &OpError{Part: part, Index: i, Err: err}
		}
	}
	return resp, nil
}

// setRev sets the revision of a txn answer and every answer inside it.
func (t *TxnResponse) setRev(rev int64) {
	t.Rev = rev
	for _, r := range t.Responses {
		switch {
		case r.Put != nil:
			r.Put.Rev = rev
		case r.Delete != nil:
			r.Delete.Rev = rev
		case r.Range != nil:
			r.Range.Rev = rev
		case r.Txn != nil:
			r.Txn.setRev(rev)
		}
	}
}

// Decide validates a request and evaluates it against the projection as
// the batch being built leaves it.
func (e *engine) Decide(v *journal.View, req any) (journal.Decision, error) {
	last := v.LastSeq()
	s := newEval(v, last+1)
	switch r := req.(type) {
	case *putReq:
		resp, err := s.put(&r.r)
		if err != nil {
			return journal.Decision{}, err
		}
		o, prev := s.ops[0], s.prev
		body := &journal.Body{Kind: KindPut, Subject: subjectOf(r.r.Key), Actor: r.actor, Data: o.data(false)}
		// The put's fold from what it read: the committer need not decode
		// the event again, nor the fold read the key again.
		fold := func(t *journal.Txn, _ int, seq int64) error {
			if err := foldOpOnto(t, seq, &o, prev); err != nil {
				return err
			}
			return setKVRev(t, seq)
		}
		return journal.Decision{Bodies: []*journal.Body{body}, Reply: resp, Fold: fold}, nil
	case *deleteReq:
		resp, err := s.del(&r.r)
		if err != nil {
			return journal.Decision{}, err
		}
		if len(s.ops) == 0 {
			if resp.Rev, err = e.kvRev(v, last); err != nil {
				return journal.Decision{}, err
			}
			return journal.Decision{Reply: resp}, nil
		}
		data := map[string]any{"keys": opsData(s.ops, false)}
		if r.r.End != nil {
			putBytes(data, "end", r.r.End)
		}
		body := &journal.Body{Kind: KindDelete, Subject: subjectOf(r.r.Key), Actor: r.actor, Data: data}
		return journal.Decision{Bodies: []*journal.Body{body}, Reply: resp}, nil
	case *txnReq:
		resp, err := s.txn(&r.r)
		if err != nil {
			return journal.Decision{}, err
		}
		if len(s.ops) == 0 {
			rev, err := e.kvRev(v, last)
			if err != nil {
				return journal.Decision{}, err
			}
			resp.setRev(rev)
			return journal.Decision{Reply: resp}, nil
		}
		body := &journal.Body{Kind: KindTxn, Subject: subjectOf(s.ops[0].Key), Actor: r.actor, Data: map[string]any{"ops": opsData(s.ops, true)}}
		return journal.Decision{Bodies: []*journal.Body{body}, Reply: resp}, nil
	case *grantReq:
		if r.id <= 0 {
			return journal.Decision{}, wire.Errorf(wire.InvalidArgument, "lease id must be positive")
		}
		if r.ttl < MinLeaseTTL {
			return journal.Decision{}, wire.Errorf(wire.InvalidArgument, "lease TTL must be at least %d seconds", MinLeaseTTL)
		}
		if r.ttl > MaxLeaseTTL {
			return journal.Decision{}, ErrLeaseTTLLarge
		}
		if ok, err := s.leaseExists(r.id); err != nil || ok {
			if err == nil {
				err = fmt.Errorf("lease %s: %w", FormatLeaseID(r.id), ErrLeaseExists)
			}
			return journal.Decision{}, err
		}
		body := &journal.Body{Kind: KindLeaseGrant, Subject: FormatLeaseID(r.id), Actor: r.actor, Data: map[string]any{"id": FormatLeaseID(r.id), "ttl": r.ttl}}
		return journal.Decision{Bodies: []*journal.Body{body}, Reply: &Lease{ID: r.id, TTL: r.ttl, GrantedTTL: r.ttl}}, nil
	case *revokeReq:
		return e.decideEnd(s, r.id, KindLeaseRevoke, r.actor, true)
	case *expireReq:
		if e.due != nil && !e.due(r.id) {
			return journal.Decision{Reply: true}, nil // renewed meanwhile: keep it
		}
		return e.decideEnd(s, r.id, KindLeaseExpire, journal.SystemActor(), false)
	case *checkpointReq:
		ok, err := s.leaseExists(r.id)
		if err != nil {
			return journal.Decision{}, err
		}
		if !ok {
			return journal.Decision{}, fmt.Errorf("lease %s: %w", FormatLeaseID(r.id), ErrLeaseNotFound)
		}
		body := &journal.Body{Kind: KindLeaseCheckpoint, Subject: FormatLeaseID(r.id), Actor: r.actor, Data: map[string]any{"id": FormatLeaseID(r.id), "ttl": r.ttl}}
		return journal.Decision{Bodies: []*journal.Body{body}}, nil
	case *compactReq:
		cur, err := compactRev(v)
		if err != nil {
			return journal.Decision{}, err
		}
		if r.rev < 0 {
			return journal.Decision{}, wire.Errorf(wire.InvalidArgument, "compact revision %d is negative", r.rev)
		}
		if r.rev <= cur {
			return journal.Decision{}, fmt.Errorf("compact %d (compacted at %d): %w", r.rev, cur, &CompactedError{Rev: cur})
		}
		if r.rev > last {
			return journal.Decision{}, fmt.Errorf("compact %d (current %d): %w", r.rev, last, ErrFutureRev)
		}
		rev, err := e.kvRev(v, last)
		if err != nil {
			return journal.Decision{}, err
		}
		body := &journal.Body{Kind: KindCompact, Subject: strconv.FormatInt(r.rev, 10), Actor: r.actor,
			Data: map[string]any{"rev": r.rev, "physical": r.physical}}
		// A compaction changes no key: the KV revision stays, as etcd's.
		return journal.Decision{Bodies: []*journal.Body{body}, Reply: rev}, nil
	case *stopCheckpointReq:
		var bodies []*journal.Body
		for _, l := range r.leases {
			ok, err := s.leaseExists(l.id)
			if err != nil {
				return journal.Decision{}, err
			}
			if ok {
				bodies = append(bodies, &journal.Body{Kind: KindLeaseCheckpoint, Subject: FormatLeaseID(l.id),
					Actor: journal.SystemActor(), Data: map[string]any{"id": FormatLeaseID(l.id), "ttl": l.ttl}})
			}
		}
		return journal.Decision{Bodies: bodies}, nil
	}
	return journal.Decision{}, fmt.Errorf("kv: unknown request %T", req)
}

// decideEnd ends a lease (revoke or expire), deleting its keys in the same
// event. A missing lease is an error for a revoke and nothing for an expiry.
func (e *engine) decideEnd(s *evalState, id int64, kind string, actor journal.Actor, mustExist bool) (journal.Decision, error) {
	ok, err := s.leaseExists(id)
	if err != nil {
		return journal.Decision{}, err
	}
	if !ok {
		if mustExist {
			return journal.Decision{}, fmt.Errorf("lease %s: %w", FormatLeaseID(id), ErrLeaseNotFound)
		}
		return journal.Decision{Reply: int64(0)}, nil
	}
	keys, err := leaseKeys(s.r, id)
	if err != nil {
		return journal.Decision{}, err
	}
	for _, k := range keys {
		kv, err := s.get(k)
		if err != nil {
			return journal.Decision{}, err
		}
		if kv != nil && kv.Lease == id {
			s.ops = append(s.ops, op{Del: true, Key: kv.Key, PrevRev: kv.ModRev})
		}
	}
	body := &journal.Body{Kind: kind, Subject: FormatLeaseID(id), Actor: actor, Data: map[string]any{"id": FormatLeaseID(id), "keys": opsData(s.ops, false)}}
	// The reply is the KV revision after the event: its own seq (s.rev,
	// as it is the only body) when it deletes keys, else unchanged.
	rev := s.rev
	if len(s.ops) == 0 {
		if rev, err = e.kvRev(s.r, s.rev-1); err != nil {
			return journal.Decision{}, err
		}
	}
	return journal.Decision{Bodies: []*journal.Body{body}, Reply: rev}, nil
}

// leaseKeys lists the keys attached to lease id.
func leaseKeys(r reader, id int64) ([][]byte, error) {
	p, hi := leaseKeysPrefix(id), leaseKeysPrefix(id+1)
	var keys [][]byte
	err := r.Iter(p, hi, func(k, _ []byte) error {
		keys = append(keys, append([]byte(nil), k[len(p):]...))
		return nil
	})
	return keys, err
}

// Fold applies one event to the projection. It reads only the projection
// and the event, so a rebuild reproduces it byte for byte.
// FoldsKind says the KV folds only its own events (journal.KindFilter), so
// the committer decodes no other event for it.
func (e *engine) FoldsKind(kind string) bool {
	switch kind {
	case KindPut, KindDelete, KindTxn, KindLeaseRevoke, KindLeaseExpire, KindLeaseGrant, KindLeaseCheckpoint, KindCompact:
		return true
	}
	return false
}

var _ journal.KindFilter = (*engine)(nil)

func (e *engine) Fold(t *journal.Txn, ev *journal.Event) error {
	switch ev.Kind {
	case KindPut, KindDelete, KindTxn, KindLeaseRevoke, KindLeaseExpire:
		ops, err := eventOps(ev.Kind, ev.Data)
		if err != nil {
			return fmt.Errorf("%s data: %w", ev.Kind, err)
		}
		if err := foldOps(t, ev.Seq, ops); err != nil {
			return err
		}
		if ev.Kind == KindLeaseRevoke || ev.Kind == KindLeaseExpire {
			id, err := getLeaseID(ev.Data, "id")
			if err != nil {
				return err
			}
			if err := t.Delete(leaseKey(id)); err != nil {
				return err
			}
			if err := t.DeleteRange(leaseKeysPrefix(id), leaseKeysPrefix(id+1)); err != nil {
				return err
			}
		}
	case KindCompact:
		rev, err := getInt(ev.Data, "rev")
		if err != nil {
			return fmt.Errorf("%s data: %w", ev.Kind, err)
		}
		return t.Set(keyCompact, binary.BigEndian.AppendUint64(nil, uint64(rev)))
	case KindLeaseGrant:
		id, err := getLeaseID(ev.Data, "id")
		if err != nil {
			return err
		}
		ttl, err := getInt(ev.Data, "ttl")
		if err != nil {
			return err
		}
		return t.Set(leaseKey(id), encodeLease(leaseRec{Granted: ttl, Remaining: ttl, Base: ev.Time}))
	case KindLeaseCheckpoint:
		id, err := getLeaseID(ev.Data, "id")
		if err != nil {
			return err
		}
		ttl, err := getInt(ev.Data, "ttl")
		if err != nil {
			return err
		}
		b, ok, err := t.Get(leaseKey(id))
		if err != nil || !ok {
			return err
		}
		l, err := decodeLease(b)
		if err != nil {
			return err
		}
		l.Remaining, l.Base = ttl, ev.Time
		return t.Set(leaseKey(id), encodeLease(l))
	}
	return nil
}

// FoldRaw folds a put, delete or txn from its stored bytes, decoding only
// its ops into structs (rawOps, as a watch decodes them) where Fold gets the
// whole event decoded into maps: puts are the hot path. Any other event, or
// one whose ops rawOps cannot read, goes through Fold, so the two fold
// alike and fail alike (TestFoldRawAsFold). One difference is left: a
// CBOR null where Fold wants a string (key, value, lease) reads as absent
// here and is an error there; cairn never writes one, and an event Fold
// refused was never committed, so it only widens what an import accepts.
func (e *engine) FoldRaw(t *journal.Txn, raw *journal.Raw) error {
	kind, err := raw.Kind()
	if err != nil {
		return err
	}
	switch kind {
	case KindPut, KindDelete, KindTxn:
		if ops, err := rawOps(raw); err == nil {
			return foldOps(t, raw.Seq, ops)
		}
	}
	ev, err := raw.Decode()
	if err != nil {
		return err
	}
	return e.Fold(t, ev)
}

var _ journal.RawFolder = (*engine)(nil)

// foldOps applies an event's key changes at revision rev, and moves the
// KV revision to it when there are any.
func foldOps(t *journal.Txn, rev int64, ops []op) error {
	for i := range ops {
		if err := foldOp(t, rev, &ops[i]); err != nil {
			return err
		}
	}
	if len(ops) == 0 {
		return nil
	}
	return setKVRev(t, rev)
}

// setKVRev moves the KV revision to rev.
func setKVRev(t *journal.Txn, rev int64) error {
	return t.Set(keyKVRev, binary.BigEndian.AppendUint64(nil, uint64(rev)))
}

// foldOp applies one key change at revision rev. Create revision and
// version come from the projection, not from the event's copy of them.
func foldOp(t *journal.Txn, rev int64, o *op) error {
	b, ok, err := t.Get(curKey(o.Key))
	if err != nil {
		return err
	}
	var prev *KeyValue
	if ok {
		kv, err := decodeKV(o.Key, b)
		if err != nil {
			return err
		}
		prev = &kv
	}
	return foldOpOnto(t, rev, o, prev)
}

// foldOpOnto is foldOp given the key's version in the projection (prev;
// nil: the key is not there).
func foldOpOnto(t *journal.Txn, rev int64, o *op, prev *KeyValue) error {
	ck := curKey(o.Key)
	if prev != nil && prev.Lease != 0 && (o.Del || prev.Lease != o.Lease) {
		if err := t.Delete(leaseKeysKey(prev.Lease, o.Key)); err != nil {
			return err
		}
	}
	if o.Del {
		if prev == nil {
			return nil
		}
		if err := t.Delete(ck); err != nil {
			return err
		}
		return t.Set(histKey(o.Key, rev), []byte{'d'})
	}
	kv := KeyValue{Key: o.Key, Value: o.Value, CreateRev: rev, ModRev: rev, Version: 1, Lease: o.Lease}
	if prev != nil {
		kv.CreateRev, kv.Version = prev.CreateRev, prev.Version+1
	}
	enc := encodeKV(&kv)
	if err := t.Set(ck, enc); err != nil {
		return err
	}
	if err := t.Set(histKey(o.Key, rev), append([]byte{'p'}, enc...)); err != nil {
		return err
	}
	if o.Lease != 0 {
		return t.Set(leaseKeysKey(o.Lease, o.Key), nil)
	}
	return nil
}

var errStop = errors.New("stop")
