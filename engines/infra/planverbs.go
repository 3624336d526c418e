package infra

import (
	"context"
	"fmt"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

// infra plan, infra apply and infra destroy share one path (planned):
// under the workspace's lock, read state, plan against reality, save the
// plan and show it. plan answers it; apply and destroy carry it out.

func (m *module) runPlan(ctx context.Context, r engines.Request) error {
	if r.Statement().Flags["refresh-only"] {
		return m.refreshOnly(ctx, r, false)
	}
	p, unlock, err := m.planned(ctx, r, r.Statement().Flags["destroy"])
	if err != nil {
		return err
	}
	defer unlock()
	if !p.Empty() {
		if err := r.Line(fmt.Sprintf("\nSaved the plan as %d: apply it with `infra apply plan=%d`.", p.ID, p.ID)); err != nil {
			return err
		}
	}
	return r.Row(planJSON(p))
}

func (m *module) runApply(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	w, saved := st.Opt("plan")
	_, hasPath := st.Args["PATH"]
	if st.Flags["refresh-only"] {
		if !hasPath || saved {
			return wire.Errorf(wire.InvalidArgument, "infra apply refresh-only needs PATH (and auto-approve), not plan=")
		}
		return m.refreshOnly(ctx, r, true)
	}
	switch {
	case saved && hasPath:
		return engines.Errorf(wire.InvalidArgument, w, "give PATH or plan=ID, not both")
	case saved:
		id, _ := w.Int()
		p := m.plans.take(id)
		if p == nil {
			return engines.Errorf(wire.NotFound, w, "plan %d is not held by this daemon (plans live in memory, as they hold variable values, until applied or the daemon restarts); run infra plan again", id)
		}
		return m.applySaved(ctx, r, p)
	case !hasPath:
		return wire.Errorf(wire.InvalidArgument, "infra apply needs PATH (with auto-approve) or plan=ID")
	}
	return m.applyNew(ctx, r, false)
}

func (m *module) runDestroy(ctx context.Context, r engines.Request) error {
	return m.applyNew(ctx, r, true)
}

// applyNew plans, and applies what it planned when the statement says
// auto-approve.
func (m *module) applyNew(ctx context.Context, r engines.Request, destroy bool) error {
	p, unlock, err := m.planned(ctx, r, destroy)
	if err != nil {
		return err
	}
	defer unlock()
	if p.Empty() {
		return r.Line("\nApply complete! Resources: 0 added, 0 changed, 0 destroyed.")
	}
	if !r.Statement().Flags["auto-approve"] {
		return wire.Errorf(wire.FailedPrecondition, "not applied: add auto-approve to apply this, or apply the saved plan with infra apply plan=%d", p.ID)
	}
	m.plans.take(p.ID) // applied now: not again
	return m.execute(ctx, r, p)
}

// applySaved applies a saved plan if neither state nor reality moved
// since it was made.
func (m *module) applySaved(ctx context.Context, r engines.Request, p *Plan) error {
	l := m.lock(p.Workspace)
	l.Lock()
	defer l.Unlock()
	meta, state, err := m.readState(p.Workspace)
	if err != nil {
		return err
	}
	if meta.Seq != p.StateSeq {
		return wire.Errorf(wire.FailedPrecondition, "plan %d is stale: the state of workspace %q changed since it was made (seq %d, now %d); run infra plan again", p.ID, p.Workspace, p.StateSeq, meta.Seq)
	}
	ss := newSessions(ctx, m.env(r.Actor()))
	actual, err := refresh(ctx, ss, state)
	ss.close()
	if err != nil {
		return err
	}
	if d := realityDigest(state, actual); d != p.Reality {
		return wire.Errorf(wire.FailedPrecondition, "plan %d is stale: reality changed since it was made (%d objects changed outside cairn); run infra plan again", p.ID, len(outside(state, actual)))
	}
	if p.Empty() {
		return r.Line("Apply complete! Resources: 0 added, 0 changed, 0 destroyed.")
	}
	return m.execute(ctx, r, p)
}

// planned takes the workspace's lock, plans against the state as of
// holding it, saves the plan and shows it; unlock releases the lock.
func (m *module) planned(ctx context.Context, r engines.Request, destroy bool) (p *Plan, unlock func(), err error) {
	req, release, err := m.lockedRequest(r, destroy)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			release()
		}
	}()
	if p, err = makePlan(ctx, req); err != nil {
		return nil, nil, err
	}
	if err = m.savePlan(ctx, r, p); err != nil {
		return nil, nil, err
	}
	if err = say(r, render(p)); err != nil {
		return nil, nil, err
	}
	return p, release, nil
}

