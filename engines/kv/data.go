package kv

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Event kinds of the kv engine (docs/events.md).
const (
	KindPut             = "kv.put"
	KindDelete          = "kv.delete"
	KindTxn             = "kv.txn"
	KindCompact         = "kv.compact"
	KindLeaseGrant      = "lease.grant"
	KindLeaseRevoke     = "lease.revoke"
	KindLeaseExpire     = "lease.expire"
	KindLeaseCheckpoint = "lease.checkpoint"
)

// op is one key's change as an event's data records it. CreateRev and
// Version are the key's values after a put; PrevRev is the mod revision of
// the version it replaced (0: none), so a watch can find prev_kv in the
// history index without replaying.
type op struct {
	Del       bool
	Key       []byte
	Value     []byte
	Lease     int64
	CreateRev int64
	Version   int64
	PrevRev   int64
}

// putBytes stores b under name when it is valid UTF-8, else under
// name_b64 as base64, so the event reads well as JSON (DESIGN.md).
func putBytes(m map[string]any, name string, b []byte) {
	if utf8.Valid(b) {
		m[name] = string(b)
	} else {
		m[name+"_b64"] = base64.StdEncoding.EncodeToString(b)
	}
}

func getBytes(m map[string]any, name string) ([]byte, error) {
	if v, ok := m[name]; ok {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("data.%s: want a string, got %T", name, v)
		}
		return []byte(s), nil
	}
	if v, ok := m[name+"_b64"]; ok {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("data.%s_b64: want a string, got %T", name, v)
		}
		return base64.StdEncoding.DecodeString(s)
	}
	return nil, nil
}

func getInt(m map[string]any, name string) (int64, error) {
	v, ok := m[name]
	if !ok {
		return 0, nil
	}
	switch n := v.(type) {
	case int64:
		return n, nil
	case uint64:
		return int64(n), nil
	case int:
		return int64(n), nil
	case float64: // only from JSON
		return int64(n), nil
	}
	return 0, fmt.Errorf("data.%s: want an integer, got %T", name, v)
}

// getLeaseID reads a lease id stored as a hex string (FormatLeaseID), as
// event data keeps lease ids: a decimal int64 would lose precision in
// JSON readers limited to 2^53. A missing field is 0.
func getLeaseID(m map[string]any, name string) (int64, error) {
	v, ok := m[name]
	if !ok {
		return 0, nil
	}
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("data.%s: want a lease id in hex (a string), got %T", name, v)
	}
	id, err := ParseLeaseID(s)
	if err != nil {
		return 0, fmt.Errorf("data.%s: %w", name, err)
	}
	return id, nil
}

func (o *op) data(withOp bool) map[string]any {
	m := map[string]any{}
	putBytes(m, "key", o.Key)
	if o.PrevRev != 0 {
		m["prev_rev"] = o.PrevRev
	}
	if withOp {
		if o.Del {
			m["op"] = "delete"
		} else {
			m["op"] = "put"
		}
	}
	if o.Del {
		return m
	}
	putBytes(m, "value", o.Value)
	if o.Lease != 0 {
		m["lease"] = FormatLeaseID(o.Lease)
	}
	m["create_rev"] = o.CreateRev
	m["version"] = o.Version
	return m
}

func opFromData(m map[string]any, del bool) (op, error) {
	o := op{Del: del}
	var err error
	if s, ok := m["op"].(string); ok {
		switch s {
		case "put":
			o.Del = false
		case "delete":
			o.Del = true
		default:
			return o, fmt.Errorf("unknown op %q", s)
		}
	}
	if o.Key, err = getBytes(m, "key"); err != nil {
		return o, err
	}
	if o.PrevRev, err = getInt(m, "prev_rev"); err != nil {
		return o, err
	}
	if o.Del {
		return o, nil
	}
	if o.Value, err = getBytes(m, "value"); err != nil {
		return o, err
	}
	if o.Value == nil {
		o.Value = []byte{}
	}
	if o.Lease, err = getLeaseID(m, "lease"); err != nil {
		return o, err
	}
	if o.CreateRev, err = getInt(m, "create_rev"); err != nil {
		return o, err
	}
	if o.Version, err = getInt(m, "version"); err != nil {
		return o, err
	}
	return o, nil
}

func opsData(ops []op, withOp bool) []any {
	out := make([]any, len(ops))
	for i := range ops {
		out[i] = ops[i].data(withOp)
	}
	return out
}

func opsFromList(v any, del bool) ([]op, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("want a list of operations, got %T", v)
	}
	ops := make([]op, 0, len(list))
	for _, it := range list {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("want an operation map, got %T", it)
		}
		o, err := opFromData(m, del)
		if err != nil {
			return nil, err
		}
		ops = append(ops, o)
	}
	return ops, nil
}

// eventOps returns the key changes one kv or lease event made, in order.
// Events that change no key (lease.grant, lease.checkpoint, others) give none.
func eventOps(kind string, data map[string]any) ([]op, error) {
	switch kind {
	case KindPut:
		o, err := opFromData(data, false)
		if err != nil {
			return nil, err
		}
		return []op{o}, nil
	case KindDelete, KindLeaseRevoke, KindLeaseExpire:
		return opsFromList(data["keys"], true)
	case KindTxn:
		return opsFromList(data["ops"], false)
	}
	return nil, nil
}

// FormatLeaseID formats a lease id as etcdctl prints it (hex).
func FormatLeaseID(id int64) string { return strconv.FormatInt(id, 16) }

// ParseLeaseID reads a lease id in hex, as etcdctl prints it.
func ParseLeaseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 16, 64)
	if err != nil || id < 0 {
		return 0, fmt.Errorf("bad lease id %q: want hex, as etcdctl prints it (such as 694d77aa9e38260f)", s)
	}
	return id, nil
}
