package infra

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/engines/infra/config"
	"github.com/cairnhq/cairn/journal"
	"github.com/hashicorp/hcl/v2"
)

var (
	optWorkspace = dsl.Option{Name: "workspace", Meta: "NAME", Help: "the workspace (default: the directory's base name)"}
	optVarFile   = dsl.Option{Name: "var-file", Meta: "FILE", Repeatable: true, Help: "variable values from an HCL file (terraform.tfvars style)"}
	optTarget    = dsl.Option{Name: "target", Meta: "ADDR", Repeatable: true, Help: "only this resource (and what it depends on)"}
	optReplace   = dsl.Option{Name: "replace", Meta: "ADDR", Repeatable: true, Help: "replace this resource even if unchanged"}
	argPath      = dsl.Arg{Name: "PATH", Required: true, Help: "directory of *.hcl files (relative to your working directory)"}
	optPath      = dsl.Arg{Name: "PATH", Help: "directory of *.hcl files; default: where the workspace was last applied from"}
)

func (m *module) verbs() []engines.Verb {
	return []engines.Verb{
		{Spec: dsl.Spec{
			Verb:    "infra apply",
			Access:  dsl.AccessHost,
			Summary: "make reality match a configuration (or a saved plan)",
			Help: "infra apply PATH auto-approve plans and applies in one step; infra apply plan=ID applies a saved plan,\n" +
				"refused if state or reality moved since. Independent resources are applied in parallel; each\n" +
				"completed change is an infra.create/update/delete event. Without auto-approve (and without plan=)\n" +
				"the plan is shown and nothing is applied.\n\n  infra apply ./net auto-approve\n  infra apply plan=1234",
			Args:      []dsl.Arg{{Name: "PATH", Help: "directory of *.hcl files; not with plan="}},
			Flags:     []dsl.Flag{{Name: "auto-approve", Help: "apply without a saved plan"}},
			Options:   []dsl.Option{{Name: "plan", Kind: dsl.Int, Meta: "ID", Help: "apply the saved plan ID"}, {Name: "parallelism", Kind: dsl.Int, Help: "at most N changes at once (default 10)"}, optWorkspace, optVarFile, optTarget, optReplace},
			Bag:       true,
			BagPrefix: "var.",
		}, Run: m.runApply},
		{Spec: dsl.Spec{
			Verb:      "infra destroy",
			Access:    dsl.AccessHost,
			Summary:   "destroy every object a configuration manages",
			Help:      "infra destroy PATH auto-approve deletes every object of the workspace's state, dependents first.\n\n  infra destroy ./net auto-approve",
			Args:      []dsl.Arg{argPath},
			Flags:     []dsl.Flag{{Name: "auto-approve", Help: "destroy without asking again"}},
			Options:   []dsl.Option{{Name: "parallelism", Kind: dsl.Int, Help: "at most N changes at once (default 10)"}, optWorkspace, optVarFile, optTarget},
			Bag:       true,
			BagPrefix: "var.",
		}, Run: m.runDestroy},
		{Spec: dsl.Spec{
			Verb:    "infra drift",
			Access:  dsl.AccessRead,
			Summary: "list open drift: managed objects changed outside cairn",
			Help:    "infra drift answers a row per attribute that moved away from state, as the live netlink watch saw it;\nan apply or a refresh of the object closes it.",
			Options: []dsl.Option{optWorkspace},
		}, Run: m.runDrift},
		{Spec: dsl.Spec{
			Verb:      "infra graph",
			Access:    dsl.AccessRead,
			Summary:   "the configuration's dependency graph, in DOT",
			Help:      "infra graph [PATH] answers the graph as Graphviz DOT lines (without PATH: the workspace's last applied directory).\n\n  cairn infra graph ./net | dot -Tsvg > net.svg",
			Args:      []dsl.Arg{optPath},
			Options:   []dsl.Option{optWorkspace, optVarFile},
			Bag:       true,
			BagPrefix: "var.",
		}, Run: m.runGraph},
		{Spec: dsl.Spec{
			Verb:    "infra import",
			Access:  dsl.AccessHost,
			Summary: "put an existing object under management",
			Help: "infra import ADDR ID [PATH] reads the object ID (as the provider names it: ns1/br0 for a link in netns ns1,\n" +
				"/br0 in the daemon's own) into state as ADDR, which PATH's configuration must declare.\n\n  infra import net_link.br0 ns1/br0 ./net",
			Args:      []dsl.Arg{{Name: "ADDR", Required: true, Help: "resource address, such as net_link.br0"}, {Name: "ID", Required: true, Help: "the object's id"}, optPath},
			Options:   []dsl.Option{optWorkspace, optVarFile},
			Bag:       true,
			BagPrefix: "var.",
		}, Run: m.runImport},
		{Spec: dsl.Spec{
			Verb:    "infra output",
			Access:  dsl.AccessRead,
			Summary: "the outputs of the last apply",
			Args:    []dsl.Arg{{Name: "NAME", Help: "one output"}},
			Options: []dsl.Option{optWorkspace},
		}, Run: m.runOutput},
		{Spec: dsl.Spec{
			Verb:    "infra plan",
			Access:  dsl.AccessRead,
			Summary: "show what an apply would change, and save the plan",
			Help: "infra plan PATH refreshes reality (one netlink dump per namespace), diffs it against the configuration\n" +
				"and answers the plan with Terraform's symbols and summary line, then a row {id, …}: apply it with\n" +
				"infra apply plan=ID. destroy plans the destruction of everything.\n\n" +
				"  infra plan ./net\n  infra plan ./net var.mtu=9000 var-file=prod.tfvars\n  infra plan ./net target=net_link.br0",
			Args:      []dsl.Arg{argPath},
			Flags:     []dsl.Flag{{Name: "destroy", Help: "plan to destroy everything"}},
			Options:   []dsl.Option{optWorkspace, optVarFile, optTarget, optReplace},
			Bag:       true,
			BagPrefix: "var.",
		}, Run: m.runPlan},
		{Spec: dsl.Spec{
			Verb:    "infra refresh",
			Access:  dsl.AccessHost,
			Summary: "update state from reality",
			Help:    "infra refresh reads every managed object and records what changed as infra.refresh events\n(objects gone are forgotten).",
			Options: []dsl.Option{optWorkspace},
		}, Run: m.runRefresh},
		{Spec: dsl.Spec{
			Verb:    "infra state list",
			Access:  dsl.AccessRead,
			Summary: "the objects in state",
			Options: []dsl.Option{optWorkspace},
		}, Run: m.runStateList},
		{Spec: dsl.Spec{
			Verb:    "infra state show",
			Access:  dsl.AccessRead,
			Summary: "one object as state has it, now or in the past",
			Help:    "infra state show ADDR answers the object's attributes; at=SEQ or at=TIME answers from history.\n\n  infra state show net_link.br0\n  infra state show net_link.br0 at=1200",
			Args:    []dsl.Arg{{Name: "ADDR", Required: true, Help: "resource address"}},
			Options: []dsl.Option{optWorkspace, {Name: "at", Kind: dsl.SeqOrTime, Help: "as state was at SEQ, or at TIME"}},
		}, Run: m.runStateShow},
		{Spec: dsl.Spec{
			Verb:      "infra validate",
			Access:    dsl.AccessRead,
			Summary:   "check a configuration without touching anything",
			Args:      []dsl.Arg{argPath},
			Options:   []dsl.Option{optVarFile},
			Bag:       true,
			BagPrefix: "var.",
		}, Run: m.runValidate},
	}
}

