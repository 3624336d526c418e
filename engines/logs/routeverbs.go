package logs

import (
	"context"
	"regexp"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/filter/sysdig"
)

var routeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

func (m *module) routeVerbs() []engines.Verb {
	return []engines.Verb{
		{Spec: dsl.Spec{
			Verb:    "logs route add",
			Access:  dsl.AccessWrite,
			Summary: "route records by tag, as Fluentd's <match>: filter, add fields, send to an output",
			Help: "logs route add NAME match=PATTERN [where 'CEL'] [to=journal|file:PATH|forward:HOST:PORT]\n" +
				"[record.K=V…] takes the records whose tag matches PATTERN (Fluentd's: * ** {a,b}), the first\n" +
				"route added that matches winning. A record its where refuses is dropped; record.K=V sets\n" +
				"fields, as record_transformer. Every record kept is stored in the logs stream; to=file: or\n" +
				"to=forward: also sends it there, buffered in the stream: retried with back-off while the\n" +
				"output fails, at least once.\n\n" +
				"  logs route add errors match='app.**' where 'record.level == \"error\"' to=forward:10.0.0.5:24224\n" +
				"  logs route add web match=nginx.* record.env=prod to=file:/var/log/cairn/nginx.ndjson",
			Args: []dsl.Arg{{Name: "NAME", Required: true}},
			Options: []dsl.Option{{Name: "match", Meta: "PATTERN", Help: "Fluentd tag pattern"},
				{Name: "to", Meta: "journal|file:PATH|forward:HOST:PORT"}},
			Bag:       true,
			BagPrefix: "record.",
			Where:     true,
		}, Run: m.runRouteAdd},
		{Spec: dsl.Spec{
			Verb:    "logs route rm",
			Access:  dsl.AccessWrite,
			Summary: "remove a route (its output stops; what it had not delivered is not sent)",
			Args:    []dsl.Arg{{Name: "NAME", Required: true}},
		}, Run: m.runRouteRm},
		{Spec: dsl.Spec{
			Verb:    "logs routes",
			Access:  dsl.AccessRead,
			Summary: "the routes in match order, with each output's queue and retry state",
		}, Run: m.runRoutes},
	}
}

func (m *module) runRouteAdd(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	nw := st.Args["NAME"]
	if !routeName.MatchString(nw.Text) {
		return engines.Errorf(wire.InvalidArgument, nw, "route name %q: letters, digits, _ . - (64 at most)", nw.Text)
	}
	cfg := routeConfig{Name: nw.Text, To: "journal"}
	mw, ok := st.Opt("match")
	if !ok {
		return engines.Errorf(wire.InvalidArgument, nw, "give the tags it takes: match=PATTERN")
	}
	if _, err := ParseTagPattern(mw.Text); err != nil {
		return engines.Errorf(wire.InvalidArgument, mw, "match=%s: %v", mw.Text, err)
	}
	cfg.Match = mw.Text
	if w, ok := st.Opt("to"); ok {
		if _, _, err := parseTo(w.Text); err != nil {
			return engines.Errorf(wire.InvalidArgument, w, "%v", err)
		}
		cfg.To = w.Text
	}
	if _, err := engines.Where(st); err != nil {
		return err
	}
	if st.Where != nil {
		cfg.Where = st.Where.Text
	}
	if st.Filter != nil {
		cel, err := sysdig.Translate(st.Filter.Text)
		if err != nil {
			return wire.Errorf(wire.InvalidArgument, "filter: %v", err)
		}
		if cfg.Where != "" {
			cel = "(" + cel + ") && (" + cfg.Where + ")"
		}
		cfg.Where = cel
	}
	for _, b := range st.Bag {
		if cfg.Set == nil {
			cfg.Set = map[string]string{}
		}
		cfg.Set[b.Key[len("record."):]] = b.Value.Text
	}
	route, err := compileRoute(cfg)
	if err != nil {
		return wire.Errorf(wire.InvalidArgument, "%v", err)
	}
	m.routeMu.Lock()
	defer m.routeMu.Unlock()
	if m.routes.get(cfg.Name) != nil {
		return engines.Errorf(wire.AlreadyExists, nw, "route %s exists (logs route rm it first)", cfg.Name)
	}
	route.cfg.From = m.logs.DurableSeq()
	data := map[string]any{"name": cfg.Name, "match": cfg.Match, "to": cfg.To, "from": route.cfg.From}
	if cfg.Where != "" {
		data["where"] = cfg.Where
	}
	if len(cfg.Set) > 0 {
		set := map[string]any{}
		for k, v := range cfg.Set {
			set[k] = v
		}
		data["set"] = set
	}
	if _, err := m.audit.Append(ctx, &journal.Body{Kind: kindRouteAdd, Subject: cfg.Name, Node: m.node, Actor: r.Actor(), Data: data}); err != nil {
		return err
	}
	m.startRoute(m.ctx, route)
	return r.Row(route.cfg)
}

func (m *module) runRouteRm(ctx context.Context, r engines.Request) error {
	nw := r.Statement().Args["NAME"]
	m.routeMu.Lock()
	defer m.routeMu.Unlock()
	if m.routes.get(nw.Text) == nil {
		return engines.Errorf(wire.NotFound, nw, "no route %s", nw.Text)
	}
	if _, err := m.audit.Append(ctx, &journal.Body{Kind: kindRouteRm, Subject: nw.Text, Node: m.node, Actor: r.Actor(),
		Data: map[string]any{"name": nw.Text}}); err != nil {
		return err
	}
	if rt := m.routes.remove(nw.Text); rt != nil && rt.out != nil {
		rt.out.stop()
	}
	return nil
}

func (m *module) runRoutes(ctx context.Context, r engines.Request) error {
	for i, rt := range m.routes.list() {
		row := map[string]any{"order": i + 1, "name": rt.cfg.Name, "match": rt.cfg.Match, "to": rt.cfg.To}
		if rt.cfg.Where != "" {
			row["where"] = rt.cfg.Where
		}
		if len(rt.cfg.Set) > 0 {
			row["set"] = rt.cfg.Set
		}
		if rt.out != nil {
			for k, v := range rt.out.state() {
				row[k] = v
			}
			row["queued"] = rt.out.queued()
		}
		if err := r.Row(row); err != nil {
			return err
		}
	}
	return nil
}
