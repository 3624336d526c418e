package infra

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/engines/infra/config"
	"github.com/cairnhq/cairn/internal/ascaller"
	"github.com/cairnhq/cairn/journal"
)

// Terraform's CLI habits that fit cairn: init checks (and writes
// nothing), fmt formats with hclwrite, show prints state, state mv and
// state rm move and forget objects of state.

// runInit checks what terraform init would fetch: every module is local
// (or installed in .terraform/modules) and every required provider is one
// cairn has. It writes nothing and reaches no network.
func (m *module) runInit(ctx context.Context, r engines.Request) error {
	cfg, _, err := m.loadGraph(r)
	if err != nil {
		return err
	}
	lines := []string{"Initializing modules..."}
	var walk func(c *config.Config, prefix string)
	walk = func(c *config.Config, prefix string) {
		for _, name := range slices.Sorted(maps.Keys(c.ModuleCalls)) {
			mc := c.ModuleCalls[name]
			rel, err := filepath.Rel(cfg.Dir, mc.Child.Dir)
			if err != nil {
				rel = mc.Child.Dir
			}
			lines = append(lines, fmt.Sprintf("- %s%s in %s", prefix, name, rel))
			walk(mc.Child, prefix+name+".")
		}
	}
	walk(cfg, "")
	lines = append(lines, "", "Initializing provider plugins...")
	used := map[string]bool{}
	var types func(c *config.Config)
	types = func(c *config.Config) {
		for _, res := range c.Resources {
			if p := providerOf(res.Type); p != nil {
				used[providerName(res.Type)] = true
			}
		}
		for _, rp := range c.Terraform.RequiredProviders {
			used[providerSourceName(normalizeSource(rp.Source))] = true
		}
		for _, mc := range c.ModuleCalls {
			types(mc.Child)
		}
	}
	types(cfg)
	for _, p := range slices.Sorted(maps.Keys(used)) {
		lines = append(lines, "- "+p+" is built in to cairn")
	}
	lines = append(lines, "", "cairn has been successfully initialized! (Nothing was downloaded or written.)")
	return say(r, lines)
}

func providerSourceName(src string) string {
	if strings.Count(src, "/") == 1 {
		return "registry.terraform.io/" + src
	}
	return src
}