// resolveDir makes PATH absolute: a relative path is taken from the
// caller's working directory (/proc/PID/cwd of the peer).
func resolveDir(r engines.Request, w dsl.Word) (string, error) {
	p := w.Text
	if p == "" {
		return "", engines.Errorf(wire.InvalidArgument, w, "PATH is empty; give the directory of the *.hcl files")
	}
	if !filepath.IsAbs(p) {
		pid := r.Actor().PID
		cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		if pid <= 0 || err != nil {
			return "", engines.Errorf(wire.InvalidArgument, w, "%s is relative and the caller's working directory is unknown; give an absolute path", p)
		}
		p = filepath.Join(cwd, p)
	}
	return filepath.Clean(p), nil
}

func inputs(r engines.Request, dir string) (config.Inputs, error) {
	st := r.Statement()
	in := config.Inputs{Values: map[string]string{}, ValueRanges: map[string]hcl.Range{}}
	for _, w := range st.Options["var-file"] {
		p := w.Text
		if !filepath.IsAbs(p) {
			abs, err := resolveDir(r, w)
			if err != nil {
				return in, err
			}
			p = abs
		}
		in.Files = append(in.Files, p)
	}
	for _, b := range st.Bag {
		name := strings.TrimPrefix(b.Key, "var.")
		in.Values[name] = b.Value.Text
		in.ValueRanges[name] = hcl.Range{Filename: "statement", Start: hcl.Pos{Line: b.Pos.Line, Column: b.Pos.Col}, End: hcl.Pos{Line: b.Pos.Line, Column: b.Pos.Col}}
	}
	return in, nil
}

