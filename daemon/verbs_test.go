package daemon

import (
	"sort"
	"testing"

	"github.com/cairnhq/cairn/engines"
)

// TestDaemonVerbs keeps each list of the daemon's verbs sorted, so it reads
// as an index, and every verb complete: a handler, a summary, an access
// class. A table built from them registers without a Server.
func TestDaemonVerbs(t *testing.T) {
	for _, verbs := range daemonVerbs() {
		if !sort.SliceIsSorted(verbs, func(i, j int) bool { return verbs[i].Verb < verbs[j].Verb }) {
			var names []string
			for _, v := range verbs {
				names = append(names, v.Verb)
			}
			t.Errorf("a list of daemon verbs is not sorted by verb: %v", names)
		}
		for _, v := range verbs {
			if v.run == nil || v.Summary == "" || v.Access == 0 {
				t.Errorf("verb %q lacks a handler, a summary or an access class", v.Verb)
			}
		}
	}
	table := VerbTable(nil)
	if _, ok := table.Lookup("events"); !ok {
		t.Fatal("the table lacks events")
	}
	// Bound to a server, every spec holds its handler.
	for _, sp := range buildTable(&Server{}, []engines.Module{}).Specs() {
		if handlerOf(sp) == nil {
			t.Errorf("verb %q has no handler in the server's table", sp.Verb)
		}
	}
}
