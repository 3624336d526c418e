package kv

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

var _ engines.Explainer = (*module)(nil)

// Kinds are every kind the kv engine writes (docs/events.md).
func (m *module) Kinds() []string {
	return []string{KindPut, KindDelete, KindTxn, KindCompact, KindLeaseGrant, KindLeaseRevoke, KindLeaseExpire, KindLeaseCheckpoint}
}

// MultiSubjectKinds are the kv events that may change a key under another
// subject: a txn's subject is its first key, a range delete's the range's
// start, a lease's deletes the lease id.
func (m *module) MultiSubjectKinds() []string {
	return []string{KindDelete, KindTxn, KindLeaseExpire, KindLeaseRevoke}
}

// Explain reads a kv or lease event's data as docs/events.md documents it
// (CBOR's integer types included): the keys it changes, each with the
// value after and the revision whose value it replaced, and a summary.
func (m *module) Explain(ev *journal.Event) (engines.Explanation, bool) {
	if !slices.Contains(m.Kinds(), ev.Kind) {
		return engines.Explanation{}, false
	}
	changes := keyChanges(ev.Kind, ev.Data)
	return engines.Explanation{Summary: summary(ev, changes), Changes: changes}, true
}

// summary is one line saying what a kv or lease event did.
func summary(ev *journal.Event, changes []engines.Change) string {
	id, _ := ev.Data["id"].(string)
	switch ev.Kind {
	case KindPut:
		return "put " + changes[0].Subject
	case KindDelete:
		if end, ok := ev.Data["end"].(string); ok {
			return fmt.Sprintf("delete %s from %s to %s", keyCount(len(changes)), ev.Subject, end)
		}
		if len(changes) == 0 {
			return "delete " + ev.Subject + ": no such key"
		}
		return "delete " + ev.Subject
	case KindTxn:
		ops := make([]string, 0, 3)
		for i, c := range changes {
			if i == 3 {
				ops = append(ops, fmt.Sprintf("and %d more", len(changes)-3))
				break
			}
			verb := "put "
			if c.After == nil {
				verb = "delete "
			}
			ops = append(ops, verb+c.Subject)
		}
		if len(ops) == 0 {
			return "txn that wrote nothing"
		}
		return "txn: " + strings.Join(ops, ", ")
	case KindCompact:
		return fmt.Sprintf("compact below revision %d", dataInt(ev.Data["rev"]))
	case KindLeaseGrant:
		return fmt.Sprintf("grant lease %s, ttl %ds", id, dataInt(ev.Data["ttl"]))
	case KindLeaseRevoke:
		return fmt.Sprintf("revoke lease %s, deleting %s", id, keyCount(len(changes)))
	case KindLeaseExpire:
		return fmt.Sprintf("lease %s expired, deleting %s", id, keyCount(len(changes)))
	case KindLeaseCheckpoint:
		return fmt.Sprintf("lease %s lives at least %ds more", id, dataInt(ev.Data["ttl"]))
	}
	return ev.Kind
}

func keyCount(n int) string {
	if n == 1 {
		return "1 key"
	}
	return fmt.Sprintf("%d keys", n)
}

// keyChanges returns the key changes of a kv or lease event, or nil for an
// event that changes no key.
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