func words(st *dsl.Statement, opt string) []string {
	var out []string
	for _, w := range st.Options[opt] {
		out = append(out, w.Text)
	}
	return out
}

// workspaceOf names the workspace of a statement: workspace=, or the
// directory's base name.
func workspaceOf(st *dsl.Statement, dir string) (string, error) {
	ws := filepath.Base(dir)
	w, ok := st.Opt("workspace")
	if ok {
		ws = w.Text
	}
	if ws == "" || ws == "/" || ws == "." || strings.ContainsAny(ws, "/\x00") {
		if ok {
			return "", engines.Errorf(wire.InvalidArgument, w, "workspace %q: a workspace name is one path element", ws)
		}
		return "", wire.Errorf(wire.InvalidArgument, "cannot name a workspace after %q; give workspace=NAME", dir)
	}
	return ws, nil
}

// knownWorkspace picks the workspace of a statement without a PATH:
// workspace=, or the only one there is.
func (m *module) knownWorkspace(st *dsl.Statement) (string, error) {
	if w, ok := st.Opt("workspace"); ok {
		return w.Text, nil
	}
	sn := m.audit.Snapshot()
	defer sn.Close()
	all, err := stateReader{sn}.workspaces()
	if err != nil {
		return "", err
	}
	switch len(all) {
	case 0:
		return "", wire.Errorf(wire.NotFound, "no workspace has state yet; apply a configuration first")
	case 1:
		return all[0], nil
	}
	return "", wire.Errorf(wire.InvalidArgument, "there are several workspaces (%s); give workspace=NAME", strings.Join(all, ", "))
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
	if err := checkReadable(r.Actor(), dir, in.Files); err != nil {
		return planRequest{}, err
	}
	sn := m.audit.Snapshot()
	defer sn.Close()
	rd := stateReader{sn}
	meta, err := rd.meta(ws)
	if err != nil {
		return planRequest{}, err
	}
	state, err := rd.resources(ws)
	if err != nil {
		return planRequest{}, err
	}
	return planRequest{ws: ws, dir: dir, inputs: in, targets: words(st, "target"), replace: words(st, "replace"), destroy: destroy,
		env: m.env(r.Actor()), state: state, stateSeq: meta.Seq}, nil
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

// planRow is the machine-readable answer of infra plan (-o json).
type planRow struct {
	ID        int64          `json:"id"`
	Workspace string         `json:"workspace"`
	Add       int            `json:"add"`
	Change    int            `json:"change"`
	Destroy   int            `json:"destroy"`
	Dir       string         `json:"dir"`
	Changes   []*Change      `json:"changes"`
	Outside   []Outside      `json:"changed_outside,omitempty"`
	Outputs   map[string]any `json:"outputs,omitempty"`
	Unknown   []string       `json:"outputs_unknown,omitempty"`
	Warnings  []string       `json:"warnings,omitempty"`
}

func (p *Plan) row() planRow {
	changes := []*Change{}
	for _, c := range p.Changes {
		if c.Action != NoOp {
			changes = append(changes, c)
		}
	}
	return planRow{ID: p.ID, Workspace: p.Workspace, Add: p.Summary.Add, Change: p.Summary.Change, Destroy: p.Summary.Destroy,
		Dir: p.Dir, Changes: changes, Outside: p.Outside, Outputs: p.Outputs, Unknown: p.Unknown, Warnings: p.Warnings}
}

func (m *module) savePlan(ctx context.Context, r engines.Request, p *Plan) error {
	var changes []any
	for _, c := range p.Changes {
		if c.Action != NoOp {
			changes = append(changes, map[string]any{"addr": c.Addr, "action": string(c.Action)})
		}
	}
	b := &journal.Body{Kind: KindPlan, Subject: subject(p.Workspace, ""), Node: m.node, Actor: r.Actor(), Data: map[string]any{
		"dir": p.Dir, "destroy": p.Destroy, "changes": changes,
		"summary": map[string]any{"add": int64(p.Summary.Add), "change": int64(p.Summary.Change), "destroy": int64(p.Summary.Destroy)},
	}}
	c, err := m.audit.Append(ctx, b)
	if err != nil {
		return err
	}
	p.ID = c[0].Seq
	m.plans.put(p)
	return nil
}

func say(r engines.Request, lines []string) error {
	for _, l := range lines {
		if err := r.Line(l); err != nil {
			return err
		}
	}
	return nil
}

func (m *module) runPlan(ctx context.Context, r engines.Request) error {
	return m.plan(ctx, r, r.Statement().Flags["destroy"])
}

func (m *module) plan(ctx context.Context, r engines.Request, destroy bool) error {
	req, unlock, err := m.lockedRequest(r, destroy)
	if err != nil {
		return err
	}
	defer unlock()
	p, err := makePlan(ctx, req)
	if err != nil {
		return err
	}
	if err := m.savePlan(ctx, r, p); err != nil {
		return err
	}
	if err := say(r, render(p)); err != nil {
		return err
	}
	if !p.Empty() {
		if err := r.Line(fmt.Sprintf("\nSaved the plan as %d: apply it with `infra apply plan=%d`.", p.ID, p.ID)); err != nil {
			return err
		}
	}
	return r.Row(p.row())
}

func (m *module) runDestroy(ctx context.Context, r engines.Request) error {
	return m.applyNew(ctx, r, true)
}

func (m *module) runApply(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	if w, ok := st.Opt("plan"); ok {
		if _, hasPath := st.Args["PATH"]; hasPath {
			return engines.Errorf(wire.InvalidArgument, w, "give PATH or plan=ID, not both")
		}
		id, _ := w.Int()
		p := m.plans.take(id)
		if p == nil {
			return engines.Errorf(wire.NotFound, w, "plan %d is not held by this daemon (plans live in memory, as they hold variable values, until applied or the daemon restarts); run infra plan again", id)
		}
		return m.applySaved(ctx, r, p)
	}
	if _, ok := st.Args["PATH"]; !ok {
		return wire.Errorf(wire.InvalidArgument, "infra apply needs PATH (with auto-approve) or plan=ID")
	}
	return m.applyNew(ctx, r, false)
}

func (m *module) applyNew(ctx context.Context, r engines.Request, destroy bool) error {
	st := r.Statement()
	req, unlock, err := m.lockedRequest(r, destroy)
	if err != nil {
		return err
	}
	defer unlock()
	p, err := makePlan(ctx, req)
	if err != nil {
		return err
	}
	if err := m.savePlan(ctx, r, p); err != nil {
		return err
	}
	if err := say(r, render(p)); err != nil {
		return err
	}
	if p.Empty() {
		return r.Line("\nApply complete! Resources: 0 added, 0 changed, 0 destroyed.")
	}
	if !st.Flags["auto-approve"] {
		return wire.Errorf(wire.FailedPrecondition, "not applied: add auto-approve to apply this, or apply the saved plan with infra apply plan=%d", p.ID)
	}
	m.plans.take(p.ID) // applied now: not again
	return m.execute(ctx, r, p)
}

func (m *module) applySaved(ctx context.Context, r engines.Request, p *Plan) error {
	l := m.lock(p.Workspace)
	l.Lock()
	defer l.Unlock()
	sn := m.audit.Snapshot()
	rd := stateReader{sn}
	meta, err := rd.meta(p.Workspace)
	var state map[string]*ResourceState
	if err == nil {
		state, err = rd.resources(p.Workspace)
	}
	sn.Close()
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
	if m.drift != nil {
		m.drift.resubscribe() // an apply may have made or emptied a namespace
	}
	if err != nil {
		return err
	}
	verb := "Apply"
	if p.Destroy {
		verb = "Destroy"
	}
	if err := r.Line(""); err != nil {
		return err
	}
	if p.Destroy {
		return r.Line(fmt.Sprintf("%s complete! Resources: %d destroyed.", verb, a.destroyed))
	}
	return r.Line(fmt.Sprintf("%s complete! Resources: %d added, %d changed, %d destroyed.", verb, a.added, a.changed, a.destroyed))
}

// dirOf returns the configuration directory and workspace of a
// statement: its PATH (and workspace=, else the directory's name), or,
// for the verbs where PATH may be left out (import, graph), the directory
// the workspace was last applied from.
func (m *module) dirOf(r engines.Request) (dir, ws string, err error) {
	st := r.Statement()
	if w, ok := st.Args["PATH"]; ok {
		if dir, err = resolveDir(r, w); err != nil {
			return "", "", err
		}
		ws, err = workspaceOf(st, dir)
		return dir, ws, err
	}
	if ws, err = m.knownWorkspace(st); err != nil {
		return "", "", err
	}
	sn := m.audit.Snapshot()
	meta, err := stateReader{sn}.meta(ws)
	sn.Close()
	if err != nil {
		return "", "", err
	}
	if meta.Dir == "" {
		return "", "", wire.Errorf(wire.InvalidArgument, "workspace %q has no configuration directory on record; give PATH", ws)
	}
	return meta.Dir, ws, nil
}

// loadGraph reads the configuration at the statement's PATH and builds
// its graph, for the verbs that only look at it (validate, graph).
func (m *module) loadGraph(r engines.Request) (*config.Config, []*node, error) {
	dir, _, err := m.dirOf(r)
	if err != nil {
		return nil, nil, err
	}
	if err := checkReadable(r.Actor(), dir, nil); err != nil {
		return nil, nil, err
	}
	cfg, diags := config.Load(dir)
	if diags.HasErrors() {
		return nil, nil, diagErr(diags)
	}
	order, diags := buildGraph(cfg)
	if diags.HasErrors() {
		return nil, nil, diagErr(diags)
	}
	return cfg, order, nil
}

func (m *module) runValidate(ctx context.Context, r engines.Request) error {
	cfg, _, err := m.loadGraph(r)
	if err != nil {
		return err
	}
	return r.Line(fmt.Sprintf("Success! The configuration is valid (%d resources, %d variables, %d outputs).", len(cfg.Resources), len(cfg.Variables), len(cfg.Outputs)))
}

func (m *module) runGraph(ctx context.Context, r engines.Request) error {
	_, order, err := m.loadGraph(r)
	if err != nil {
		return err
	}
	lines := []string{"digraph {", "  compound = \"true\"", "  newrank = \"true\"", "  subgraph \"root\" {"}
	for _, n := range order {
		lines = append(lines, fmt.Sprintf("    %q", n.addr))
	}
	for _, n := range order {
		deps := append([]string(nil), n.deps...)
		sort.Strings(deps)
		for _, d := range deps {
			lines = append(lines, fmt.Sprintf("    %q -> %q", n.addr, d))
		}
	}
	lines = append(lines, "  }", "}")
	return say(r, lines)
}

// stateRow is one object as infra state list/show answer it.
type stateRow struct {
	Addr      string         `json:"addr"`
	Type      string         `json:"type"`
	ID        string         `json:"id"`
	Workspace string         `json:"workspace"`
	Attrs     map[string]any `json:"attributes,omitempty"`
	Seq       int64          `json:"seq,omitempty"`
	Time      string         `json:"time,omitempty"`
}

func redactedAttrs(rs *ResourceState) map[string]any {
	out := map[string]any{}
	for k, v := range rs.Attrs {
		if rs.sensitive(k) {
			v = "(sensitive value)"
		}
		out[k] = v
	}
	return out
}

func (m *module) runStateList(ctx context.Context, r engines.Request) error {
	ws, err := m.knownWorkspace(r.Statement())
	if err != nil {
		return err
	}
	sn := m.audit.Snapshot()
	defer sn.Close()
	res, err := stateReader{sn}.resources(ws)
	if err != nil {
		return err
	}
	addrs := slices.Sorted(maps.Keys(res))
	for _, a := range addrs {
		if err := r.Row(stateRow{Addr: a, Type: res[a].Type, ID: res[a].ID, Workspace: ws}); err != nil {
			return err
		}
	}
	return nil
}

func (m *module) runStateShow(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	ws, err := m.knownWorkspace(st)
	if err != nil {
		return err
	}
	addr := st.Args["ADDR"].Text
	q := journal.Query{Subject: subject(ws, addr), Reverse: true}
	if w, ok := st.Opt("at"); ok {
		if n, err := w.Int(); err == nil {
			q.To = n
		} else {
			t, err := w.Time(time.Now())
			if err != nil {
				return engines.Errorf(wire.InvalidArgument, w, "at=%s: %v", w.Text, err)
			}
			q.Until = t.UnixNano()
		}
		it := m.audit.Scan(q)
		defer it.Close()
		for it.Next() {
			ev, err := it.Raw().Decode()
			if err != nil {
				return err
			}
			switch ev.Kind {
			case KindCreate, KindUpdate, KindImport, KindRefresh, KindMove:
				if to, seq, moved, err := m.movedAway(ws, addr, ev.Seq+1, q.To, q.Until); err != nil {
					return err
				} else if moved {
					return wire.Errorf(wire.NotFound, "%s had moved to %s (seq %d) by %s; infra state show %s at=%s", addr, to, seq, w.Text, to, w.Text)
				}
				rs, err := stateFromData(ev.Data["after"])
				if err != nil {
					return err
				}
				return r.Row(stateRow{Addr: addr, Type: rs.Type, ID: rs.ID, Workspace: ws, Attrs: redactedAttrs(rs), Seq: ev.Seq,
					Time: time.Unix(0, ev.Time).UTC().Format(time.RFC3339Nano)})
			case KindDelete, KindForget:
				return wire.Errorf(wire.NotFound, "%s was not in the state of workspace %q at %s (deleted at seq %d)", addr, ws, w.Text, ev.Seq)
			}
		}
		if err := it.Err(); err != nil {
			return err
		}
		return wire.Errorf(wire.NotFound, "%s was not in the state of workspace %q at %s", addr, ws, w.Text)
	}
	sn := m.audit.Snapshot()
	defer sn.Close()
	b, ok, err := sn.Get(Name, resKey(ws, addr))
	if err != nil {
		return err
	}
	if !ok {
		return engines.Errorf(wire.NotFound, st.Args["ADDR"], "%s is not in the state of workspace %q; infra state list shows what is", addr, ws)
	}
	rs, err := decodeState(b)
	if err != nil {
		return err
	}
	return r.Row(stateRow{Addr: addr, Type: rs.Type, ID: rs.ID, Workspace: ws, Attrs: redactedAttrs(rs)})
}

// movedAway reports whether addr of ws was moved to another address by an
// infra.move in [from, to] (or up to until), and where to.
func (m *module) movedAway(ws, addr string, from, to, until int64) (string, int64, bool, error) {
	it := m.audit.Scan(journal.Query{Kind: KindMove, From: from, To: to, Until: until})
	defer it.Close()
	for it.Next() {
		ev, err := it.Raw().Decode()
		if err != nil {
			return "", 0, false, err
		}
		if ev.Data["workspace"] == ws && ev.Data["from"] == addr {
			dst, _ := ev.Data["addr"].(string)
			return dst, ev.Seq, true, nil
		}
	}
	return "", 0, false, it.Err()
}

func (m *module) runOutput(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	ws, err := m.knownWorkspace(st)
	if err != nil {
		return err
	}
	sn := m.audit.Snapshot()
	meta, err := stateReader{sn}.meta(ws)
	sn.Close()
	if err != nil {
		return err
	}
	names := slices.Sorted(maps.Keys(meta.Outputs))
	if w, ok := st.Args["NAME"]; ok {
		v, ok := meta.Outputs[w.Text]
		if !ok {
			return engines.Errorf(wire.NotFound, w, "output %q not found; the outputs are: %s", w.Text, strings.Join(names, ", "))
		}
		return r.Row(map[string]any{"name": w.Text, "value": v})
	}
	for _, n := range names {
		if err := r.Row(map[string]any{"name": n, "value": meta.Outputs[n]}); err != nil {
			return err
		}
	}
	return nil
}

func (m *module) runDrift(ctx context.Context, r engines.Request) error {
	ws := ""
	if w, ok := r.Statement().Opt("workspace"); ok {
		ws = w.Text
	}
	sn := m.audit.Snapshot()
	ds, err := stateReader{sn}.drift(ws)
	sn.Close()
	if err != nil {
		return err
	}
	for _, d := range ds {
		if err := r.Row(d); err != nil {
			return err
		}
	}
	return nil
}

func (m *module) runImport(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	addr, id := st.Args["ADDR"], st.Args["ID"].Text
	req, unlock, err := m.lockedRequest(r, false)
	if err != nil {
		return err
	}
	defer unlock()
	if _, ok := req.state[addr.Text]; ok {
		return engines.Errorf(wire.FailedPrecondition, addr, "%s is already managed in workspace %q; infra state show %s shows it", addr.Text, req.ws, addr.Text)
	}
	cfg, diags := config.Load(req.dir)
	if diags.HasErrors() {
		return diagErr(diags)
	}
	order, diags := buildGraph(cfg)
	if diags.HasErrors() {
		return diagErr(diags)
	}
	var n *node
	for _, x := range order {
		if x.res != nil && x.res.Mode == config.Managed && x.addr == resAddrOf(addr.Text) {
			n = x
		}
	}
	if n == nil {
		return engines.Errorf(wire.NotFound, addr, "%s is not declared in %s; add its resource block first, as terraform import needs", resAddrOf(addr.Text), req.dir)
	}
	rt := resourceType(n.res.Type)
	ss := newSessions(ctx, req.env)
	defer ss.close()
	s, err := ss.get(n.res.Type)
	if err != nil {
		return err
	}
	got, found, err := rt.Read(ctx, s, id)
	if err != nil {
		return fmt.Errorf("import %s: %w", addr.Text, err)
	}
	if !found {
		return engines.Errorf(wire.NotFound, st.Args["ID"], "cannot import %s: no object %q exists", addr.Text, id)
	}
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
	c := &Change{Addr: addr.Text, Type: n.res.Type, lc: n.res.Lifecycle, deps: p.transitiveDeps(n)}
	rs := stateOf(c, id, rt.Schema(), got, cv)
	b := &journal.Body{Kind: KindImport, Subject: subject(req.ws, addr.Text), Node: m.node, Actor: r.Actor(), Data: map[string]any{
		"workspace": req.ws, "addr": addr.Text, "type": n.res.Type, "id": id, "after": rs.toMap(), "dir": req.dir,
	}}
	cs, err := m.commit(ctx, &commitReq{ws: req.ws, bodies: []*journal.Body{b}})
	if err != nil {
		return err
	}
	if m.drift != nil {
		go m.drift.resubscribe()
	}
	if err := r.Line(fmt.Sprintf("%s: Import prepared!\n%s: Import complete [id=%s]", addr.Text, addr.Text, id)); err != nil {
		return err
	}
	return r.Row(map[string]any{"addr": addr.Text, "id": id, "workspace": req.ws, "seq": cs[0].Seq})
}

func (m *module) runRefresh(ctx context.Context, r engines.Request) error {
	ws, err := m.knownWorkspace(r.Statement())
	if err != nil {
		return err
	}
	l := m.lock(ws)
	l.Lock()
	defer l.Unlock()
	sn := m.audit.Snapshot()
	state, err := stateReader{sn}.resources(ws)
	sn.Close()
	if err != nil {
		return err
	}
	ss := newSessions(ctx, m.env(r.Actor()))
	actual, err := refresh(ctx, ss, state)
	ss.close()
	if err != nil {
		return err
	}
	var bodies []*journal.Body
	addrs := slices.Sorted(maps.Keys(state))
	for _, a := range addrs {
		rs := state[a]
		v, ok := actual[a]
		if !ok {
			bodies = append(bodies, &journal.Body{Kind: KindForget, Subject: subject(ws, a), Node: m.node, Actor: r.Actor(),
				Data: map[string]any{"workspace": ws, "addr": a, "before": rs.toMap(), "reason": "gone outside cairn"}})
			continue
		}
		next := *rs
		next.Attrs = map[string]any{}
		for k, x := range v {
			if rs.sensitive(k) && x != nil {
				x = digest(x)
			}
			if x != nil {
				next.Attrs[k] = x
			}
		}
		if sameAttrs(rs.Attrs, next.Attrs) {
			continue
		}
		bodies = append(bodies, &journal.Body{Kind: KindRefresh, Subject: subject(ws, a), Node: m.node, Actor: r.Actor(),
			Data: map[string]any{"workspace": ws, "addr": a, "type": rs.Type, "id": rs.ID, "before": rs.toMap(), "after": next.toMap()}})
	}
	if len(bodies) > 0 {
		if _, err := m.commit(ctx, &commitReq{ws: ws, bodies: bodies}); err != nil {
			return err
		}
		if m.drift != nil {
			m.drift.resubscribe() // forgotten objects are no longer watched
		}
	}
	return r.Line(fmt.Sprintf("Refreshed %d objects of workspace %q: %d updated from reality.", len(state), ws, len(bodies)))
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
