package infra

import (
	"context"
	"fmt"
	"maps"
	"slices"

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
	for {
		p, err := plan(cfg, vars, req.state, real, req.opts)
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
		v, found, err := rt.Read(ctx, s, rs.ID)
		if err != nil {
			return nil, fmt.Errorf("refresh %s (%s): %w", a, rs.ID, err)
		}
		if found {
			out[a] = v
		}
	}
	return out, nil
}
