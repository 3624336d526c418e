package kv

import (
	"context"
	"strings"
	"testing"
)

// TestTxnErrorPosition: a txn error about one operation points at that
// operation's word (the second write to a key), not at 1:1.
func TestTxnErrorPosition(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, tc := range []struct{ src, want string }{
		{`kv txn if 'value("k") = "x"' then 'put k v4' 'put k v5'`, `error invalid_argument: 1:47: key "k": duplicate key`},
		{`kv txn then 'put a 1' 'get a' 'del a/ prefix' 'del a'`, `error invalid_argument: 1:48: key "a" put and deleted`},
		{`kv txn then 'del a' 'put b 1' 'put a 1'`, `error invalid_argument: 1:32: key "a" put and deleted`},
		{`kv txn if 'value("k") = "x"' then 'put k 1' else 'get k' 'put k 1 lease=99'`, `error not_found: 1:59: lease 99: requested lease not found`},
	} {
		got := e.run(ctx, tc.src)
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s:\n got %s\nwant %s", tc.src, got, tc.want)
		}
	}
}
