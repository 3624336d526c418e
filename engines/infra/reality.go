package infra

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cairnhq/cairn/engines/infra/config"
	"github.com/cairnhq/cairn/engines/infra/provider"
)

// This file is the edge of planning: what reads disk and asks providers.
// The planner (plan) is handed what it reads here.

// Reality is what the providers answered for one plan: every object of
// state as it is now (absent: gone), and every data source instance read
// so far, by instance address.
type Reality struct {
	Objects map[string]provider.Values
	Data    map[string]provider.Values
	// Imported names the objects import blocks bring in: state given to
	// the planner holds them already, as reality has them.
	Imported map[string]bool
}

// planRequest is what plan, apply and destroy (without a saved plan)
// start from: where the configuration and the variables are, the state
// as read under the workspace lock, and what the statement asks.
type planRequest struct {
	opts   planOptions
	inputs config.Inputs
	env    provider.Env
	state  map[string]*ResourceState
}

// makePlan loads the configuration and the variables, refreshes reality
// and hands them to the planner; when the planner needs data sources read
// (their arguments known only now), it reads them and plans again.
func makePlan(ctx context.Context, req planRequest) (*Plan, error) {
	cfg, diags, err := loadConfig(req.env.Actor, req.opts.Dir)
	if err != nil {
		return nil, err
	}
	if diags.HasErrors() {
		return nil, diagErr(diags)
	}
	vars, diags, err := variableValues(req.env.Actor, cfg, req.inputs)
	if err != nil {
		return nil, err
	}
	if diags.HasErrors() {
		return nil, diagErr(diags)
	}
	req.opts.ReadFile = fileReader(req.env.Actor)
	ss := newSessions(ctx, req.env)
	defer ss.close()
	objects, err := refresh(ctx, ss, req.state)
	if err != nil {
		return nil, err
	}
	real := Reality{Objects: objects, Data: map[string]provider.Values{}}
	state := req.state
	if len(cfg.Imports) > 0 && !req.opts.Destroy {
		if state, err = importBlocks(ctx, ss, cfg, vars, state, &real); err != nil {
			return nil, err
		}
	}
	for {
		p, err := plan(cfg, vars, state, real, req.opts)
		if err != nil || len(p.reads) == 0 {
			return p, err
		}
		// Each round reads at least one instance not read before: the
		// loop ends after at most one round per data source instance.
		for _, rd := range p.reads {
			got, err := readData(ctx, ss, rd.typ, rd.args)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", rd.addr, err)
			}
			real.Data[rd.addr] = got
		}
	}
}

// readData reads one data source instance.
func readData(ctx context.Context, ss *sessions, typ string, args provider.Values) (provider.Values, error) {
	s, err := ss.get(typ)
	if err != nil {
		return nil, err
	}
	return dataType(typ).Read(ctx, s, args)
}

// sessions opens one provider session per provider on demand.
type sessions struct {
	env provider.Env
	ctx context.Context
	m   map[string]provider.Session
}

func newSessions(ctx context.Context, env provider.Env) *sessions {
	return &sessions{env: env, ctx: ctx, m: map[string]provider.Session{}}
}

func (s *sessions) get(typ string) (provider.Session, error) {
	p := providerOf(typ)
	if p == nil {
		return nil, fmt.Errorf("no provider offers type %q", typ)
	}
	if ss, ok := s.m[p.Name()]; ok {
		return ss, nil
	}
	ss, err := p.Open(s.ctx, s.env)
	if err != nil {
		return nil, fmt.Errorf("provider %s: %w", p.Name(), err)
	}
	s.m[p.Name()] = ss
	return ss, nil
}

// open opens the sessions of every provider used by the given types now,
// so that get is then safe to call from many goroutines.
func (s *sessions) open(typs []string) error {
	for _, t := range typs {
		if _, err := s.get(t); err != nil {
			return err
		}
	}
	return nil
}

func (s *sessions) close() {
	for _, ss := range s.m {
		_ = ss.Close()
	}
}

