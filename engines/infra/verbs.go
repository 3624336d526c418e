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

	"github.com/hashicorp/hcl/v2"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/engines/infra/config"
)

var (
	optWorkspace = dsl.Option{Name: "workspace", Meta: "NAME", Help: "the workspace (default: the directory's base name)"}
	optVarFile   = dsl.Option{Name: "var-file", Meta: "FILE", Repeatable: true, Help: "variable values from an HCL file (terraform.tfvars style)"}
	optTarget    = dsl.Option{Name: "target", Meta: "ADDR", Repeatable: true, Help: "only this resource (and what it depends on)"}
	optReplace   = dsl.Option{Name: "replace", Meta: "ADDR", Repeatable: true, Help: "replace this resource even if unchanged"}
	argPath      = dsl.Arg{Name: "PATH", Required: true, Help: "directory of *.tf and *.hcl files (relative to your working directory)"}
	optPath      = dsl.Arg{Name: "PATH", Help: "directory of *.tf and *.hcl files; default: where the workspace was last applied from"}
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
			Args:      []dsl.Arg{{Name: "PATH", Help: "directory of *.tf and *.hcl files; not with plan="}},
			Flags:     []dsl.Flag{{Name: "auto-approve", Help: "apply without a saved plan"}, {Name: "refresh-only", Help: "only record in state what changed outside cairn"}},
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
			Verb:    "infra fmt",
			Access:  dsl.AccessRead,
			Summary: "format configuration files as terraform fmt does",
			Help: "infra fmt PATH rewrites PATH's *.tf, *.hcl and *.tfvars files in HCL's canonical format (hclwrite),\n" +
				"as you (your credentials), and lists the files it changed; check lists them and changes nothing,\n" +
				"failing if there are any; recursive goes into subdirectories.\n\n  infra fmt . check",
			Args:  []dsl.Arg{argPath},
			Flags: []dsl.Flag{{Name: "check", Help: "change nothing; fail if a file is not formatted"}, {Name: "recursive", Help: "also the files of subdirectories"}},
		}, Run: m.runFmt},
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
			Verb:    "infra init",
			Access:  dsl.AccessRead,
			Summary: "check a configuration's modules and providers, as terraform init, fetching and writing nothing",
			Help: "infra init PATH loads every module (local, or installed in .terraform/modules) and checks\n" +
				"required_version and required_providers against what cairn has; nothing is downloaded or written.",
			Args:      []dsl.Arg{argPath},
			Options:   []dsl.Option{optVarFile},
			Bag:       true,
			BagPrefix: "var.",
		}, Run: m.runInit},
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
			Flags:     []dsl.Flag{{Name: "destroy", Help: "plan to destroy everything"}, {Name: "refresh-only", Help: "only show what changed outside cairn"}},
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
			Verb:    "infra show",
			Access:  dsl.AccessRead,
			Summary: "the workspace's state and outputs, as terraform show prints them",
			Options: []dsl.Option{optWorkspace},
		}, Run: m.runShow},
		{Spec: dsl.Spec{
			Verb:    "infra state list",
			Access:  dsl.AccessRead,
			Summary: "the objects in state",
			Options: []dsl.Option{optWorkspace},
		}, Run: m.runStateList},
		{Spec: dsl.Spec{
			Verb:    "infra state mv",
			Access:  dsl.AccessHost,
			Summary: "move objects of state to another address, as terraform state mv",
			Help:    "infra state mv FROM TO moves a resource, an instance or a module's objects (infra.move events); nothing\nis changed outside cairn. A moved block in the configuration does the same during an apply.\n\n  infra state mv file.a 'module.m[\"x\"].file.a'",
			Args:    []dsl.Arg{{Name: "FROM", Required: true, Help: "address in state"}, {Name: "TO", Required: true, Help: "new address"}},
			Options: []dsl.Option{optWorkspace},
		}, Run: m.runStateMv},
		{Spec: dsl.Spec{
			Verb:    "infra state rm",
			Access:  dsl.AccessHost,
			Summary: "take objects out of state without destroying them, as terraform state rm",
			Help:    "infra state rm ADDR forgets a resource, an instance or a module's objects (infra.forget events); they\nstay as they are. A removed block with destroy = false does the same during an apply.",
			Args:    []dsl.Arg{{Name: "ADDR", Required: true, Help: "address in state"}},
			Options: []dsl.Option{optWorkspace},
		}, Run: m.runStateRm},
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
	in.Env = callerTFVars(r.Actor().PID)
	for _, b := range st.Bag {
		name := strings.TrimPrefix(b.Key, "var.")
		in.Values[name] = b.Value.Text
		in.ValueRanges[name] = hcl.Range{Filename: "statement", Start: hcl.Pos{Line: b.Pos.Line, Column: b.Pos.Col}, End: hcl.Pos{Line: b.Pos.Line, Column: b.Pos.Col}}
	}
	return in, nil
}

// callerTFVars reads the TF_VAR_NAME variables of the caller's
// environment (/proc/PID/environ of the peer, as its working directory
// is read), which terraform takes as the weakest variable values.
func callerTFVars(pid int) map[string]string {
	if pid <= 0 {
		return nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, kv := range strings.Split(string(b), "\x00") {
		k, v, ok := strings.Cut(kv, "=")
		if name, tf := strings.CutPrefix(k, "TF_VAR_"); ok && tf && name != "" {
			out[name] = v
		}
	}
	return out
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
	cfg, diags, err := loadConfig(r.Actor(), dir)
	if err != nil {
		return nil, nil, err
	}
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

// say answers lines of text.
func say(r engines.Request, lines []string) error {
	for _, l := range lines {
		if err := r.Line(l); err != nil {
			return err
		}
	}
	return nil
}

// readState reads a workspace's record and objects from one snapshot.
func (m *module) readState(ws string) (workspaceMeta, map[string]*ResourceState, error) {
	sn := m.audit.Snapshot()
	defer sn.Close()
	rd := stateReader{sn}
	meta, err := rd.meta(ws)
	if err != nil {
		return meta, nil, err
	}
	res, err := rd.resources(ws)
	return meta, res, err
}
