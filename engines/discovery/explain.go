package discovery

import (
	"fmt"
	"slices"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

var _ engines.Explainer = (*Module)(nil)

// Kinds are every kind the engine writes (docs/events.md).
func (m *Module) Kinds() []string { return allKinds }

// MultiSubjectKinds are the events that change KV keys other than their
// subject: a txn, a prefix delete, a session's end releasing its locks.
func (m *Module) MultiSubjectKinds() []string {
	return []string{KindKVDelete, KindKVTxn, KindSessionDestroy}
}

func strp(s string) *string { return &s }

// Explain reads one of the engine's events: what it changed, before →
// after where the event carries both.
func (m *Module) Explain(ev *journal.Event) (engines.Explanation, bool) {
	if !slices.Contains(allKinds, ev.Kind) {
		return engines.Explanation{}, false
	}
	str := func(k string) string { s, _ := ev.Data[k].(string); return s }
	switch ev.Kind {
	case KindServiceRegister:
		return engines.Explanation{Summary: fmt.Sprintf("register %s (%s)", str("name"), str("id")),
			Changes: []engines.Change{{Subject: ev.Subject, After: strp("registered " + describe(ev.Data))}}}, true
	case KindServiceDeregister:
		after := "deregistered id=" + str("id")
		if r := str("reason"); r != "" {
			after += " (" + r + ")"
		}
		return engines.Explanation{Summary: fmt.Sprintf("deregister %s (%s)", str("name"), str("id")),
			Changes: []engines.Change{{Subject: ev.Subject, After: strp(after)}}}, true
	case KindCheck:
		return engines.Explanation{Summary: fmt.Sprintf("check %s %s -> %s", str("id"), str("from"), str("to")),
			Changes: []engines.Change{{Subject: ev.Subject, Before: strp("check " + str("id") + " " + str("from")), After: strp("check " + str("id") + " " + str("to") + ": " + str("output"))}}}, true
	case KindCheckRegister:
		return engines.Explanation{Summary: "register check " + str("id"),
			Changes: []engines.Change{{Subject: ev.Subject, After: strp(fmt.Sprintf("check %s registered (%s, %s)", str("id"), str("type"), str("status")))}}}, true
	case KindCheckDeregister:
		return engines.Explanation{Summary: "deregister check " + str("id"),
			Changes: []engines.Change{{Subject: ev.Subject, After: strp("check " + str("id") + " deregistered")}}}, true
	case KindSessionCreate, KindSessionDestroy:
		verb := "create"
		if ev.Kind == KindSessionDestroy {
			verb = "destroy"
		}
		ex := engines.Explanation{Summary: verb + " session " + str("id")}
		ex.Changes = append(ex.Changes, engines.Change{Subject: ev.Subject, After: strp(verb)})
		ex.Changes = append(ex.Changes, kvChanges(ev)...)
		return ex, true
	}
	changes := kvChanges(ev)
	summary := ev.Kind + " " + ev.Subject
	if len(changes) > 1 {
		summary = fmt.Sprintf("%s of %d keys", ev.Kind, len(changes))
	}
	return engines.Explanation{Summary: summary, Changes: changes}, true
}

// kvChanges are the KV keys an event sets or deletes, with their values
// after.
func kvChanges(ev *journal.Event) []engines.Change {
	ops, err := opsOf(ev.Data)
	if err != nil {
		return nil
	}
	var out []engines.Change
	for _, o := range ops {
		if o.Table != tabKV {
			continue
		}
		c := engines.Change{Subject: kvSubject(o.ID)}
		if o.Rec != nil {
			var e kvEntry
			if decodeRecord(o.Rec, &e) == nil {
				c.After = strp(string(e.Value))
			}
		}
		out = append(out, c)
	}
	return out
}
