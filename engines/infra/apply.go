package infra

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/engines/infra/config"
	"github.com/cairnhq/cairn/engines/infra/provider"
	"github.com/cairnhq/cairn/journal"
)

// committer appends infra events to the audit stream.
type committer func(ctx context.Context, req *commitReq) ([]journal.Committed, error)

// applier carries out one plan.
type applier struct {
	plan        *Plan
	ss          *sessions
	commit      committer
	actor       journal.Actor
	node        string
	parallelism int
	say         func(string)
	planSeq     int64

	mu        sync.Mutex
	imported  int
	added     int
	changed   int
	destroyed int
	failures  []string
}

// step is one unit of an apply: create or update (or read) an instance,
// delete one, or evaluate a local.
type step struct {
	key    string
	deps   []*step
	done   chan struct{}
	failed bool // set before done closes
	run    func(ctx context.Context) error
	what   string // the address shown when it fails
}

func (a *applier) body(kind, addr string, data map[string]any) *journal.Body {
	if data == nil {
		data = map[string]any{}
	}
	data["workspace"] = a.plan.Workspace
	if addr != "" {
		data["addr"] = addr
	}
	return &journal.Body{Kind: kind, Subject: subject(a.plan.Workspace, addr), Node: a.node, Actor: a.actor, Data: data}
}

// record commits one event of a change already made: even when the
// request is cancelled meanwhile, what happened is written down.
func (a *applier) record(ctx context.Context, b *journal.Body) error {
	_, err := a.commit(context.WithoutCancel(ctx), &commitReq{ws: a.plan.Workspace, bodies: []*journal.Body{b}})
	return err
}

// run applies the plan: the intent first, then every step in dependency
// order, independent ones in parallel, each completed change committed as
// it happens; then the outputs.
func (a *applier) run(ctx context.Context) error {
	p := a.plan
	intent := a.body(KindIntent, "", p.eventData(map[string]any{"plan": a.planSeq, "dir": p.Dir}))
	steps, err := a.steps()
	if err != nil {
		return err
	}
	bodies := []*journal.Body{intent}
	for _, mv := range p.Moves {
		rs := p.stateRes[mv.To]
		bodies = append(bodies, a.body(KindMove, mv.To, map[string]any{"from": mv.From, "type": rs.Type, "id": rs.ID, "after": rs.toMap()}))
	}
	if _, err := a.commit(ctx, &commitReq{ws: p.Workspace, check: true, expectSeq: p.StateSeq, bodies: bodies}); err != nil {
		return err
	}
	var typs []string
	for _, c := range p.Changes {
		typs = append(typs, c.Type)
	}
	if err := a.ss.open(typs); err != nil {
		return err
	}
	sem := make(chan struct{}, max(a.parallelism, 1))
	var wg sync.WaitGroup
	for _, s := range steps {
		wg.Add(1)
		go func(s *step) {
			defer wg.Done()
			defer close(s.done)
			for _, d := range s.deps {
				select {
				case <-d.done:
				case <-ctx.Done():
					s.failed = true
					return
				}
				if d.failed {
					s.failed = true
					return
				}
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				s.failed = true
				return
			}
			err := runStep(ctx, s)
			<-sem
			if err != nil {
				s.failed = true
				a.mu.Lock()
				a.failures = append(a.failures, fmt.Sprintf("%s: %v", s.what, err))
				a.mu.Unlock()
				a.say(fmt.Sprintf("Error: %s: %v", s.what, err))
			}
		}(s)
	}
	wg.Wait()

	outputs := map[string]any{}
	if len(a.failures) == 0 && !p.Destroy {
		for _, n := range p.order {
			if n.out == nil {
				continue
			}
			if n.prefix != "" {
				continue // a module's: evaluated as a step
			}
			v, d := n.out.Expr.Value(p.eval.context(p.eval.rootMod(), n.refs, nil, cty.NilVal))
			if d.HasErrors() {
				a.failures = append(a.failures, config.Format(d))
				continue
			}
			uv, _ := v.UnmarkDeep()
			if !uv.IsWhollyKnown() {
				continue
			}
			outputs[n.out.Name] = outputValue(uv, n.out.Sensitive)
		}
		for _, w := range p.eval.checks() {
			a.say("Warning: " + w)
		}
	}
	sort.Strings(a.failures)
	data := map[string]any{
		"plan": a.planSeq, "dir": p.Dir, "added": int64(a.added), "changed": int64(a.changed), "destroyed": int64(a.destroyed),
	}
	if len(a.failures) == 0 {
		data["outputs"] = outputs
	} else {
		data["error"] = strings.Join(a.failures, "; ")
	}
	if err := a.record(context.WithoutCancel(ctx), a.body(KindApply, "", data)); err != nil {
		return err
	}
	if len(a.failures) > 0 {
		return wire.Errorf(wire.FailedPrecondition, "apply failed after %d added, %d changed, %d destroyed (each recorded): %s; fix it and apply again",
			a.added, a.changed, a.destroyed, strings.Join(a.failures, "; "))
	}
	return nil
}

