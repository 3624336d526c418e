package kv

import "github.com/cairnhq/cairn/engines"

var _ engines.Explainer = (*module)(nil)

// MultiSubjectKinds are the kv events that may change a key under another
// subject: a txn's subject is its first key, a range delete's the range's
// start, a lease's deletes the lease id.
func (m *module) MultiSubjectKinds() []string {
	return []string{KindDelete, KindTxn, KindLeaseExpire, KindLeaseRevoke}
}

// Changes returns the key changes of a kv or lease event, reading its data
// as docs/events.md documents it (CBOR's integer types included), or nil
// for an event that changes no key.
func (m *module) Changes(kind string, data map[string]any) []engines.Change {
	return keyChanges(kind, data)
}

func keyChanges(kind string, data map[string]any) []engines.Change {
	switch kind {
	case KindPut:
		return []engines.Change{changeOf(data, false)}
	case KindDelete, KindLeaseRevoke, KindLeaseExpire:
		return changesOf(data["keys"], true)
	case KindTxn:
		return changesOf(data["ops"], false)
	}
	return nil
}

func changesOf(v any, del bool) []engines.Change {
	list, _ := v.([]any)
	out := make([]engines.Change, 0, len(list))
	for _, it := range list {
		if m, ok := it.(map[string]any); ok {
			out = append(out, changeOf(m, del))
		}
	}
	return out
}

// changeOf reads one op: the key as its subject reads (b64: for a key that
// is not UTF-8, as the engine writes such a subject), the value put and
// the revision it replaced.
func changeOf(m map[string]any, del bool) engines.Change {
	if op, ok := m["op"].(string); ok {
		del = op == "delete"
	}
	var c engines.Change
	if k, ok := m["key"].(string); ok {
		c.Subject = k
	} else if k, ok := m["key_b64"].(string); ok {
		c.Subject = "b64:" + k
	}
	c.BeforeSeq = dataInt(m["prev_rev"])
	if del {
		return c
	}
	v := ""
	if s, ok := m["value"].(string); ok {
		v = s
	} else if s, ok := m["value_b64"].(string); ok {
		v = "b64:" + s
	}
	c.After = &v
	return c
}

func dataInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case uint64:
		return int64(n)
	case int:
		return int64(n)
	case float64:
		return int64(n)
	}
	return 0
}
