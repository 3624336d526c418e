package infra

import (
	"fmt"
	"testing"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

// TestExplain explains infra events as the fold applies them: the state
// record before and after each change, as JSON, and a summary.
func TestExplain(t *testing.T) {
	m := newModule()
	old := &ResourceState{Addr: "file.a", Type: "file", ID: "/x/a", Attrs: map[string]any{"content": "1"}}
	upd := &ResourceState{Addr: "file.a", Type: "file", ID: "/x/a", Attrs: map[string]any{"content": "2"}}
	moved := &ResourceState{Addr: "file.a[0]", Type: "file", ID: "/x/a", Attrs: map[string]any{"content": "2"}}
	const oldJSON = `{"addr":"file.a","attrs":{"content":"1"},"id":"/x/a","type":"file"}`
	const updJSON = `{"addr":"file.a","attrs":{"content":"2"},"id":"/x/a","type":"file"}`
	const movedJSON = `{"addr":"file.a[0]","attrs":{"content":"2"},"id":"/x/a","type":"file"}`
	type data = map[string]any
	show := func(cs []engines.Change) string {
		s := ""
		for _, c := range cs {
			str := func(p *string) string {
				if p == nil {
					return "nil"
				}
				return *p
			}
			s += fmt.Sprintf("[%s %s -> %s json=%v]", c.Subject, str(c.Before), str(c.After), c.JSON)
		}
		return s
	}
	for _, tc := range []struct {
		kind, subject string
		data          data
		summary       string
		changes       string
	}{
		{KindCreate, "default/file.a", data{"workspace": "default", "addr": "file.a", "type": "file", "id": "/x/a", "before": nil, "after": old.toMap()},
			"create default/file.a (id /x/a)", "[default/file.a nil -> " + oldJSON + " json=true]"},
		{KindUpdate, "default/file.a", data{"workspace": "default", "addr": "file.a", "type": "file", "id": "/x/a", "before": old.toMap(), "after": upd.toMap()},
			"update default/file.a (id /x/a)", "[default/file.a " + oldJSON + " -> " + updJSON + " json=true]"},
		{KindDelete, "default/file.a", data{"workspace": "default", "addr": "file.a", "type": "file", "id": "/x/a", "before": upd.toMap(), "after": nil},
			"delete default/file.a (id /x/a)", "[default/file.a " + updJSON + " -> nil json=true]"},
		{KindDelete, "default/file.a", data{"workspace": "default", "addr": "file.a", "type": "file", "id": "/x/a", "before": old.toMap(), "after": nil, "deposed": true},
			"delete the deposed object of default/file.a (id /x/a)", ""},
		{KindForget, "default/file.a", data{"workspace": "default", "addr": "file.a", "before": upd.toMap(), "reason": "gone outside cairn"},
			"forget default/file.a: gone outside cairn", "[default/file.a " + updJSON + " -> nil json=true]"},
		{KindMove, "default/file.a[0]", data{"workspace": "default", "addr": "file.a[0]", "from": "file.a", "type": "file", "id": "/x/a", "after": moved.toMap()},
			"move file.a to default/file.a[0]", "[default/file.a " + movedJSON + " -> nil json=true][default/file.a[0] nil -> " + movedJSON + " json=true]"},
		{KindPlan, "default", data{"dir": "/x", "destroy": false, "summary": data{"add": int64(1), "change": uint64(0), "destroy": int64(2)}},
			"plan workspace default: 1 to add, 0 to change, 2 to destroy", ""},
		{KindApply, "default", data{"plan": int64(4), "added": int64(1), "changed": int64(0), "destroyed": int64(2)},
			"apply to workspace default: 1 added, 0 changed, 2 destroyed", ""},
		{KindApply, "default", data{"plan": int64(4), "error": "file.a: permission denied\nmore"},
			"apply to workspace default failed: file.a: permission denied", ""},
		{KindDrift, "default/file.a", data{"attribute": "content", "expected": "2", "actual": "3"},
			`drift of default/file.a: content is "3", state has "2"`, ""},
	} {
		ex, ok := m.Explain(&journal.Event{Body: journal.Body{Kind: tc.kind, Subject: tc.subject, Data: tc.data}})
		if !ok || ex.Summary != tc.summary || show(ex.Changes) != tc.changes {
			t.Errorf("Explain(%s) = %q %s (%v), want %q %s", tc.kind, ex.Summary, show(ex.Changes), ok, tc.summary, tc.changes)
		}
	}
	if _, ok := m.Explain(&journal.Event{Body: journal.Body{Kind: "kv.put"}}); ok {
		t.Error("the infra engine explained kv.put")
	}
}
