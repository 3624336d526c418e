package infra

import (
	"context"
	"fmt"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/engines/infra/config"
	"github.com/cairnhq/cairn/engines/infra/provider"
	"github.com/cairnhq/cairn/journal"
)

// runImport puts an existing object under management, as terraform import
// does: the configuration must declare its address.
func (m *module) runImport(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	addr, id := st.Args["ADDR"], st.Args["ID"]
	req, unlock, err := m.lockedRequest(r, false)
	if err != nil {
		return err
	}
	defer unlock()
	b, err := m.importBody(ctx, r.Actor(), req, addr, id)
	if err != nil {
		return err
	}
	cs, err := m.commit(ctx, &commitReq{ws: req.opts.Workspace, bodies: []*journal.Body{b}})
	if err != nil {
		return err
	}
	m.resubscribe() // the object may live where nothing was watched yet
	if err := r.Line(fmt.Sprintf("%s: Import prepared!\n%s: Import complete [id=%s]", addr.Text, addr.Text, id.Text)); err != nil {
		return err
	}
	return r.Row(map[string]any{"addr": addr.Text, "id": id.Text, "workspace": req.opts.Workspace, "seq": cs[0].Seq})
}

// importBody reads the object id from reality and answers its
// infra.import event.
func (m *module) importBody(ctx context.Context, actor journal.Actor, req planRequest, addr, id dsl.Word) (*journal.Body, error) {
	ws := req.opts.Workspace
	if _, ok := req.state[addr.Text]; ok {
		return nil, engines.Errorf(wire.FailedPrecondition, addr, "%s is already managed in workspace %q; infra state show %s shows it", addr.Text, ws, addr.Text)
	}
	cfg, diags, err := loadConfig(actor, req.opts.Dir)
	if err != nil {
		return nil, err
	}
	if diags.HasErrors() {
		return nil, diagErr(diags)
	}
	order, diags := buildGraph(cfg)
	if diags.HasErrors() {
		return nil, diagErr(diags)
	}
	n := managedNode(order, staticAddr(addr.Text))
	if n == nil {
		return nil, engines.Errorf(wire.NotFound, addr, "%s is not declared in %s; add its resource block first, as terraform import needs", staticAddr(addr.Text), req.opts.Dir)
	}
	if _, ok := resourceType(n.res.Type).(provider.StateBacked); ok {
		return nil, engines.Errorf(wire.InvalidArgument, addr, "%s objects live in state only; there is nothing outside cairn to import", n.res.Type)
	}
	ss := newSessions(ctx, req.env)
	defer ss.close()
	s, err := ss.get(n.res.Type)
	if err != nil {
		return nil, err
	}
	got, found, err := resourceType(n.res.Type).Read(ctx, s, id.Text)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", addr.Text, err)
	}
	if !found {
		return nil, engines.Errorf(wire.NotFound, id, "cannot import %s: no object %q exists", addr.Text, id.Text)
	}
	rs := importedState(order, n, addr.Text, id.Text, got)
	return &journal.Body{Kind: KindImport, Subject: subject(ws, addr.Text), Node: m.node, Actor: actor, Data: map[string]any{
		"workspace": ws, "addr": addr.Text, "type": n.res.Type, "id": id.Text, "after": rs.toMap(), "dir": req.opts.Dir,
	}}, nil
}

// managedNode finds the managed resource at addr (TYPE.NAME) in order.
func managedNode(order []*node, addr string) *node {
	for _, n := range order {
		if n.res != nil && n.res.Mode == config.Managed && n.addr == addr {
			return n
		}
	}
	return nil
}

// importedState is the state record of an imported object: what reality
// holds, with the attributes the configuration sets (or defaults) as its
// configured ones.
func importedState(order []*node, n *node, addr, id string, got provider.Values) *ResourceState {
	cv := &configValues{set: map[string]bool{}, sensitive: map[string]bool{}}
	for name := range n.attrs {
		cv.set[name] = true
	}
	for name, a := range n.sch.Attributes {
		if a.Default != nil {
			cv.set[name] = true
		}
	}
	p := &Plan{order: order}
	c := &Change{Addr: addr, Type: n.res.Type, lc: n.res.Lifecycle, deps: p.transitiveDeps(n)}
	return stateOf(c, id, n.sch, got, cv)
}
