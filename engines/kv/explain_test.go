package kv

import (
	"fmt"
	"testing"

	"github.com/cairnhq/cairn/engines"
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
