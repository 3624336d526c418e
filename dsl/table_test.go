package dsl

import (
	"slices"
	"strings"
	"testing"
)

// testTable registers verbs shaped like cairn's real ones.
func testTable() *Table {
	t := NewTable()
	filters := []Option{
		{Name: "stream", Help: "audit, capture or * (default audit)"},
		{Name: "since", Kind: Time, Help: "events at or after this time"},
		{Name: "until", Kind: Time, Help: "events before this time"},
		{Name: "from", Kind: Int, Help: "first seq"},
		{Name: "to", Kind: Int, Help: "last seq"},
		{Name: "kind", Repeatable: true, Help: "kind glob"},
		{Name: "subject", Help: "subject glob"},
	}
	t.Register(Spec{Access: AccessRead, Verb: "status", Summary: "Show the node, version, uptime and per-stream counters."})
	t.Register(Spec{Access: AccessRead, Verb: "help", Summary: "Show help for every verb or one.",
		Args: []Arg{{Name: "VERB", Variadic: true, Help: "a verb path such as kv put"}}})
	t.Register(Spec{Access: AccessRead, Verb: "events", Summary: "List journal events.", Stream: true,
		Help:    "Example: events since=10m kind=kv.* where 'actor.uid != 0' limit=50",
		Options: append(slices.Clone(filters), Option{Name: "limit", Kind: Int, Help: "at most N events"}),
		Flags:   []Flag{{Name: "reverse", Help: "newest first"}}, Where: true})
	t.Register(Spec{Access: AccessRead, Verb: "tail", Summary: "Follow journal events live.", Stream: true,
		Options: filters, Where: true})
	t.Register(Spec{Access: AccessRead, Verb: "emit", Summary: "Record an event by hand in the audit stream.",
		Args: []Arg{{Name: "KIND", Required: true}, {Name: "SUBJECT", Required: true}}, Bag: true})
	t.Register(Spec{Access: AccessRead, Verb: "kv put", Summary: "Write a key.",
		Args:    []Arg{{Name: "KEY", Required: true}, {Name: "VALUE", Required: true}},
		Options: []Option{{Name: "lease", Meta: "ID", Help: "attach to a lease"}},
		Flags:   []Flag{{Name: "prev", Help: "return the previous value"}}})
	t.Register(Spec{Access: AccessRead, Verb: "kv get", Summary: "Read a key or a range.",
		Args:    []Arg{{Name: "KEY", Required: true}, {Name: "END", Help: "end of a range"}},
		Options: []Option{{Name: "at", Kind: SeqOrTime, Help: "as of a revision or time"}, {Name: "limit", Kind: Int}},
		Flags:   []Flag{{Name: "prefix", Help: "KEY is a prefix"}, {Name: "keys-only"}}})
	t.Register(Spec{Access: AccessRead, Verb: "kv watch", Summary: "Watch keys.", Stream: true,
		Args:    []Arg{{Name: "KEY", Required: true}},
		Options: []Option{{Name: "from", Kind: Int}},
		Flags:   []Flag{{Name: "prefix"}}})
	t.Register(Spec{Access: AccessRead, Verb: "kv txn", Summary: "Compare and write atomically.",
		Sections: []string{"if", "then", "else"}})
	t.Register(Spec{Access: AccessRead, Verb: "kv lease grant", Summary: "Grant a lease.",
		Args: []Arg{{Name: "TTL", Required: true}}})
	t.Register(Spec{Access: AccessRead, Verb: "capture run", Summary: "Run a command under capture.", Raw: true, Stream: true,
		Options: []Option{{Name: "timeout", Kind: Duration}}})
	t.Register(Spec{Access: AccessRead, Verb: "journal verify", Summary: "Recompute the hash chain.",
		Options: []Option{{Name: "stream"}}})
	t.Register(Spec{Access: AccessRead, Verb: "journal stats", Summary: "Show journal sizes."})
	t.Register(Spec{Access: AccessRead, Verb: "infra apply", Summary: "Apply an infra file.",
		Args: []Arg{{Name: "FILE", Required: true}}, Bag: true, BagPrefix: "var."})
	return t
}

func TestSpecsSorted(t *testing.T) {
	specs := testTable().Specs()
	if len(specs) == 0 {
		t.Fatal("no specs")
	}
	if !slices.IsSortedFunc(specs, func(a, b *Spec) int { return strings.Compare(a.Verb, b.Verb) }) {
		var verbs []string
		for _, s := range specs {
			verbs = append(verbs, s.Verb)
		}
		t.Fatalf("Specs() not sorted: %q", verbs)
	}
}

func TestRegisterPanics(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec Spec
	}{
		{"duplicate", Spec{Access: AccessRead, Verb: "kv put"}},
		{"empty verb", Spec{Access: AccessRead, Verb: ""}},
		{"four words", Spec{Access: AccessRead, Verb: "a b c d"}},
		{"quoted verb", Spec{Access: AccessRead, Verb: `a"b`}},
		{"optional before required", Spec{Access: AccessRead, Verb: "x", Args: []Arg{{Name: "A"}, {Name: "B", Required: true}}}},
		{"variadic not last", Spec{Access: AccessRead, Verb: "x", Args: []Arg{{Name: "A", Variadic: true}, {Name: "B"}}}},
		{"flag is where", Spec{Access: AccessRead, Verb: "x", Where: true, Flags: []Flag{{Name: "where"}}}},
		{"flag twice", Spec{Access: AccessRead, Verb: "x", Flags: []Flag{{Name: "a"}, {Name: "a"}}}},
		{"bad option name", Spec{Access: AccessRead, Verb: "x", Options: []Option{{Name: "a b"}}}},
		{"bad kind", Spec{Access: AccessRead, Verb: "x", Options: []Option{{Name: "a", Kind: 42}}}},
		{"prefix without bag", Spec{Access: AccessRead, Verb: "x", BagPrefix: "var."}},
		{"no access class", Spec{Verb: "x"}},
		{"client file not an argument", Spec{Access: AccessRead, Verb: "x", ClientFile: "NAME"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab := testTable()
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%+v) did not panic", tc.spec)
				}
			}()
			tab.Register(tc.spec)
		})
	}
}

func TestLookup(t *testing.T) {
	tab := testTable()
	if s, ok := tab.Lookup("kv  put"); !ok || s.Verb != "kv put" {
		t.Errorf(`Lookup("kv  put") = %v, %v`, s, ok)
	}
	if _, ok := tab.Lookup("kv"); ok {
		t.Error(`Lookup("kv") found a verb group`)
	}
}