// fmtFiles lists the files infra fmt formats in dir: *.tf, *.hcl,
// *.tfvars (and below, with recursive).
func fmtFiles(dir string, recursive bool) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir && (!recursive || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if (config.IsConfigFile(d.Name()) || strings.HasSuffix(d.Name(), ".tfvars")) && !strings.HasSuffix(d.Name(), ".json") {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// runFmt formats configuration files as terraform fmt does (hclwrite),
// reading and writing with the caller's credentials; with check it only
// lists the files that are not formatted, and fails if there are any.
func (m *module) runFmt(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	dir, err := resolveDir(r, st.Args["PATH"])
	if err != nil {
		return err
	}
	check, recursive := st.Flags["check"], st.Flags["recursive"]
	var changed []string
	err = ascaller.Do(credOf(r.Actor()), func() error {
		files, err := fmtFiles(dir, recursive)
		if err != nil {
			return err
		}
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			if _, diags := hclwrite.ParseConfig(src, f, hcl.InitialPos); diags.HasErrors() {
				return diagErr(diags)
			}
			out := hclwrite.Format(src)
			if bytes.Equal(out, src) {
				continue
			}
			changed = append(changed, f)
			if check {
				continue
			}
			fi, err := os.Stat(f)
			if err != nil {
				return err
			}
			tmp := f + ".cairn-fmt"
			if err := os.WriteFile(tmp, out, fi.Mode().Perm()); err != nil {
				return err
			}
			if err := os.Rename(tmp, f); err != nil {
				os.Remove(tmp)
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, f := range changed {
		rel, _ := filepath.Rel(dir, f)
		if err := r.Line(rel); err != nil {
			return err
		}
	}
	if check && len(changed) > 0 {
		return wire.Errorf(wire.FailedPrecondition, "%d files are not formatted (listed); run infra fmt to format them", len(changed))
	}
	return nil
}

// runShow prints the workspace's state as terraform show does.
func (m *module) runShow(ctx context.Context, r engines.Request) error {
	ws, err := m.knownWorkspace(r.Statement())
	if err != nil {
		return err
	}
	meta, res, err := m.readState(ws)
	if err != nil {
		return err
	}
	var lines []string
	for _, a := range slices.Sorted(maps.Keys(res)) {
		rs := res[a]
		mode := "resource"
		if strings.HasPrefix(staticAddr(a), "data.") {
			mode = "data"
		}
		lines = append(lines, "# "+a+":", fmt.Sprintf("%s %q %q {", mode, rs.Type, nameOf(a)))
		attrs := redactedAttrs(rs)
		width := 2
		for k := range attrs {
			width = max(width, len(k))
		}
		lines = append(lines, fmt.Sprintf("    %-*s = %q", width, "id", rs.ID))
		for _, k := range slices.Sorted(maps.Keys(attrs)) {
			v := attrs[k]
			if rs.sensitive(k) {
				lines = append(lines, fmt.Sprintf("    %-*s = (sensitive value)", width, k))
				continue
			}
			lines = append(lines, fmt.Sprintf("    %-*s = %s", width, k, display(v)))
		}
		lines = append(lines, "}", "")
	}
	if len(meta.Outputs) > 0 {
		lines = append(lines, "", "Outputs:", "")
		for _, k := range slices.Sorted(maps.Keys(meta.Outputs)) {
			lines = append(lines, fmt.Sprintf("%s = %s", k, display(meta.Outputs[k])))
		}
	}
	if len(res) == 0 {
		lines = append(lines, "The state file is empty. No resources are represented.")
	}
	return say(r, lines)
}

// stateUnder lists the objects of state at or under addr (a resource, an
// instance, or a module).
func stateUnder(res map[string]*ResourceState, addr string) []string {
	var out []string
	for a := range res {
		if addrUnder(a, addr) {
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}

// runStateRm takes objects out of state without destroying them, as
// terraform state rm: an infra.forget event each.
func (m *module) runStateRm(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	ws, err := m.knownWorkspace(st)
	if err != nil {
		return err
	}
	l := m.lock(ws)
	l.Lock()
	defer l.Unlock()
	_, res, err := m.readState(ws)
	if err != nil {
		return err
	}
	addr := st.Args["ADDR"]
	addrs := stateUnder(res, addr.Text)
	if len(addrs) == 0 {
		return engines.Errorf(wire.NotFound, addr, "%s matches nothing in the state of workspace %q; infra state list shows what is", addr.Text, ws)
	}
	var bodies []*journal.Body
	for _, a := range addrs {
		bodies = append(bodies, &journal.Body{Kind: KindForget, Subject: subject(ws, a), Node: m.node, Actor: r.Actor(),
			Data: map[string]any{"workspace": ws, "addr": a, "before": res[a].toMap(), "reason": "infra state rm"}})
	}
	if _, err := m.commit(ctx, &commitReq{ws: ws, bodies: bodies}); err != nil {
		return err
	}
	m.resubscribe()
	for _, a := range addrs {
		if err := r.Line("Removed " + a); err != nil {
			return err
		}
	}
	return r.Line(fmt.Sprintf("Successfully removed %d resource instance(s).", len(addrs)))
}

// runStateMv moves objects of state to another address, as terraform
// state mv: an infra.move event each.
func (m *module) runStateMv(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	ws, err := m.knownWorkspace(st)
	if err != nil {
		return err
	}
	l := m.lock(ws)
	l.Lock()
	defer l.Unlock()
	_, res, err := m.readState(ws)
	if err != nil {
		return err
	}
	from, to := st.Args["FROM"], st.Args["TO"]
	addrs := stateUnder(res, from.Text)
	if len(addrs) == 0 {
		return engines.Errorf(wire.NotFound, from, "%s matches nothing in the state of workspace %q; infra state list shows what is", from.Text, ws)
	}
	if isModulePath(from.Text) != isModulePath(to.Text) {
		return engines.Errorf(wire.InvalidArgument, to, "cannot move %s to %s: a module moves only to a module, a resource only to a resource", from.Text, to.Text)
	}
	var bodies []*journal.Body
	for _, a := range addrs {
		dest := to.Text + a[len(from.Text):]
		if _, taken := res[dest]; taken {
			return engines.Errorf(wire.FailedPrecondition, to, "%s is in state already; move or remove it first", dest)
		}
		if _, dr := splitAddr(dest); typeOf(dr) != res[a].Type && !strings.HasPrefix(typeOf(dr), "data.") {
			return engines.Errorf(wire.InvalidArgument, to, "cannot move %s (a %s) to %s, an address of another type", a, res[a].Type, dest)
		}
		rs := *res[a]
		rs.Addr = dest
		bodies = append(bodies, &journal.Body{Kind: KindMove, Subject: subject(ws, dest), Node: m.node, Actor: r.Actor(),
			Data: map[string]any{"workspace": ws, "addr": dest, "from": a, "type": rs.Type, "id": rs.ID, "after": rs.toMap()}})
	}
	if _, err := m.commit(ctx, &commitReq{ws: ws, bodies: bodies}); err != nil {
		return err
	}
	for _, b := range bodies {
		if err := r.Line(fmt.Sprintf("Move %q to %q", b.Data["from"], b.Data["addr"])); err != nil {
			return err
		}
	}
	return r.Line(fmt.Sprintf("Successfully moved %d object(s).", len(bodies)))
}

// refreshOnly is plan and apply with refresh-only, as terraform's
// -refresh-only: what changed outside cairn, and, applied, that recorded
// in state (infra.refresh and infra.forget events) with nothing changed
// outside cairn.
func (m *module) refreshOnly(ctx context.Context, r engines.Request, apply bool) error {
	_, ws, err := m.dirOf(r)
	if err != nil {
		return err
	}
	if apply && !r.Statement().Flags["auto-approve"] {
		return wire.Errorf(wire.FailedPrecondition, "not applied: add auto-approve to record what changed outside cairn")
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
	out := outside(state, actual)
	if len(out) == 0 {
		return r.Line("No changes. Your infrastructure still matches the configuration.")
	}
	lines := render(&Plan{Outside: out})
	lines = lines[:len(lines)-1] // render's "No changes." line
	lines = append(lines, "This is a refresh-only plan, so cairn will not take any actions to undo these. Apply it with",
		"refresh-only auto-approve to record the updated values in the state without changing any remote objects.")
	if !apply {
		return say(r, lines)
	}
	bodies := refreshBodies(ws, state, actual, m.node, r.Actor())
	if len(bodies) > 0 {
		if _, err := m.commit(ctx, &commitReq{ws: ws, bodies: bodies}); err != nil {
			return err
		}
		m.resubscribe()
	}
	return say(r, append(lines, "", fmt.Sprintf("Apply complete! Resources: 0 added, 0 changed, 0 destroyed. (%d objects of state updated from reality.)", len(bodies))))
}