// lockedRequest takes the workspace's apply lock, then builds the plan
// request from the state as of holding it; unlock releases the lock.
func (m *module) lockedRequest(r engines.Request, destroy bool) (req planRequest, unlock func(), err error) {
	_, ws, err := m.dirOf(r)
	if err != nil {
		return planRequest{}, nil, err
	}
	l := m.lock(ws)
	l.Lock()
	if req, err = m.request(r, destroy); err != nil {
		l.Unlock()
		return planRequest{}, nil, err
	}
	return req, l.Unlock, nil
}

// request builds a plan request under the workspace lock the caller holds.
func (m *module) request(r engines.Request, destroy bool) (planRequest, error) {
	st := r.Statement()
	dir, ws, err := m.dirOf(r)
	if err != nil {
		return planRequest{}, err
	}
	in, err := inputs(r, dir)
	if err != nil {
		return planRequest{}, err
	}
	meta, state, err := m.readState(ws)
	if err != nil {
		return planRequest{}, err
	}
	opts := planOptions{Workspace: ws, Dir: dir, StateSeq: meta.Seq, Targets: words(st, "target"), Replace: words(st, "replace"), Destroy: destroy,
		PriorOutputs: meta.Outputs}
	return planRequest{opts: opts, inputs: in, env: m.env(r.Actor()), state: state}, nil
}

// savePlan records the plan's infra.plan event, whose seq is its id, and
// keeps the plan in memory for infra apply plan=ID.
func (m *module) savePlan(ctx context.Context, r engines.Request, p *Plan) error {
	b := &journal.Body{Kind: KindPlan, Subject: subject(p.Workspace, ""), Node: m.node, Actor: r.Actor(), Data: p.eventData(map[string]any{
		"dir": p.Dir, "destroy": p.Destroy,
	})}
	c, err := m.audit.Append(ctx, b)
	if err != nil {
		return err
	}
	p.ID = c[0].Seq
	m.plans.put(p)
	return nil
}

// execute runs an apply under the workspace lock the caller holds.
func (m *module) execute(ctx context.Context, r engines.Request, p *Plan) error {
	st := r.Statement()
	par := int64(10)
	if w, ok := st.Opt("parallelism"); ok {
		if par, _ = w.Int(); par < 1 {
			return engines.Errorf(wire.InvalidArgument, w, "parallelism must be 1 or more")
		}
	}
	lines := make(chan string, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f, _ := r.(engines.Flusher)
		for l := range lines {
			_ = r.Line(l)
			if f != nil {
				_ = f.Flush() // progress shows as it happens, as terraform apply's does
			}
		}
	}()
	ss := newSessions(ctx, m.env(r.Actor()))
	a := &applier{plan: p, ss: ss, commit: m.commit, actor: r.Actor(), node: m.node, parallelism: int(par), planSeq: p.ID,
		say: func(s string) { lines <- s }}
	err := func() error {
		// Even if the apply panics, the progress writer is done with r
		// before anything else answers.
		defer func() {
			ss.close()
			close(lines)
			<-done
		}()
		return a.run(ctx)
	}()
	m.resubscribe() // an apply may have made or emptied a namespace
	if err != nil {
		return err
	}
	if err := r.Line(""); err != nil {
		return err
	}
	if p.Destroy {
		return r.Line(fmt.Sprintf("Destroy complete! Resources: %d destroyed.", a.destroyed))
	}
	if a.imported > 0 {
		return r.Line(fmt.Sprintf("Apply complete! Resources: %d imported, %d added, %d changed, %d destroyed.", a.imported, a.added, a.changed, a.destroyed))
	}
	return r.Line(fmt.Sprintf("Apply complete! Resources: %d added, %d changed, %d destroyed.", a.added, a.changed, a.destroyed))
}