// runStep runs one step; a panic fails the step, not the daemon.
func runStep(ctx context.Context, s *step) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error (%v); please report it with the configuration", p)
		}
	}()
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.run(ctx)
}

// steps builds the apply's steps with their dependencies.
func (a *applier) steps() ([]*step, error) {
	p := a.plan
	var all []*step
	newStep := func(key, what string, run func(context.Context) error) *step {
		s := &step{key: key, what: what, done: make(chan struct{}), run: run}
		all = append(all, s)
		return s
	}
	byDep := map[string][]*step{}  // config address -> its apply steps
	applyOf := map[string]*step{}  // instance address -> its create/update step
	deleteOf := map[string]*step{} // instance address -> its delete step
	changeOf := map[string]*Change{}
	for _, c := range p.Changes {
		changeOf[c.Addr] = c
		switch c.Action {
		case Delete, Replace, ReplaceCBD:
			c := c
			deleteOf[c.Addr] = newStep("d:"+c.Addr, c.Addr, func(ctx context.Context) error { return a.destroy(ctx, c) })
		}
		if c.forget {
			c := c
			deleteOf[c.Addr] = newStep("f:"+c.Addr, c.Addr, func(ctx context.Context) error {
				why := "gone outside cairn"
				if c.forgetWhy != "" {
					why = c.forgetWhy
				}
				return a.record(ctx, a.body(KindForget, c.Addr, map[string]any{"before": c.prior.toMap(), "reason": why}))
			})
		}
	}
	for _, n := range p.order {
		switch {
		case n.local != nil || n.call != nil || n.out != nil && n.prefix != "":
			n := n
			s := newStep("l:"+n.addr, n.addr, func(ctx context.Context) error {
				for _, mi := range p.eval.modsOf(n) {
					if err := p.eval.evalNode(n, mi); err != nil {
						return err
					}
				}
				return nil
			})
			byDep[n.addr] = append(byDep[n.addr], s)
		case n.res != nil:
			byDep[n.addr] = nil
		}
	}
	for _, c := range p.Changes {
		if c.node == nil || c.Action == Delete {
			continue
		}
		c := c
		s := newStep("a:"+c.Addr, c.Addr, func(ctx context.Context) error { return a.apply(ctx, c) })
		applyOf[c.Addr] = s
		byDep[c.resAddr] = append(byDep[c.resAddr], s)
	}
	// Dependencies.
	for _, n := range p.order {
		if n.res != nil || n.out != nil && n.prefix == "" {
			continue
		}
		for _, s := range byDep[n.addr] {
			for _, d := range n.deps {
				s.deps = append(s.deps, byDep[d]...)
			}
		}
	}
	for addr, s := range applyOf {
		c := changeOf[addr]
		for _, d := range c.node.deps {
			s.deps = append(s.deps, byDep[d]...)
		}
		if c.Action == Replace {
			s.deps = append(s.deps, deleteOf[addr])
		}
		// An object is made only after another with its id is gone (an
		// orphan whose address changed, a replaced neighbour).
		if c.newID != "" {
			for other, ds := range deleteOf {
				if other != addr && changeOf[other].prior != nil && changeOf[other].prior.ID == c.newID {
					s.deps = append(s.deps, ds)
				}
			}
		}
	}
	for addr, s := range deleteOf {
		c := changeOf[addr]
		if c.Action == ReplaceCBD {
			s.deps = append(s.deps, applyOf[addr])
		}
		// An object is deleted only after everything being deleted that
		// depends on it.
		for other, ds := range deleteOf {
			if other == addr {
				continue
			}
			oc := changeOf[other]
			deps := oc.deps
			if oc.prior != nil && len(oc.prior.Deps) > 0 {
				deps = oc.prior.Deps
			}
			for _, d := range deps {
				if d == c.resAddr {
					s.deps = append(s.deps, ds)
				}
			}
		}
	}
	if cyc := cycle(all); cyc != nil {
		return nil, wire.Errorf(wire.FailedPrecondition, "the apply's steps wait on each other (%s); nothing was applied — please report it with the configuration", strings.Join(cyc, " -> "))
	}
	return all, nil
}

