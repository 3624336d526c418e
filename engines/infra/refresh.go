package infra

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/engines/infra/provider"
	"github.com/cairnhq/cairn/journal"
)

// runRefresh reads every object of a workspace from reality and records
// what moved: infra.refresh for a changed object, infra.forget for a gone
// one.
func (m *module) runRefresh(ctx context.Context, r engines.Request) error {
	ws, err := m.knownWorkspace(r.Statement())
	if err != nil {
		return err
	}
	l := m.lock(ws)
	l.Lock()
	defer l.Unlock()
	_, state, err := m.readState(ws)
	if err != nil {
		return err
	}
	ss := newSessions(ctx, m.env(r.Actor()))
	actual, err := refresh(ctx, ss, state)
	ss.close()
	if err != nil {
		return err
	}
	bodies := refreshBodies(ws, state, actual, m.node, r.Actor())
	if len(bodies) > 0 {
		if _, err := m.commit(ctx, &commitReq{ws: ws, bodies: bodies}); err != nil {
			return err
		}
		m.resubscribe() // forgotten objects are no longer watched
	}
	return r.Line(fmt.Sprintf("Refreshed %d objects of workspace %q: %d updated from reality.", len(state), ws, len(bodies)))
}

// refreshBodies are the events that bring state to reality: one per
// object that changed or is gone.
func refreshBodies(ws string, state map[string]*ResourceState, actual map[string]provider.Values, node string, actor journal.Actor) []*journal.Body {
	var bodies []*journal.Body
	for _, a := range slices.Sorted(maps.Keys(state)) {
		rs := state[a]
		v, ok := actual[a]
		if !ok {
			bodies = append(bodies, &journal.Body{Kind: KindForget, Subject: subject(ws, a), Node: node, Actor: actor,
				Data: map[string]any{"workspace": ws, "addr": a, "before": rs.toMap(), "reason": "gone outside cairn"}})
			continue
		}
		next := *rs
		next.Attrs = map[string]any{}
		private := privateAttrs(rs.Type, v)
		for _, k := range slices.Sorted(maps.Keys(private)) {
			if !rs.sensitive(k) {
				next.Sensitive = append(slices.Clip(next.Sensitive), k)
			}
		}
		for k, x := range v {
			if (rs.sensitive(k) || private[k]) && x != nil {
				x = digest(x)
			}
			if x != nil {
				next.Attrs[k] = x
			}
		}
		if sameAttrs(rs.Attrs, next.Attrs) {
			continue
		}
		bodies = append(bodies, &journal.Body{Kind: KindRefresh, Subject: subject(ws, a), Node: node, Actor: actor,
			Data: map[string]any{"workspace": ws, "addr": a, "type": rs.Type, "id": rs.ID, "before": rs.toMap(), "after": next.toMap()}})
	}
	return bodies
}

func sameAttrs(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !equal(v, b[k]) {
			return false
		}
	}
	return true
}
