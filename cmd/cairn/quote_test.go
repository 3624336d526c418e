//go:build !thin

package main

import (
	"slices"
	"testing"

	"github.com/cairnhq/cairn/dsl"
)

func TestStatement(t *testing.T) {
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"status"}, `status`},
		{[]string{"kv", "put", "a", "b"}, `kv put a b`},
		{[]string{"kv", "put", "app/db/url", "postgres://db:5432/app"}, `kv put app/db/url postgres://db:5432/app`},
		{[]string{"kv", "put", "a", "hello world"}, `kv put a "hello world"`},
		{[]string{"kv", "put", "a", ""}, `kv put a ""`},
		{[]string{"kv", "put", "a", `say "hi"`}, `kv put a "say \"hi\""`},
		{[]string{"kv", "put", "a", `back\slash x`}, `kv put a "back\\slash x"`},
		{[]string{"kv", "put", "a", `back\slash`}, `kv put a back\slash`},
		{[]string{"kv", "put", "a", "it's"}, `kv put a "it's"`},
		{[]string{"kv", "put", "a", "x;y"}, `kv put a "x;y"`},
		{[]string{"kv", "put", "a", "x|y"}, `kv put a "x|y"`},
		{[]string{"kv", "put", "a", "#x"}, `kv put a "#x"`},
		{[]string{"kv", "put", "a", "tab\there"}, "kv put a \"tab\there\""},
		{[]string{"events", "where", "actor.uid != 0"}, `events where "actor.uid != 0"`},
		{[]string{"events", "where", `data.value == "x"`}, `events where "data.value == \"x\""`},
		// Options keep binding: only the value is quoted.
		{[]string{"emit", "note.add", "s", "msg=hello world", "n=3"}, `emit note.add s msg="hello world" n=3`},
		{[]string{"emit", "note.add", "s", "var.region=eu west"}, `emit note.add s var.region="eu west"`},
		{[]string{"emit", "note.add", "s", "msg="}, `emit note.add s msg=""`},
		{[]string{"kv", "put", "a", "x y=z"}, `kv put a "x y=z"`},
		{[]string{"kv", "put", "a", "=x y"}, `kv put a "=x y"`},
		// The verb is never quoted: `cairn "kv get a"` is the statement itself.
		{[]string{"kv get a"}, `kv get a`},
		{[]string{"events since=1h | chisel topkeys"}, `events since=1h | chisel topkeys`},
		// A lone | is the pipe.
		{[]string{"events", "since=1h", "|", "chisel", "topkeys"}, `events since=1h | chisel topkeys`},
		// After --, each word stays one word: the DSL unquotes it again.
		{[]string{"capture", "run", "--", "make", "-j2", "a b", `"q"`, "x=1 2"}, `capture run -- make -j2 "a b" "\"q\"" "x=1 2"`},
		{[]string{"capture", "run", "x y", "--", "--", "z"}, `capture run "x y" -- -- z`},
	} {
		if got := statement(tc.words); got != tc.want {
			t.Errorf("statement(%q)\n got %s\nwant %s", tc.words, got, tc.want)
		}
	}
}

// TestRawWordsRoundTrip: the words after -- come back from the DSL exactly
// as the shell gave them, so capture run runs the command the user typed.
func TestRawWordsRoundTrip(t *testing.T) {
	words := []string{"capture", "run", "--", "sh", "-c", "exit 7", `a "b" c`, "x=1 2", "|", "#", "--", ""}
	stmts, err := dsl.Parse(statement(words), verbTable())
	if err != nil {
		t.Fatal(err)
	}
	if got := stmts[0].Raw; !slices.Equal(got, words[3:]) {
		t.Fatalf("raw words %q, want %q", got, words[3:])
	}
}
