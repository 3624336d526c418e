// Package kv is cairn's key-value engine: etcd's data model and semantics
// (revisions, create/mod revisions, versions, leases, txns, watches),
// event-sourced on the audit stream with history never compacted away.
//
// A revision is the audit stream's seq: one change (a put, a txn, a prefix
// delete, a lease revoke or expiry) is one event. The current state is the
// fold of those events under the journal's "p/kv/" prefix; history answers
// from the per-key revision index and the journal itself.
package kv

import "github.com/cairnhq/cairn/client/wire"

// MaxValueSize is the largest value (and the largest request) accepted,
// etcd's default request limit.
const MaxValueSize = 1536 * 1024

// KeyValue is one key's state at a revision, as etcd's mvccpb.KeyValue.
type KeyValue struct {
	Key       []byte
	Value     []byte
	CreateRev int64 // revision of the put that created the key (since its last delete)
	ModRev    int64 // revision of its last change
	Version   int64 // puts since creation; a delete resets it
	Lease     int64 // lease id, 0 for none
}

// EventType says whether a watch event is a put or a delete.
type EventType int

// Watch event types, as etcd's mvccpb.Event_EventType.
const (
	Put EventType = iota
	Delete
)

// Event is one key's change, as a watch delivers it. A journal event that
// touches several keys (txn, prefix delete, lease revoke or expiry) becomes
// several Events with the same revision, delivered together.
type Event struct {
	Type   EventType
	KV     KeyValue  // for a delete: Key and ModRev (the delete's revision) only
	PrevKV *KeyValue // when asked for
}

// RangeRequest reads keys, as etcd's RangeRequest: Key alone is one key;
// with End, the range [Key, End); End == "\x00" means every key >= Key.
//
// As etcd does above its store, the keys read are filtered by the
// revision bounds, then sorted, then cut to Limit; Count is the number of
// keys in the range before any of that.
type RangeRequest struct {
	Key, End  []byte
	Rev       int64 // 0: current; > current: ErrFutureRev
	Limit     int64 // 0: no limit
	KeysOnly  bool
	CountOnly bool

	SortOrder  SortOrder  // SortNone: key order (SortByKey ascending)
	SortTarget SortTarget // a target other than SortByKey with SortNone ascends

	// Revision filters, 0 for none: keep the keys whose mod_rev and
	// create_rev lie within [Min, Max].
	MinModRev, MaxModRev       int64
	MinCreateRev, MaxCreateRev int64
}

// SortOrder is a RangeRequest's order, as etcd's RangeRequest_SortOrder.
type SortOrder int

// Sort orders.
const (
	SortNone SortOrder = iota
	SortAscend
	SortDescend
)

// SortTarget is what a RangeRequest sorts by, as etcd's
// RangeRequest_SortTarget.
type SortTarget int

// Sort targets.
const (
	SortByKey SortTarget = iota
	SortByVersion
	SortByCreate
	SortByMod
	SortByValue
)

// RangeResponse answers a RangeRequest.
type RangeResponse struct {
	KVs   []KeyValue
	Count int64 // keys in the range, regardless of filters and Limit
	More  bool  // Limit cut the answer
	// Rev is the KV revision current when the answer was read (etcd's
	// header revision), even when Rev asked for a past one.
	Rev int64
}

// PutRequest writes one key.
type PutRequest struct {
	Key, Value  []byte
	Lease       int64
	PrevKV      bool
	IgnoreValue bool // keep the current value (the key must exist)
	IgnoreLease bool // keep the current lease (the key must exist)
}

// PutResponse answers a PutRequest.
type PutResponse struct {
	Rev    int64
	PrevKV *KeyValue
}

// DeleteRequest deletes one key or a range, as RangeRequest addresses them.
type DeleteRequest struct {
	Key, End []byte
	PrevKV   bool
}

// DeleteResponse answers a DeleteRequest.
type DeleteResponse struct {
	Rev     int64
	Deleted int64
	PrevKVs []KeyValue
}

// CompareTarget is what a txn comparison looks at.
type CompareTarget int

// Comparison targets, as etcd's Compare_CompareTarget.
const (
	CompareVersion CompareTarget = iota
	CompareCreate
	CompareMod
	CompareValue
	CompareLease
)

// CompareResult is a txn comparison's operator.
type CompareResult int

// Comparison operators, as etcd's Compare_CompareResult.
const (
	Equal CompareResult = iota
	Greater
	Less
	NotEqual
)

// Compare is one txn guard. A missing key has version, create, mod and
// lease 0 and compares false against any value (as etcd).
type Compare struct {
	Key, End []byte // End: compare every key of the range; all must hold
	Target   CompareTarget
	Result   CompareResult
	Value    []byte // for CompareValue
	Int      int64  // for the other targets
}

// Op is one operation of a txn branch; exactly one field is set.
type Op struct {
	Put    *PutRequest
	Range  *RangeRequest
	Delete *DeleteRequest
	Txn    *TxnRequest
}

// TxnRequest is etcd's Txn: if every Compare holds, Success runs, else
// Failure, atomically and as one revision (when anything is written).
type TxnRequest struct {
	Compare          []Compare
	Success, Failure []Op
}

// OpResponse answers one Op; the field matching the Op is set.
type OpResponse struct {
	Put    *PutResponse
	Range  *RangeResponse
	Delete *DeleteResponse
	Txn    *TxnResponse
}

// TxnResponse answers a TxnRequest.
type TxnResponse struct {
	Succeeded bool
	Rev       int64
	Responses []OpResponse
}

// Lease is a lease's state. TTL is the remaining time in seconds (-1 once
// expired), GrantedTTL what was granted.
type Lease struct {
	ID         int64
	TTL        int64
	GrantedTTL int64
	Keys       [][]byte // filled by LeaseTimeToLive(keys=true)
}

// Errors, matching etcd's (the etcd API maps each to its rpctypes error;
// the DSL shows the message with the code).
var (
	ErrEmptyKey      = wire.Errorf(wire.InvalidArgument, "key is not provided")
	ErrValueTooLarge = wire.Errorf(wire.InvalidArgument, "request is too large (values are limited to 1.5 MiB)")
	ErrDuplicateKey  = wire.Errorf(wire.InvalidArgument, "duplicate key given in txn request")
	ErrTooManyOps    = wire.Errorf(wire.InvalidArgument, "too many operations in txn request")
	ErrKeyNotFound   = wire.Errorf(wire.InvalidArgument, "key not found")
	ErrFutureRev     = wire.Errorf(wire.OutOfRange, "required revision is a future revision")
	ErrCompacted     = wire.Errorf(wire.OutOfRange, "required revision has been compacted")
	ErrLeaseNotFound = wire.Errorf(wire.NotFound, "requested lease not found")
	ErrLeaseExists   = wire.Errorf(wire.FailedPrecondition, "lease already exists")
	ErrLeaseTTLLarge = wire.Errorf(wire.OutOfRange, "too large lease TTL")
	ErrBadSort       = wire.Errorf(wire.InvalidArgument, "unknown sort order or sort target")
)

// MinLeaseTTL is the shortest lease in seconds: a grant asking less gets
// this, as etcd's minimum lease TTL (1.5 election timeouts of 1 s,
// rounded up) does.
const MinLeaseTTL = 2

// MaxTxnOps is the most operations one txn branch may hold (etcd's default).
const MaxTxnOps = 128