// refresh reads every object of state from reality, in one session per
// provider.
func refresh(ctx context.Context, ss *sessions, state map[string]*ResourceState) (map[string]provider.Values, error) {
	out := make(map[string]provider.Values, len(state))
	addrs := slices.Sorted(maps.Keys(state))
	for _, a := range addrs {
		rs := state[a]
		rt := resourceType(rs.Type)
		if rt == nil {
			return nil, fmt.Errorf("%s: state holds type %q, which no provider of this cairn offers", a, rs.Type)
		}
		s, err := ss.get(rs.Type)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a, err)
		}
		v, found, err := readObject(ctx, rt, s, rs)
		if err != nil {
			return nil, fmt.Errorf("refresh %s (%s): %w", a, rs.ID, err)
		}
		if found {
			out[a] = v
		}
	}
	return out, nil
}

// importBlocks reads the objects the import blocks of cfg name and are
// not in state yet, and answers state with them added, as terraform plan
// does before it diffs: the plan then shows each as imported (and what
// the configuration would change of it), and the apply records it.
func importBlocks(ctx context.Context, ss *sessions, cfg *config.Config, vars map[string]cty.Value, state map[string]*ResourceState, real *Reality) (map[string]*ResourceState, error) {
	order, diags := buildGraph(cfg)
	if diags.HasErrors() {
		return nil, diagErr(diags)
	}
	state = maps.Clone(state)
	if state == nil {
		state = map[string]*ResourceState{}
	}
	real.Imported = map[string]bool{}
	ectx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(vars)}, Functions: config.Functions()}
	for _, im := range cfg.Imports {
		if _, ok := state[im.To]; ok {
			continue // managed already: the block has done its work
		}
		n := managedNode(order, staticAddr(im.To))
		if n == nil {
			return nil, diagErr(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Configuration for import target does not exist",
				Detail: fmt.Sprintf("The configuration for the given import %s does not exist. All target instances must have an associated configuration to be imported.", im.To), Subject: im.Range.Ptr()}})
		}
		v, d := im.ID.Value(ectx)
		if d.HasErrors() {
			return nil, diagErr(d)
		}
		v, _ = v.UnmarkDeep()
		if !v.IsKnown() || v.IsNull() || v.Type() != cty.String || v.AsString() == "" {
			return nil, diagErr(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid import id argument",
				Detail: "The import ID must be a known, non-empty string (it may refer to variables only).", Subject: im.ID.Range().Ptr()}})
		}
		id := v.AsString()
		if _, ok := resourceType(n.res.Type).(provider.StateBacked); ok {
			return nil, diagErr(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot import",
				Detail: fmt.Sprintf("%s objects live in state only; there is nothing outside cairn to import.", n.res.Type), Subject: im.Range.Ptr()}})
		}
		s, err := ss.get(n.res.Type)
		if err != nil {
			return nil, err
		}
		got, found, err := resourceType(n.res.Type).Read(ctx, s, id)
		if err != nil {
			return nil, fmt.Errorf("import %s: %w", im.To, err)
		}
		if !found {
			return nil, diagErr(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot import non-existent remote object",
				Detail: fmt.Sprintf("While attempting to import an existing object to %q, the provider detected that no object exists with the given id (%s). Only pre-existing objects can be imported; check that the id is correct.", im.To, id), Subject: im.Range.Ptr()}})
		}
		state[im.To] = importedState(order, n, im.To, id, got)
		real.Objects[im.To] = got
		real.Imported[im.To] = true
	}
	return state, nil
}

// readObject reads one object of state from reality; a state-backed type
// is handed what state keeps of it.
func readObject(ctx context.Context, rt provider.Resource, s provider.Session, rs *ResourceState) (provider.Values, bool, error) {
	sb, ok := rt.(provider.StateBacked)
	if !ok {
		return rt.Read(ctx, s, rs.ID)
	}
	prior := provider.Values{}
	for k, v := range rs.Attrs {
		if rs.sensitive(k) {
			v = provider.Redacted{}
		}
		prior[k] = v
	}
	got, found, err := sb.ReadState(ctx, s, rs.ID, prior)
	for k, v := range got {
		if _, ok := v.(provider.Redacted); ok {
			// Not known again: compared by the digest state keeps.
			got[k] = digested(fmt.Sprint(rs.Attrs[k]))
		}
	}
	return got, found, err
}

// digested is a sensitive value known by its digest only ("sha256:…"):
// it equals a value whose digest it is.
type digested string
