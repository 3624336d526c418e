package infra

import (
	"context"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/cairnhq/cairn/engines/infra/provider"
	"github.com/cairnhq/cairn/journal"
)

// driftDebounce gathers a burst of netlink notifications (ip link set …
// sends several) into one check, run this long after the first of them.
const driftDebounce = 100 * time.Millisecond

// driftWatcher watches every managed object a provider can watch (the net
// provider's links, addresses and routes, through netlink subscriptions)
// and records an infra.drift event when one moves away from state. Checks
// of a workspace wait for its apply to end, and compare with the state
// that apply left, so cairn's own applies never raise drift.
type driftWatcher struct {
	ctx context.Context    // the watcher's own: it ends at stop
	end context.CancelFunc // ends ctx
	m   *module

	mu      sync.Mutex
	stopped bool
	cancel  context.CancelFunc // ends the current subscriptions
	scopes  map[string]bool    // provider name + "\x00" + scope
	pending map[string]*time.Timer
	wg      sync.WaitGroup
}

// newDriftWatcher makes a watcher whose subscriptions and checks run
// under a context of its own, derived from parent and ended by stop: what
// it starts ends with the module, whatever the daemon does with parent.
func newDriftWatcher(parent context.Context, m *module) *driftWatcher {
	ctx, end := context.WithCancel(parent)
	return &driftWatcher{ctx: ctx, end: end, m: m, pending: map[string]*time.Timer{}}
}

// stop ends the subscriptions, drops the checks not yet due and waits for
// those running.
func (d *driftWatcher) stop() {
	d.mu.Lock()
	d.stopped = true
	d.end()
	for key, t := range d.pending {
		if t.Stop() {
			d.wg.Done() // its function will not run
			delete(d.pending, key)
		}
	}
	d.mu.Unlock()
	d.wg.Wait()
}

// watched returns the scopes managed objects live in, by provider.
func (d *driftWatcher) watched() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	sn := d.m.audit.Snapshot()
	defer sn.Close()
	rd := stateReader{sn}
	wss, err := rd.workspaces()
	if err != nil {
		d.m.log.Warn("drift: read workspaces", "err", err)
		return out
	}
	for _, ws := range wss {
		res, err := rd.resources(ws)
		if err != nil {
			d.m.log.Warn("drift: read state", "workspace", ws, "err", err)
			continue
		}
		for _, rs := range res {
			p := providerOf(rs.Type)
			w, ok := p.(provider.Watcher)
			if !ok {
				continue
			}
			scope, ok := w.Scope(rs.Type, rs.Attrs)
			if !ok {
				continue
			}
			if out[p.Name()] == nil {
				out[p.Name()] = map[string]bool{}
			}
			out[p.Name()][scope] = true
		}
	}
	return out
}

