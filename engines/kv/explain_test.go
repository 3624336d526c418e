package kv

import (
	"fmt"
	"testing"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

// TestKVOps reads key changes out of kv event data as docs/events.md
// documents it, with CBOR's integer types.
func TestKeyChanges(t *testing.T) {
	show := func(ops []engines.Change) string {
		s := ""
		for _, o := range ops {
			v := "nil"
			if o.After != nil {
				v = fmt.Sprintf("%q", *o.After)
			}
			s += fmt.Sprintf("[%s %s prev=%d]", o.Subject, v, o.BeforeSeq)
		}
		return s
	}
	for _, tc := range []struct {
		kind string
		data map[string]any
		want string
	}{
		{"kv.put", map[string]any{"key": "a", "value": "1", "create_rev": int64(2), "version": int64(1)}, `[a "1" prev=0]`},
		{"kv.put", map[string]any{"key": "a", "value": "2", "prev_rev": uint64(2)}, `[a "2" prev=2]`},
		{"kv.put", map[string]any{"key_b64": "/w==", "value_b64": "AA=="}, `[b64:/w== "b64:AA==" prev=0]`},
		{"kv.put", map[string]any{"key": "a"}, `[a "" prev=0]`},
		{"kv.delete", map[string]any{"keys": []any{map[string]any{"key": "a", "prev_rev": int64(3)}, map[string]any{"key": "b", "prev_rev": int64(4)}}, "end": "c"}, `[a nil prev=3][b nil prev=4]`},
		{"lease.expire", map[string]any{"id": "7", "keys": []any{map[string]any{"key": "s", "prev_rev": int64(5)}}}, `[s nil prev=5]`},
		{"kv.txn", map[string]any{"ops": []any{
			map[string]any{"op": "put", "key": "l", "value": "me"},
			map[string]any{"op": "delete", "key": "a", "prev_rev": int64(6)},
		}}, `[l "me" prev=0][a nil prev=6]`},
		{"kv.txn", map[string]any{"ops": "garbage"}, ``},
		{"lease.grant", map[string]any{"id": "7", "ttl": int64(60)}, ``},
		{"app.note", map[string]any{"key": "a", "value": "x"}, ``},
	} {
		if got := show(keyChanges(tc.kind, tc.data)); got != tc.want {
			t.Errorf("keyChanges(%s, %v) = %s, want %s", tc.kind, tc.data, got, tc.want)
		}
	}
}

// TestExplain explains the kv engine's events: the one-line summary, and
// only the kinds it writes.
func TestExplain(t *testing.T) {
	m := newModule()
	keys := func(ks ...string) []any {
		var out []any
		for i, k := range ks {
			out = append(out, map[string]any{"key": k, "prev_rev": int64(i + 1)})
		}
		return out
	}
	type data = map[string]any
	for _, tc := range []struct {
		kind, subject string
		data          data
		summary       string
		changes       int
	}{
		{"kv.put", "app/db", data{"key": "app/db", "value": "x"}, "put app/db", 1},
		{"kv.delete", "a", data{"keys": keys("a")}, "delete a", 1},
		{"kv.delete", "a", data{"keys": keys("a", "b"), "end": "c"}, "delete 2 keys from a to c", 2},
		{"kv.txn", "a", data{"ops": []any{
			data{"op": "put", "key": "a", "value": "1"}, data{"op": "delete", "key": "b"},
			data{"op": "put", "key": "c"}, data{"op": "put", "key": "d"}, data{"op": "put", "key": "e"},
		}}, "txn: put a, delete b, put c, and 2 more", 5},
		{"kv.compact", "9", data{"rev": uint64(9)}, "compact below revision 9", 0},
		{"lease.grant", "7", data{"id": "7", "ttl": int64(60)}, "grant lease 7, ttl 60s", 0},
		{"lease.revoke", "7", data{"id": "7", "keys": keys("s")}, "revoke lease 7, deleting 1 key", 1},
		{"lease.expire", "7", data{"id": "7", "keys": keys("s", "t")}, "lease 7 expired, deleting 2 keys", 2},
		{"lease.checkpoint", "7", data{"id": "7", "ttl": int64(30)}, "lease 7 lives at least 30s more", 0},
	} {
		ex, ok := m.Explain(kvEvent(tc.kind, tc.subject, tc.data))
		if !ok || ex.Summary != tc.summary || len(ex.Changes) != tc.changes {
			t.Errorf("Explain(%s %v) = %q with %d changes (%v), want %q with %d", tc.kind, tc.data, ex.Summary, len(ex.Changes), ok, tc.summary, tc.changes)
		}
	}
	if _, ok := m.Explain(kvEvent("app.note", "a", data{"key": "a", "value": "x"})); ok {
		t.Error("the kv engine explained app.note, a kind it does not write")
	}
	// The daemon finds the engine by kind among every module.
	ex, ok := engines.Explain([]engines.Module{m}, kvEvent("kv.put", "k", data{"key": "k", "value": "v", "prev_rev": int64(3)}))
	if !ok || len(ex.Changes) != 1 || *ex.Changes[0].After != "v" || ex.Changes[0].BeforeSeq != 3 || ex.Changes[0].Before != nil || ex.Changes[0].JSON {
		t.Errorf("engines.Explain(kv.put) = %+v, %v", ex, ok)
	}
	if _, ok := engines.Explain([]engines.Module{m}, kvEvent("app.note", "k", nil)); ok {
		t.Error("engines.Explain explained app.note")
	}
}

func kvEvent(kind, subject string, data map[string]any) *journal.Event {
	return &journal.Event{Body: journal.Body{Kind: kind, Subject: subject, Data: data}}
}
