package main

import (
	"encoding/json"
	"fmt"
	"testing"
)

func TestComplete(t *testing.T) {
	verbs := parseVerbs([]json.RawMessage{
		json.RawMessage(`{"verb":"kv put","usage":"kv put KEY VALUE","summary":"…"}`),
		json.RawMessage(`{"verb":"kv get","usage":"kv get KEY","summary":"…"}`),
		json.RawMessage(`{"verb":"kv history"}`),
		json.RawMessage(`{"verb":"kv watch"}`),
		json.RawMessage(`{"verb":"journal verify"}`),
		json.RawMessage(`{"verb":"journal stats"}`),
		json.RawMessage(`{"verb":"status"}`),
		json.RawMessage(`{"verb":"events"}`),
		json.RawMessage(`{"verb":"emit"}`),
		json.RawMessage(`{"nope":1}`),
	})
	for _, tc := range []struct {
		line    string
		pos     int // -1: end of line
		want    string
		wantPos int
		choices string
	}{
		{"st", -1, "status ", 7, "[]"},
		{"k", -1, "kv ", 3, "[]"},
		{"kv ", -1, "kv ", 3, "[get history put watch]"},
		{"kv p", -1, "kv put ", 7, "[]"},
		{"kv h", -1, "kv history ", 11, "[]"},
		{"e", -1, "e", 1, "[emit events]"},
		{"ev", -1, "events ", 7, "[]"},
		{"journal s", -1, "journal stats ", 14, "[]"},
		{"j", -1, "journal ", 8, "[]"},
		{"", -1, "", 0, "[emit events journal kv status]"},
		{"kv put a", -1, "kv put a", 8, "[]"},
		{"zz", -1, "zz", 2, "[]"},
		// Completion at the cursor keeps what follows it.
		{"kv g a", 4, "kv get a", 6, "[]"},
	} {
		pos := tc.pos
		if pos < 0 {
			pos = len(tc.line)
		}
		got, gotPos, choices := complete(verbs, tc.line, pos)
		if got != tc.want || gotPos != tc.wantPos || fmt.Sprint(choices) != tc.choices {
			t.Errorf("complete(%q, %d) = %q, %d, %v; want %q, %d, %s",
				tc.line, pos, got, gotPos, choices, tc.want, tc.wantPos, tc.choices)
		}
	}
}