// resubscribe (re)starts the subscriptions when the set of scopes
// changed (an apply made a new namespace, a destroy emptied one). It runs
// on its caller's goroutine; the subscriptions run under d.ctx, so stop
// ends them.
func (d *driftWatcher) resubscribe() {
	want := d.watched()
	flat := map[string]bool{}
	for p, ss := range want {
		for s := range ss {
			flat[p+"\x00"+s] = true
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped || d.ctx.Err() != nil || sameSet(flat, d.scopes) {
		return
	}
	if d.cancel != nil {
		d.cancel()
	}
	ctx, cancel := context.WithCancel(d.ctx)
	d.cancel, d.scopes = cancel, flat
	all := provider.All()
	for pname, ss := range want {
		w := all[pname].(provider.Watcher)
		scopes := slices.Sorted(maps.Keys(ss))
		pname := pname
		for _, err := range w.Watch(ctx, scopes, func(c provider.Change) { d.changed(pname, c.Scope) }) {
			d.m.log.Warn("drift: cannot watch", "provider", pname, "err", err)
		}
	}
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func (d *driftWatcher) changed(pname, scope string) {
	key := pname + "\x00" + scope
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped || d.ctx.Err() != nil {
		return
	}
	if _, ok := d.pending[key]; ok {
		return // a check is due already; a burst is one check, never postponed
	}
	d.wg.Add(1)
	d.pending[key] = time.AfterFunc(driftDebounce, func() {
		defer d.wg.Done()
		d.mu.Lock()
		delete(d.pending, key)
		d.mu.Unlock()
		d.checkAll(pname, scope)
	})
}

func (d *driftWatcher) checkAll(pname, scope string) {
	sn := d.m.audit.Snapshot()
	wss, err := stateReader{sn}.workspaces()
	sn.Close()
	if err != nil {
		return
	}
	for _, ws := range wss {
		if err := d.check(ws, pname, scope); err != nil && d.ctx.Err() == nil {
			d.m.log.Warn("drift: check", "workspace", ws, "scope", scope, "err", err)
		}
	}
}

// check compares reality with state for the workspace's objects in one
// scope, and records what moved.
func (d *driftWatcher) check(ws, pname, scope string) error {
	l := d.m.lock(ws)
	l.Lock()
	defer l.Unlock()
	sn := d.m.audit.Snapshot()
	rd := stateReader{sn}
	res, err := rd.resources(ws)
	var open []Drift
	if err == nil {
		open, err = rd.drift(ws)
	}
	sn.Close()
	if err != nil {
		return err
	}
	openAt := map[string]any{}
	for _, o := range open {
		openAt[o.Addr+"\x00"+o.Attribute] = o.Actual
	}
	p := provider.All()[pname]
	w := p.(provider.Watcher)
	var mine []*ResourceState
	for _, rs := range res {
		if providerOf(rs.Type) != p {
			continue
		}
		if s, ok := w.Scope(rs.Type, rs.Attrs); ok && s == scope {
			mine = append(mine, rs)
		}
	}
	if len(mine) == 0 {
		return nil
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].Addr < mine[j].Addr })
	ss := newSessions(d.ctx, d.m.env(journal.SystemActor()))
	defer ss.close()
	var bodies []*journal.Body
	for _, rs := range mine {
		s, err := ss.get(rs.Type)
		if err != nil {
			return err
		}
		got, found, err := resourceType(rs.Type).Read(d.ctx, s, rs.ID)
		if err != nil {
			return err
		}
		for _, x := range driftOf(rs, got, found) {
			k := rs.Addr + "\x00" + x.Attribute
			if prev, ok := openAt[k]; ok && equal(prev, x.Actual) {
				continue
			}
			bodies = append(bodies, &journal.Body{Kind: KindDrift, Subject: subject(ws, rs.Addr), Node: d.m.node,
				Actor: journal.SystemActor(),
				Data: map[string]any{"workspace": ws, "addr": rs.Addr, "type": rs.Type, "id": rs.ID,
					"attribute": x.Attribute, "expected": x.Expected, "actual": x.Actual}})
		}
	}
	if len(bodies) == 0 {
		return nil
	}
	_, err = d.m.commit(d.ctx, &commitReq{ws: ws, bodies: bodies})
	return err
}

// driftOf lists the configured attributes of rs whose reality differs.
func driftOf(rs *ResourceState, got map[string]any, found bool) []Drift {
	if !found {
		return []Drift{{Addr: rs.Addr, Attribute: "exists", Expected: true, Actual: false}}
	}
	var out []Drift
	private := privateAttrs(rs.Type, got)
	for _, attr := range rs.Config {
		want, have := rs.Attrs[attr], got[attr]
		if rs.sensitive(attr) {
			if digest(have) != want {
				out = append(out, Drift{Addr: rs.Addr, Attribute: attr, Expected: "(sensitive value)", Actual: "(sensitive value, changed)"})
			}
			continue
		}
		if private[attr] {
			// Reality became private: what state recorded is public
			// already, what the object holds now is not.
			if !equal(want, have) {
				out = append(out, Drift{Addr: rs.Addr, Attribute: attr, Expected: want, Actual: "(private value, changed)"})
			}
			continue
		}
		if !equal(want, have) {
			out = append(out, Drift{Addr: rs.Addr, Attribute: attr, Expected: want, Actual: have})
		}
	}
	return out
}
