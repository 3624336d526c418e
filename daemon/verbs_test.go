package daemon

import (
	"sort"
	"testing"
)

// TestCoreVerbsSorted keeps the verb table sorted, so it reads as an index.
func TestCoreVerbsSorted(t *testing.T) {
	verbs := coreVerbs(&Server{})
	if !sort.SliceIsSorted(verbs, func(i, j int) bool { return verbs[i].Verb < verbs[j].Verb }) {
		var names []string
		for _, v := range verbs {
			names = append(names, v.Verb)
		}
		t.Errorf("coreVerbs is not sorted by verb: %v", names)
	}
	for _, v := range verbs {
		if v.Run == nil || v.Summary == "" {
			t.Errorf("verb %q lacks a handler or a summary", v.Verb)
		}
	}
}
