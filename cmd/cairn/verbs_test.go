//go:build !thin

package main

import (
	"sort"
	"testing"

	"github.com/cairnhq/cairn/engines"
)

// TestEveryVerb walks every module's verbs and the whole table: each
// module's list is sorted and every verb has a handler, a summary and an
// access class; every verb the table marks Client has a CLI handler here,
// and every CLI handler a Client verb. (The daemon's own lists are checked
// in package daemon, docs/dsl.md by TestDocsVerbs.)
func TestEveryVerb(t *testing.T) {
	for _, m := range engines.New() {
		verbs := m.Verbs()
		if !sort.SliceIsSorted(verbs, func(i, j int) bool { return verbs[i].Verb < verbs[j].Verb }) {
			t.Errorf("module %s: verbs are not sorted by verb", m.Name())
		}
		for _, v := range verbs {
			if v.Run == nil || v.Summary == "" || v.Access == 0 {
				t.Errorf("module %s: verb %q lacks a handler, a summary or an access class", m.Name(), v.Verb)
			}
		}
	}
	client := map[string]bool{}
	for _, sp := range verbTable().Specs() {
		if sp.Client {
			client[sp.Verb] = true
			if clientVerbs[sp.Verb] == nil {
				t.Errorf("verb %q runs in the client but the CLI has no handler for it", sp.Verb)
			}
		}
	}
	for v := range clientVerbs {
		if !client[v] {
			t.Errorf("the CLI handles %q, which the table does not mark Client", v)
		}
	}
}
