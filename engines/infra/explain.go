package infra

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

var _ engines.Explainer = (*module)(nil)

// Kinds are every kind the infra engine writes (docs/events.md).
func (m *module) Kinds() []string {
	return []string{KindPlan, KindIntent, KindCreate, KindUpdate, KindDelete, KindImport, KindRefresh, KindForget, KindMove, KindDrift, KindApply}
}

// MultiSubjectKinds: an infra event changes the resource it is about and,
// for a move, the address it left, which its subject does not name; none
// is found by another subject.
func (m *module) MultiSubjectKinds() []string { return nil }

// Explain reads an infra event as the state fold does: the resource it
// changes, its state record before and after (as JSON), and a summary.
func (m *module) Explain(ev *journal.Event) (engines.Explanation, bool) {
	if !slices.Contains(m.Kinds(), ev.Kind) {
		return engines.Explanation{}, false
	}
	return engines.Explanation{Summary: explainSummary(ev), Changes: explainChanges(ev)}, true
}

// explainChanges are the state records an event replaces, as the fold
// applies them: a deposed delete leaves the new object in state and so
// changes nothing; a move takes the record from its old address to its
// new one.
func explainChanges(ev *journal.Event) []engines.Change {
	d := ev.Data
	switch ev.Kind {
	case KindCreate, KindUpdate, KindImport, KindRefresh, KindDelete, KindForget:
		if deposed, _ := d["deposed"].(bool); deposed {
			return nil
		}
		return []engines.Change{{Subject: ev.Subject, Before: record(d["before"]), After: record(d["after"]), JSON: true}}
	case KindMove:
		ws, _ := d["workspace"].(string)
		from, _ := d["from"].(string)
		moved := record(d["after"])
		return []engines.Change{
			{Subject: subject(ws, from), Before: moved, JSON: true},
			{Subject: ev.Subject, After: moved, JSON: true},
		}
	}
	return nil
}

// record is a state record as JSON, or nil for none.
func record(v any) *string {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	s := string(b)
	return &s
}

// explainSummary is one line saying what an infra event did.
func explainSummary(ev *journal.Event) string {
	d := ev.Data
	str := func(name string) string { s, _ := d[name].(string); return s }
	withID := func(verb string) string {
		if id := str("id"); id != "" {
			return fmt.Sprintf("%s %s (id %s)", verb, ev.Subject, id)
		}
		return verb + " " + ev.Subject
	}
	switch ev.Kind {
	case KindPlan:
		verb := "plan"
		if destroy, _ := d["destroy"].(bool); destroy {
			verb = "plan to destroy"
		}
		return fmt.Sprintf("%s workspace %s: %s", verb, ev.Subject, counts(d["summary"], "add", "change", "destroy"))
	case KindIntent:
		return fmt.Sprintf("apply plan %v to workspace %s: %s", d["plan"], ev.Subject, counts(d["summary"], "add", "change", "destroy"))
	case KindCreate:
		return withID("create")
	case KindUpdate:
		return withID("update")
	case KindDelete:
		if deposed, _ := d["deposed"].(bool); deposed {
			return withID("delete the deposed object of")
		}
		return withID("delete")
	case KindImport:
		return withID("import")
	case KindRefresh:
		return withID("refresh from reality")
	case KindForget:
		return fmt.Sprintf("forget %s: %s", ev.Subject, str("reason"))
	case KindMove:
		return fmt.Sprintf("move %s to %s", str("from"), ev.Subject)
	case KindDrift:
		return fmt.Sprintf("drift of %s: %s is %s, state has %s", ev.Subject, str("attribute"), jsonText(d["actual"]), jsonText(d["expected"]))
	case KindApply:
		if e := str("error"); e != "" {
			return fmt.Sprintf("apply to workspace %s failed: %s", ev.Subject, firstLine(e))
		}
		return fmt.Sprintf("apply to workspace %s: %s", ev.Subject, counts(d, "added", "changed", "destroyed"))
	}
	return ev.Kind
}

// counts renders the numbers a map holds under names, as terraform words
// them: "1 to add, 0 to change, 0 to destroy", "1 added, 0 changed".
func counts(v any, names ...string) string {
	m, _ := v.(map[string]any)
	parts := make([]string, len(names))
	for i, n := range names {
		x := m[n]
		if x == nil {
			x = 0
		}
		if strings.HasSuffix(n, "ed") {
			parts[i] = fmt.Sprintf("%s %s", jsonText(x), n)
		} else {
			parts[i] = fmt.Sprintf("%s to %s", jsonText(x), n)
		}
	}
	return strings.Join(parts, ", ")
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