// cycle returns the keys of a dependency cycle among steps, or nil.
func cycle(steps []*step) []string {
	const (
		unseen = iota
		open
		closed
	)
	state := map[*step]int{}
	var path []string
	var visit func(s *step) []string
	visit = func(s *step) []string {
		switch state[s] {
		case open:
			return append(path, s.key)
		case closed:
			return nil
		}
		state[s] = open
		path = append(path, s.key)
		for _, d := range s.deps {
			if c := visit(d); c != nil {
				return c
			}
		}
		path = path[:len(path)-1]
		state[s] = closed
		return nil
	}
	for _, s := range steps {
		if c := visit(s); c != nil {
			return c
		}
	}
	return nil
}

func (a *applier) sayf(format string, args ...any) { a.say(fmt.Sprintf(format, args...)) }

// planned returns the values to create or update an instance with.
func planned(sch *provider.Schema, cv *configValues, actual provider.Values, lc config.Lifecycle) provider.Values {
	out := provider.Values{}
	for name, at := range sch.Attributes {
		ignored := actual != nil && (contains(lc.IgnoreChanges, "all") || contains(lc.IgnoreChanges, name))
		switch {
		case ignored:
			out[name] = actual[name]
		case cv.set[name]:
			out[name] = cv.vals[name]
		case at.Computed && actual != nil:
			out[name] = actual[name]
		}
	}
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// stateOf builds the state record of an instance from what the provider
// answered.
func stateOf(c *Change, id string, sch *provider.Schema, got provider.Values, cv *configValues) *ResourceState {
	rs := &ResourceState{Addr: c.Addr, Type: c.Type, ID: id, Attrs: map[string]any{}, Deps: c.deps}
	private := privateAttrs(c.Type, got)
	for _, name := range sch.Names() {
		at := sch.Attributes[name]
		v := got[name]
		sens := at.Sensitive || cv.sensitive[name] || private[name]
		if sens {
			rs.Sensitive = append(rs.Sensitive, name)
			if v != nil {
				v = digest(v)
			}
		}
		if v != nil {
			rs.Attrs[name] = v
		}
		if cv.set[name] && !contains(c.lc.IgnoreChanges, "all") && !contains(c.lc.IgnoreChanges, name) {
			rs.Config = append(rs.Config, name)
		}
	}
	return rs
}

// redacted is a state record as events show it (sensitive attributes are
// digests already).
func (a *applier) apply(ctx context.Context, c *Change) error {
	p := a.plan
	n := c.node
	if c.Mode == "data" {
		cv, d := p.eval.instanceConfig(n, &c.inst)
		if d.HasErrors() {
			return diagErr(d)
		}
		a.sayf("%s: Reading...", c.Addr)
		got, err := readData(ctx, a.ss, n.res.Type, cv.vals)
		if err != nil {
			return err
		}
		p.eval.setInstance(&c.inst, dataValue(n, cv, got))
		a.sayf("%s: Read complete", c.Addr)
		return nil
	}
	if c.Importing {
		if err := a.record(ctx, a.body(KindImport, c.Addr, map[string]any{"type": c.Type, "id": c.prior.ID, "after": c.prior.toMap(), "dir": p.Dir, "block": true})); err != nil {
			return err
		}
		a.sayf("%s: Import complete [id=%s]", c.Addr, c.prior.ID)
		a.mu.Lock()
		a.imported++
		a.mu.Unlock()
	}
	rt := resourceType(c.Type)
	sch := rt.Schema()
	cv, d := p.eval.instanceConfig(n, &c.inst)
	if d.HasErrors() {
		return diagErr(d)
	}
	if len(cv.unknown) > 0 {
		var names []string
		for k := range cv.unknown {
			names = append(names, k)
		}
		sort.Strings(names)
		return fmt.Errorf("%s still unknown after what it depends on was applied", strings.Join(names, ", "))
	}
	for name, v := range c.cfg.vals {
		if !equal(v, cv.vals[name]) {
			return fmt.Errorf("attribute %s was %s in the plan but is %s now; run infra plan again", name, display(v), display(cv.vals[name]))
		}
	}
	// sensitive is what the evaluator marks in the values of an object:
	// configured secrets, sensitive attributes and what the object keeps
	// private (an output of it then needs sensitive = true).
	sensitive := func(v provider.Values) func(string) bool {
		private := privateAttrs(c.Type, v)
		return func(attr string) bool { return cv.sensitive[attr] || sch.Attributes[attr].Sensitive || private[attr] }
	}
	s, err := a.ss.get(c.Type)
	if err != nil {
		return err
	}
	action := c.Action
	if c.reapply {
		// What it refers to was just replaced: reality may have moved
		// under it (a port taken off its bridge), or taken it along (an
		// address of the bridge), which is then made again.
		fresh, found, err := readObject(ctx, rt, s, c.prior)
		if err != nil {
			return err
		}
		if found {
			c.actual = fresh
		} else {
			action = Create
			a.sayf("%s: gone along with the replaced %s; creating it again", c.Addr, c.reapplyRoot)
		}
	}
	switch action {
	case NoOp:
		if c.actual != nil {
			p.eval.setInstance(&c.inst, objectValue(sch, ctyValues(sch, c.actual, sensitive(c.actual)), cty.StringVal(c.prior.ID)))
		}
		return nil
	case Create, Replace, ReplaceCBD:
		want := planned(sch, cv, nil, c.lc)
		id, err := rt.ID(want)
		if err != nil {
			return err
		}
		a.sayf("%s: Creating...", c.Addr)
		start := time.Now()
		got, err := rt.Create(ctx, s, want)
		if err != nil {
			return err
		}
		if id == "" {
			// A state-backed object's id is made with it.
			if id = got.String("id"); id == "" {
				return fmt.Errorf("the provider made the object but answered no id")
			}
			got = got.Clone()
			delete(got, "id")
		}
		rs := stateOf(c, id, sch, got, cv)
		var before any
		if action == Create && c.prior != nil {
			before = c.prior.toMap()
		}
		if err := a.record(ctx, a.body(KindCreate, c.Addr, map[string]any{"type": c.Type, "id": id, "before": before, "after": rs.toMap(), "dir": p.Dir})); err != nil {
			return err
		}
		self := objectValue(sch, ctyValues(sch, got, sensitive(got)), cty.StringVal(id))
		p.eval.setInstance(&c.inst, self)
		if err := a.postconditions(c, self); err != nil {
			return err
		}
		a.mu.Lock()
		a.added++
		a.mu.Unlock()
		a.sayf("%s: Creation complete after %s [id=%s]", c.Addr, since(start), id)
		return nil
	case Update:
		want := planned(sch, cv, c.actual, c.lc)
		a.sayf("%s: Modifying... [id=%s]", c.Addr, c.prior.ID)
		start := time.Now()
		got, err := rt.Update(ctx, s, c.prior.ID, c.actual, want)
		if err != nil {
			return err
		}
		rs := stateOf(c, c.prior.ID, sch, got, cv)
		beforeRS := stateOf(c, c.prior.ID, sch, c.actual, cv)
		if err := a.record(ctx, a.body(KindUpdate, c.Addr, map[string]any{"type": c.Type, "id": c.prior.ID, "before": beforeRS.toMap(), "after": rs.toMap(), "dir": p.Dir})); err != nil {
			return err
		}
		self := objectValue(sch, ctyValues(sch, got, sensitive(got)), cty.StringVal(c.prior.ID))
		p.eval.setInstance(&c.inst, self)
		if err := a.postconditions(c, self); err != nil {
			return err
		}
		a.mu.Lock()
		a.changed++
		a.mu.Unlock()
		a.sayf("%s: Modifications complete after %s [id=%s]", c.Addr, since(start), c.prior.ID)
		return nil
	}
	return nil
}

// postconditions checks a resource's postconditions against what the
// apply made of it: what depends on it is not applied when one fails.
func (a *applier) postconditions(c *Change, self cty.Value) error {
	n := c.node
	if len(n.res.Lifecycle.Postconditions) == 0 {
		return nil
	}
	return a.plan.eval.conditions(n.res.Lifecycle.Postconditions, a.plan.eval.context(c.inst.mod, n.refs, &c.inst, self), "Resource postcondition failed")
}

func (a *applier) destroy(ctx context.Context, c *Change) error {
	rt := resourceType(c.Type)
	if rt == nil {
		return fmt.Errorf("no provider offers type %q", c.Type)
	}
	s, err := a.ss.get(c.Type)
	if err != nil {
		return err
	}
	a.sayf("%s: Destroying... [id=%s]", c.Addr, c.prior.ID)
	start := time.Now()
	if c.actual != nil {
		if err := rt.Delete(ctx, s, c.prior.ID, c.actual); err != nil {
			return err
		}
	}
	before := c.prior
	if c.actual != nil {
		b := *c.prior
		b.Attrs = map[string]any{}
		private := privateAttrs(c.Type, c.actual)
		for k, v := range c.actual {
			if (c.prior.sensitive(k) || private[k]) && v != nil {
				v = digest(v)
			}
			if v != nil {
				b.Attrs[k] = v
			}
		}
		before = &b
	}
	data := map[string]any{"type": c.Type, "id": c.prior.ID, "before": before.toMap(), "after": nil}
	if c.Action == ReplaceCBD {
		data["deposed"] = true // its replacement is in state already
	}
	if err := a.record(ctx, a.body(KindDelete, c.Addr, data)); err != nil {
		return err
	}
	a.mu.Lock()
	a.destroyed++
	a.mu.Unlock()
	a.sayf("%s: Destruction complete after %s", c.Addr, since(start))
	return nil
}

func since(t time.Time) string {
	d := time.Since(t)
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}
