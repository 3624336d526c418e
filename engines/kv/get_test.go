package kv

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestGetAtFutureTimeAndMore: at= a future time is out_of_range as a
// future revision is; count-only with limit= says whether limit cuts.
func TestGetAtFutureTimeAndMore(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	got := e.run(ctx, `kv put a 1
kv put b 2
kv put c 3
kv get a at=2030-01-01T00:00:00Z`)
	e.clock.Advance(2 * time.Second)
	got += e.run(ctx, `kv get a at=2026-01-01T00:00:01Z
kv get "" prefix limit=2 count-only
kv get "" prefix limit=3 count-only
kv get "" prefix count-only`)
	for _, want := range []string{
		"error out_of_range: 1:13: at=2030-01-01T00:00:00Z is in the future",
		`> kv get a at=2026-01-01T00:00:01Z` + "\n" + `{"create_rev":1,"key":"a","lease":"0","mod_rev":1,"value":"1","version":1}`,
		`{"count":3,"more":true}`,
		`{"count":3,"more":false}`,
		`> kv get "" prefix count-only` + "\n" + `{"count":3}`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
}
