package infra

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/dynblock"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/cairnhq/cairn/engines/infra/config"
	"github.com/cairnhq/cairn/engines/infra/provider"
)

// node is one object of the configuration graph: a local, a resource or
// data source (all its instances), a module call (all its instances), or
// an output. A node inside a module stands for that object in every
// instance of the module.
type node struct {
	addr   string // local.X, TYPE.NAME, data.TYPE.NAME, output.X, module.M; prefixed by the module: module.web.TYPE.NAME
	prefix string // the module the node is in: "" (root), "module.web.", "module.web.module.db."
	mod    *config.Config
	deps   []string // the nodes it waits on (addresses as addr)
	refs   []string // what its expressions name, within its module (var.x, local.y, TYPE.NAME, module.M)
	res    *config.Resource
	attrs  hcl.Attributes // a resource's configured arguments
	sch    *provider.Schema
	blocks hcl.Body // a resource's nested blocks (dynamic ones unexpanded), when its type has any
	local  *config.Local
	out    *config.Output
	call   *config.ModuleCall
}

// maxCount bounds count and for_each: a typo of 1e9 must not take the
// daemon's memory.
const maxCount = 100000

// modInst is one instance of a module: the root, or one instance of a
// module call (module.web["a"]).
type modInst struct {
	path string // "" for the root; module.web["a"]; module.web["a"].module.db
	cfg  *config.Config
	vars cty.Value // its input variables, as an object; guarded by the evaluator's mu
}

// qualify gives a module-relative address its absolute form.
func (m *modInst) qualify(a string) string {
	if m.path == "" {
		return a
	}
	return m.path + "." + a
}

// instance is one instance of a resource: the resource itself, or one of
// its count or for_each copies, in one module instance.
type instance struct {
	addr string    // net_link.br0, net_link.v[0], module.web["a"].file.f["a"]
	res  string    // the resource's address in its module instance: module.web["a"].file.f
	key  cty.Value // cty.NilVal, a number (count) or a string (for_each)
	each cty.Value // for_each's each.value
	mod  *modInst
}

// evaluator holds the values known so far while a plan or an apply walks
// the graph. It is safe for concurrent use.
type evaluator struct {
	root      *config.Config
	funcs     map[string]function.Function
	workspace string

	mu     sync.Mutex
	mods   map[string][]*modInst // by node prefix: the module's instances
	byPath map[string]*modInst
	locals map[string]cty.Value // by qualified address (module.web["a"].local.x)
	// inst holds each resource instance's value by qualified resource
	// address and instance key ("" for a resource without count or
	// for_each).
	inst  map[string]map[string]cty.Value
	shape map[string]string // qualified resource or module call address -> "single", "count", "for_each"
	keys  map[string][]cty.Value
	outs  map[string]map[string]cty.Value // module instance path -> its outputs
}

func newEvaluator(cfg *config.Config, vars map[string]cty.Value) *evaluator {
	vv := map[string]cty.Value{}
	for k, v := range vars {
		vv[k] = v
	}
	root := &modInst{cfg: cfg, vars: cty.ObjectVal(vv)}
	return &evaluator{
		root: cfg, funcs: config.Functions(),
		mods: map[string][]*modInst{"": {root}}, byPath: map[string]*modInst{"": root},
		locals: map[string]cty.Value{}, inst: map[string]map[string]cty.Value{}, shape: map[string]string{},
		keys: map[string][]cty.Value{}, outs: map[string]map[string]cty.Value{},
	}
}

// instancesOf lists the instances of the module call at addr (qualified).
func (e *evaluator) instancesOf(addr string) []*modInst {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*modInst
	for _, k := range e.keys[addr] {
		if mi := e.byPath[addr+instKey(k)]; mi != nil {
			out = append(out, mi)
		}
	}
	return out
}

// allMods lists every module instance, by path.
func (e *evaluator) allMods() []*modInst {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*modInst
	for _, p := range slices.Sorted(maps.Keys(e.byPath)) {
		out = append(out, e.byPath[p])
	}
	return out
}

// rootMod is the root module's instance.
func (e *evaluator) rootMod() *modInst { return e.byPath[""] }

// modsOf lists the instances of the module a node is in.
func (e *evaluator) modsOf(n *node) []*modInst {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.mods[n.prefix])
}

// instKey is the string key of an instance within its resource.
func instKey(k cty.Value) string {
	switch {
	case k == cty.NilVal:
		return ""
	case k.Type() == cty.Number:
		i, _ := k.AsBigFloat().Int64()
		return fmt.Sprintf("[%d]", i)
	}
	return fmt.Sprintf("[%q]", k.AsString())
}

func (e *evaluator) setInstance(in *instance, v cty.Value) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.inst[in.res]
	if m == nil {
		m = map[string]cty.Value{}
		e.inst[in.res] = m
	}
	m[instKey(in.key)] = v
}

func (e *evaluator) setShape(addr, shape string, keys []cty.Value) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.shape[addr] = shape
	e.keys[addr] = keys
	if e.inst[addr] == nil {
		e.inst[addr] = map[string]cty.Value{}
	}
}

func (e *evaluator) setLocal(addr string, v cty.Value) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.locals[addr] = v
}

func (e *evaluator) setOutput(mi *modInst, name string, v cty.Value) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.outs[mi.path]
	if m == nil {
		m = map[string]cty.Value{}
		e.outs[mi.path] = m
	}
	m[name] = v
}

// resourceValue is a resource's value as expressions see it: an object,
// a tuple of objects (count) or an object of objects (for_each).
func (e *evaluator) resourceValue(addr string) cty.Value {
	m := e.inst[addr]
	switch e.shape[addr] {
	case "count":
		vals := make([]cty.Value, len(m))
		for k, v := range m {
			var i int
			fmt.Sscanf(k, "[%d]", &i)
			if i >= 0 && i < len(vals) {
				vals[i] = v
			}
		}
		for i := range vals {
			if vals[i] == cty.NilVal {
				vals[i] = cty.DynamicVal
			}
		}
		return cty.TupleVal(vals)
	case "for_each":
		obj := map[string]cty.Value{}
		for k, v := range m {
			var s string
			fmt.Sscanf(k, "[%q]", &s)
			obj[s] = v
		}
		return cty.ObjectVal(obj)
	}
	if v, ok := m[""]; ok {
		return v
	}
	return cty.DynamicVal
}

// moduleValue is a module call's value as expressions see it: its
// outputs as an object, a tuple of them (count) or an object of them by
// key (for_each).
func (e *evaluator) moduleValue(addr string, child *config.Config) cty.Value {
	one := func(path string) cty.Value {
		m := map[string]cty.Value{}
		for name := range child.Outputs {
			if v, ok := e.outs[path][name]; ok {
				m[name] = v
			} else {
				m[name] = cty.DynamicVal
			}
		}
		return cty.ObjectVal(m)
	}
	keys := e.keys[addr]
	switch e.shape[addr] {
	case "count":
		vals := make([]cty.Value, len(keys))
		for i, k := range keys {
			vals[i] = one(addr + instKey(k))
		}
		return cty.TupleVal(vals)
	case "for_each":
		obj := map[string]cty.Value{}
		for _, k := range keys {
			obj[k.AsString()] = one(addr + instKey(k))
		}
		return cty.ObjectVal(obj)
	case "single":
		return one(addr)
	}
	return cty.DynamicVal
}

// context returns the evaluation context, in module instance mi, for
// expressions that refer to refs (as config.Refs returns them), for one
// instance (nil: not in a resource or module call with count or
// for_each). self, when not NilVal, is the object of a postcondition.
func (e *evaluator) context(mi *modInst, refs []string, in *instance, self cty.Value) *hcl.EvalContext {
	e.mu.Lock()
	defer e.mu.Unlock()
	vars := map[string]cty.Value{
		"var": mi.vars,
		"path": cty.ObjectVal(map[string]cty.Value{
			"module": cty.StringVal(mi.cfg.Dir), "root": cty.StringVal(e.root.Dir), "cwd": cty.StringVal(e.root.Dir),
		}),
		"terraform": cty.ObjectVal(map[string]cty.Value{"workspace": cty.StringVal(e.workspace)}),
	}
	if self != cty.NilVal {
		vars["self"] = self
	}
	locals := map[string]cty.Value{}
	byType := map[string]map[string]cty.Value{}
	data := map[string]map[string]cty.Value{}
	modules := map[string]cty.Value{}
	for _, r := range refs {
		switch {
		case strings.HasPrefix(r, "var."):
		case strings.HasPrefix(r, "local."):
			if v, ok := e.locals[mi.qualify(r)]; ok {
				locals[r[6:]] = v
			} else {
				locals[r[6:]] = cty.DynamicVal
			}
		case strings.HasPrefix(r, "module."):
			if mc := mi.cfg.ModuleCalls[r[7:]]; mc != nil && mc.Child != nil {
				modules[r[7:]] = e.moduleValue(mi.qualify(r), mc.Child)
			}
		case strings.HasPrefix(r, "data."):
			t, n, _ := strings.Cut(r[5:], ".")
			if data[t] == nil {
				data[t] = map[string]cty.Value{}
			}
			data[t][n] = e.resourceValue(mi.qualify(r))
		default:
			t, n, _ := strings.Cut(r, ".")
			if byType[t] == nil {
				byType[t] = map[string]cty.Value{}
			}
			byType[t][n] = e.resourceValue(mi.qualify(r))
		}
	}
	vars["local"] = cty.ObjectVal(locals)
	vars["module"] = cty.ObjectVal(modules)
	for t, m := range byType {
		vars[t] = cty.ObjectVal(m)
	}
	dm := map[string]cty.Value{}
	for t, m := range data {
		dm[t] = cty.ObjectVal(m)
	}
	vars["data"] = cty.ObjectVal(dm)
	if in != nil && in.key != cty.NilVal {
		if in.key.Type() == cty.Number {
			vars["count"] = cty.ObjectVal(map[string]cty.Value{"index": in.key})
		} else {
			vars["each"] = cty.ObjectVal(map[string]cty.Value{"key": in.key, "value": in.each})
		}
	}
	return &hcl.EvalContext{Variables: vars, Functions: e.funcs}
}

// bodySchema is the HCL schema of a resource's arguments: every attribute
// the configuration may set.
func bodySchema(s *provider.Schema) *hcl.BodySchema {
	bs := &hcl.BodySchema{}
	for _, n := range s.Names() {
		a := s.Attributes[n]
		if a.Computed && !a.Optional && !a.Required || a.Type == provider.Blocks {
			continue
		}
		bs.Attributes = append(bs.Attributes, hcl.AttributeSchema{Name: n, Required: a.Required})
	}
	return bs
}

// hasBlocks reports whether a schema has nested block types.
func hasBlocks(s *provider.Schema) bool {
	for _, a := range s.Attributes {
		if a.Type == provider.Blocks {
			return true
		}
	}
	return false
}

// blockSpec is the hcldec spec of a schema's nested block types: each a
// list of objects of the block's attributes.
func blockSpec(s *provider.Schema) hcldec.ObjectSpec {
	spec := hcldec.ObjectSpec{}
	for name, a := range s.Attributes {
		if a.Type != provider.Blocks || a.Computed && !a.Optional && !a.Required {
			continue
		}
		inner := hcldec.ObjectSpec{}
		for n, ia := range a.Block.Attributes {
			if ia.Computed && !ia.Optional && !ia.Required {
				continue
			}
			inner[n] = &hcldec.AttrSpec{Name: n, Type: ctyType(ia.Type), Required: ia.Required}
		}
		spec[name] = &hcldec.BlockListSpec{TypeName: name, Nested: inner, MaxItems: a.MaxItems}
	}
	return spec
}

// blocksToGo converts a known list of block objects to a Blocks value:
// one map per block, null attributes left out, defaults filled in.
func blocksToGo(v cty.Value, sch *provider.Schema) ([]map[string]any, error) {
	out := []map[string]any{}
	if v.IsNull() {
		return out, nil
	}
	for it := v.ElementIterator(); it.Next(); {
		_, b := it.Element()
		m := map[string]any{}
		for n, a := range sch.Attributes {
			if !b.Type().HasAttribute(n) {
				if a.Default != nil {
					m[n] = a.Default
				}
				continue
			}
			av := b.GetAttr(n)
			if av.IsNull() {
				if a.Default != nil {
					m[n] = a.Default
				}
				continue
			}
			g, err := toGo(av, a.Type)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", n, err)
			}
			m[n] = g
		}
		out = append(out, m)
	}
	return out, nil
}

// graph builds the configuration's nodes with their dependencies, in an
// order where every node comes after what it depends on; the nodes of
// called modules are in it too, under their module's prefix.
func buildGraph(cfg *config.Config) ([]*node, hcl.Diagnostics) {
	nodes := map[string]*node{}
	diags := checkTerraform(cfg)
	diags = append(diags, addNodes(cfg, "", nodes)...)
	if diags.HasErrors() {
		return nil, diags
	}
	order, cyc := topo(nodes)
	if cyc != nil {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cycle in the configuration",
			Detail: "These objects refer to each other in a cycle: " + strings.Join(cyc, ", ") + "; break it by removing one of the references."})
		return nil, diags
	}
	return order, diags
}

// moduleAddrs lists the addresses of every node of a called module
// (prefix is its own, "module.web."), recursively.
func moduleAddrs(c *config.Config, prefix string) []string {
	var out []string
	for a := range c.Resources {
		out = append(out, prefix+a)
	}
	for n := range c.Locals {
		out = append(out, prefix+"local."+n)
	}
	for n := range c.Outputs {
		out = append(out, prefix+"output."+n)
	}
	for n, mc := range c.ModuleCalls {
		out = append(out, prefix+"module."+n)
		if mc.Child != nil {
			out = append(out, moduleAddrs(mc.Child, prefix+"module."+n+".")...)
		}
	}
	sort.Strings(out)
	return out
}

// addNodes adds the nodes of one module (prefix "" for the root) and of
// the modules it calls.
func addNodes(cfg *config.Config, prefix string, nodes map[string]*node) hcl.Diagnostics {
	var diags hcl.Diagnostics
	// deps turns what expressions refer to into the nodes they wait on:
	// a module's outputs for module.M (everything in it for depends_on),
	// and the module's own call for what is inside a module (its
	// variables come from there).
	deps := func(refs []string, dependsOn []string) []string {
		var out []string
		if prefix != "" {
			out = append(out, strings.TrimSuffix(prefix, "."))
		}
		for _, r := range refs {
			switch {
			case strings.HasPrefix(r, "var."):
			case strings.HasPrefix(r, "module."):
				out = append(out, prefix+r)
				if mc := cfg.ModuleCalls[r[7:]]; mc != nil && mc.Child != nil {
					if slices.Contains(dependsOn, r) {
						out = append(out, moduleAddrs(mc.Child, prefix+r+".")...)
					} else {
						for _, o := range slices.Sorted(maps.Keys(mc.Child.Outputs)) {
							out = append(out, prefix+r+".output."+o)
						}
					}
				}
			default:
				out = append(out, prefix+r)
			}
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	refsOf := func(trs []hcl.Traversal) []string {
		refs, d := cfg.Refs(trs)
		diags = append(diags, d...)
		return refs
	}
	conditionTraversals := func(cs []*config.Condition) []hcl.Traversal {
		var trs []hcl.Traversal
		for _, c := range cs {
			trs = append(trs, c.Cond.Variables()...)
			trs = append(trs, c.Msg.Variables()...)
		}
		return trs
	}
	for name, l := range cfg.Locals {
		refs := refsOf(l.Expr.Variables())
		nodes[prefix+"local."+name] = &node{addr: prefix + "local." + name, prefix: prefix, mod: cfg, refs: refs, deps: deps(refs, nil), local: l}
	}
	for _, r := range cfg.SortedResources() {
		n := &node{addr: prefix + r.Addr(), prefix: prefix, mod: cfg, res: r}
		var sch *provider.Schema
		if r.Mode == config.Data {
			if dt := dataType(r.Type); dt != nil {
				sch = dt.Schema()
			} else {
				detail := fmt.Sprintf("There is no data source type %q; the data source types are %s.", r.Type, strings.Join(dataTypeNames(), ", "))
				if why, ok := absentTypes[r.Type]; ok {
					detail = fmt.Sprintf("cairn does not offer the data source type %q: %s.", r.Type, why)
				}
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid data source type", Detail: detail, Subject: r.TypeRange.Ptr()})
				continue
			}
		} else if rt := resourceType(r.Type); rt != nil {
			sch = rt.Schema()
		} else if why, ok := absentTypes[r.Type]; ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unsupported resource type",
				Detail: fmt.Sprintf("cairn does not offer the resource type %q: %s.", r.Type, why), Subject: r.TypeRange.Ptr()})
			continue
		} else {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid resource type",
				Detail: fmt.Sprintf("There is no resource type %q; the resource types are %s.", r.Type, strings.Join(resourceTypeNames(), ", ")), Subject: r.TypeRange.Ptr()})
			continue
		}
		n.sch = sch
		var trs []hcl.Traversal
		if hasBlocks(sch) {
			content, remain, d := r.Body.PartialContent(bodySchema(sch))
			diags = append(diags, d...)
			n.attrs = content.Attributes
			spec := blockSpec(sch)
			bs := hcldec.ImpliedSchema(spec)
			bs.Blocks = append(bs.Blocks, hcl.BlockHeaderSchema{Type: "dynamic", LabelNames: []string{"type"}})
			_, d = remain.Content(bs)
			diags = append(diags, d...)
			n.blocks = remain
			trs = append(trs, dynblock.VariablesHCLDec(remain, spec)...)
		} else {
			content, d := r.Body.Content(bodySchema(sch))
			diags = append(diags, d...)
			n.attrs = content.Attributes
		}
		for _, a := range n.attrs {
			trs = append(trs, a.Expr.Variables()...)
		}
		if r.Count != nil {
			trs = append(trs, r.Count.Variables()...)
		}
		if r.ForEach != nil {
			trs = append(trs, r.ForEach.Variables()...)
		}
		trs = append(trs, r.Lifecycle.ReplaceTriggeredBy...)
		for _, tr := range r.Lifecycle.ReplaceTriggeredBy {
			if ref, ok, _ := config.Ref(tr); ok && (strings.HasPrefix(ref, "var.") || strings.HasPrefix(ref, "local.") || strings.HasPrefix(ref, "module.")) {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid replace_triggered_by expression",
					Detail: "Only resources, count.index and each.key may be used in replace_triggered_by; " + ref + " is not a resource.", Subject: tr.SourceRange().Ptr()})
			}
		}
		trs = append(trs, conditionTraversals(r.Lifecycle.Preconditions)...)
		trs = append(trs, conditionTraversals(r.Lifecycle.Postconditions)...)
		dependsOn := refsOf(r.DependsOn)
		trs = append(trs, r.DependsOn...)
		refs := refsOf(trs)
		for _, ref := range refs {
			if ref == r.Addr() {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Self-referential block",
					Detail: fmt.Sprintf("%s refers to itself; use self only in postconditions (and provisioners, which cairn does not have).", n.addr), Subject: r.Range.Ptr()})
			}
		}
		n.refs = refs
		n.deps = deps(refs, dependsOn)
		nodes[n.addr] = n
	}
	for name, o := range cfg.Outputs {
		trs := append(o.Expr.Variables(), o.DependsOn...)
		trs = append(trs, conditionTraversals(o.Preconditions)...)
		refs := refsOf(trs)
		nodes[prefix+"output."+name] = &node{addr: prefix + "output." + name, prefix: prefix, mod: cfg, refs: refs, deps: deps(refs, refsOf(o.DependsOn)), out: o}
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.ModuleCalls)) {
		mc := cfg.ModuleCalls[name]
		if mc.Child == nil {
			continue // not loaded: Load said why
		}
		var trs []hcl.Traversal
		for _, a := range mc.Args {
			trs = append(trs, a.Expr.Variables()...)
			if _, ok := mc.Child.Variables[a.Name]; !ok {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unsupported argument",
					Detail: fmt.Sprintf("An argument named %q is not expected here: module.%s (%s) declares no variable %q.", a.Name, name, mc.Source, a.Name), Subject: a.NameRange.Ptr()})
			}
		}
		if mc.Count != nil {
			trs = append(trs, mc.Count.Variables()...)
		}
		if mc.ForEach != nil {
			trs = append(trs, mc.ForEach.Variables()...)
		}
		dependsOn := refsOf(mc.DependsOn)
		trs = append(trs, mc.DependsOn...)
		refs := refsOf(trs)
		addr := prefix + "module." + name
		nodes[addr] = &node{addr: addr, prefix: prefix, mod: cfg, refs: refs, deps: deps(refs, dependsOn), call: mc}
		diags = append(diags, addNodes(mc.Child, addr+".", nodes)...)
	}
	return diags
}

// topo orders nodes so dependencies come first (ties by address); on a
// cycle it returns the nodes left in it.
func topo(nodes map[string]*node) ([]*node, []string) {
	indeg := map[string]int{}
	users := map[string][]string{}
	for a, n := range nodes {
		for _, d := range n.deps {
			if _, ok := nodes[d]; !ok {
				continue
			}
			indeg[a]++
			users[d] = append(users[d], a)
		}
	}
	var ready []string
	for a := range nodes {
		if indeg[a] == 0 {
			ready = append(ready, a)
		}
	}
	sort.Strings(ready)
	var out []*node
	for len(ready) > 0 {
		a := ready[0]
		ready = ready[1:]
		out = append(out, nodes[a])
		var next []string
		for _, u := range users[a] {
			if indeg[u]--; indeg[u] == 0 {
				next = append(next, u)
			}
		}
		sort.Strings(next)
		ready = append(ready, next...)
		sort.Strings(ready)
	}
	if len(out) != len(nodes) {
		var cyc []string
		for a := range nodes {
			if indeg[a] > 0 {
				cyc = append(cyc, a)
			}
		}
		sort.Strings(cyc)
		return nil, cyc
	}
	return out, nil
}

// expand evaluates a resource's count or for_each into its instances in
// module instance mi.
func (e *evaluator) expand(n *node, mi *modInst) ([]instance, hcl.Diagnostics) {
	r := n.res
	res := mi.qualify(r.Addr())
	keys, shape, diags := e.expandKeys(r.Count, r.ForEach, e.context(mi, n.refs, nil, cty.NilVal))
	if diags.HasErrors() {
		return nil, diags
	}
	var ks []cty.Value
	out := make([]instance, len(keys))
	for i, k := range keys {
		out[i] = instance{addr: res + instKey(k.key), res: res, key: k.key, each: k.each, mod: mi}
		ks = append(ks, k.key)
	}
	e.setShape(res, shape, ks)
	return out, nil
}

type instanceKey struct{ key, each cty.Value }

// expandKeys evaluates count or for_each (neither: one instance without
// a key), in the order of the instance addresses.
func (e *evaluator) expandKeys(count, forEach hcl.Expression, ctx *hcl.EvalContext) ([]instanceKey, string, hcl.Diagnostics) {
	switch {
	case count != nil:
		v, diags := count.Value(ctx)
		if diags.HasErrors() {
			return nil, "", diags
		}
		v, _ = v.Unmark()
		if !v.IsKnown() {
			return nil, "", hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid count argument",
				Detail: "The \"count\" value depends on values that are known only after apply; count must be known at plan time.", Subject: count.Range().Ptr()}}
		}
		if !v.IsNull() {
			v, _ = convertCty(v, cty.Number) // "2" counts as 2, as in Terraform
		}
		if v == cty.NilVal || v.IsNull() || v.Type() != cty.Number {
			return nil, "", hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid count argument", Detail: "count must be a whole number.", Subject: count.Range().Ptr()}}
		}
		i, acc := v.AsBigFloat().Int64()
		if acc != 0 || i < 0 || i > maxCount {
			return nil, "", hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid count argument",
				Detail: fmt.Sprintf("count must be a whole number from 0 to %d.", maxCount), Subject: count.Range().Ptr()}}
		}
		out := make([]instanceKey, int(i))
		for i := range out {
			out[i] = instanceKey{key: cty.NumberIntVal(int64(i))}
		}
		return out, "count", nil
	case forEach != nil:
		v, diags := forEach.Value(ctx)
		if diags.HasErrors() {
			return nil, "", diags
		}
		bad := func(detail string) hcl.Diagnostics {
			return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid for_each argument", Detail: detail, Subject: forEach.Range().Ptr()}}
		}
		v, marks := v.UnmarkDeep()
		if _, ok := marks[config.Sensitive]; ok {
			return nil, "", bad("Sensitive values, or values derived from sensitive values, cannot be used as for_each arguments: the keys would name instances in plans, state and events.")
		}
		if !v.IsWhollyKnown() {
			return nil, "", bad("The \"for_each\" value depends on values that are known only after apply; it must be known at plan time.")
		}
		if v.IsNull() {
			return nil, "", bad("for_each must be a map, or a set of strings; it is null.")
		}
		ty := v.Type()
		if (ty.IsMapType() || ty.IsObjectType() || ty.IsSetType()) && v.LengthInt() > maxCount {
			n := v.LengthInt()
			return nil, "", bad(fmt.Sprintf("for_each has %d elements; at most %d.", n, maxCount))
		}
		if ty.IsSetType() {
			for it := v.ElementIterator(); it.Next(); {
				if _, ev := it.Element(); ev.IsNull() {
					return nil, "", bad("for_each sets must not contain null.")
				}
			}
		}
		var out []instanceKey
		switch {
		case ty.IsMapType() || ty.IsObjectType():
			for it := v.ElementIterator(); it.Next(); {
				k, ev := it.Element()
				out = append(out, instanceKey{key: k, each: ev})
			}
		case ty.IsSetType() && ty.ElementType() == cty.String:
			for it := v.ElementIterator(); it.Next(); {
				_, ev := it.Element()
				out = append(out, instanceKey{key: ev, each: ev})
			}
		default:
			return nil, "", bad(fmt.Sprintf("for_each must be a map, or a set of strings (use toset() on a list), not %s.", ty.FriendlyName()))
		}
		sort.Slice(out, func(i, j int) bool { return instKey(out[i].key) < instKey(out[j].key) })
		return out, "for_each", nil
	}
	return []instanceKey{{key: cty.NilVal}}, "single", nil
}

// expandCall evaluates a module call in the module instance mi: its
// instances and their input variables. Called again during an apply, it
// updates the variables of the instances the plan made (values known
// only after apply become known).
func (e *evaluator) expandCall(n *node, mi *modInst) hcl.Diagnostics {
	mc := n.call
	addr := mi.qualify("module." + mc.Name)
	keys, shape, diags := e.expandKeys(mc.Count, mc.ForEach, e.context(mi, n.refs, nil, cty.NilVal))
	if diags.HasErrors() {
		return diags
	}
	var ks []cty.Value
	var made []*modInst
	for _, k := range keys {
		ks = append(ks, k.key)
		ctx := e.context(mi, n.refs, &instance{key: k.key, each: k.each}, cty.NilVal)
		given := map[string]cty.Value{}
		givenAt := map[string]hcl.Range{}
		for name, a := range mc.Args {
			v, d := a.Expr.Value(ctx)
			diags = append(diags, d...)
			if !d.HasErrors() {
				given[name], givenAt[name] = v, a.Expr.Range()
			}
		}
		if diags.HasErrors() {
			return diags
		}
		vars, d := mc.Child.ModuleVariables(given, givenAt, "set NAME in the module \""+mc.Name+"\" block")
		for _, x := range d {
			if x.Subject == nil {
				x.Subject = mc.Range.Ptr()
			}
		}
		diags = append(diags, d...)
		if d.HasErrors() {
			return diags
		}
		path := addr + instKey(k.key)
		e.mu.Lock()
		child := e.byPath[path]
		if child == nil {
			child = &modInst{path: path, cfg: mc.Child}
			e.byPath[path] = child
			made = append(made, child)
		}
		child.vars = cty.ObjectVal(vars)
		e.mu.Unlock()
	}
	e.mu.Lock()
	e.shape[addr] = shape
	e.keys[addr] = ks
	e.mods[n.addr+"."] = append(e.mods[n.addr+"."], made...)
	e.mu.Unlock()
	return diags
}

// configValues evaluates an instance's arguments.
type configValues struct {
	vals      provider.Values // known values; nil for null or unknown
	cty       map[string]cty.Value
	set       map[string]bool // the configuration sets it (or it has a default)
	unknown   map[string]bool
	sensitive map[string]bool
}

func (e *evaluator) instanceConfig(n *node, in *instance) (*configValues, hcl.Diagnostics) {
	ctx := e.context(in.mod, n.refs, in, cty.NilVal)
	cv := &configValues{vals: provider.Values{}, cty: map[string]cty.Value{}, set: map[string]bool{}, unknown: map[string]bool{}, sensitive: map[string]bool{}}
	var diags hcl.Diagnostics
	for name, a := range n.attrs {
		at := n.sch.Attributes[name]
		v, d := a.Expr.Value(ctx)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		uv, marks := v.UnmarkDeep()
		if _, ok := marks[config.Sensitive]; ok || at.Sensitive {
			cv.sensitive[name] = true
		}
		conv, err := convertValue(uv, at.Type)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Incorrect attribute value type",
				Detail: fmt.Sprintf("Inappropriate value for attribute %q: %s is required; %s.", name, at.Type, err), Subject: a.Expr.Range().Ptr()})
			continue
		}
		if conv.IsNull() {
			if at.Default != nil {
				cv.vals[name] = at.Default
				cv.cty[name] = toCty(at.Default, at.Type)
				cv.set[name] = true
			} else {
				cv.cty[name] = conv
			}
			continue
		}
		cv.set[name] = true
		cv.cty[name] = conv
		if !conv.IsWhollyKnown() {
			cv.unknown[name] = true
			continue
		}
		g, err := toGo(conv, at.Type)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Incorrect attribute value type",
				Detail: fmt.Sprintf("Inappropriate value for attribute %q: %s.", name, err), Subject: a.Expr.Range().Ptr()})
			continue
		}
		cv.vals[name] = g
	}
	if n.blocks != nil {
		diags = append(diags, e.blockConfig(n, ctx, cv)...)
	}
	for name, at := range n.sch.Attributes {
		if _, given := n.attrs[name]; given || at.Default == nil || at.Type == provider.Blocks {
			continue
		}
		cv.vals[name] = at.Default
		cv.cty[name] = toCty(at.Default, at.Type)
		cv.set[name] = true
	}
	if nz, ok := resourceType(n.res.Type).(provider.Normalizer); ok && n.res.Mode == config.Managed && !diags.HasErrors() {
		cv.vals = nz.Normalize(cv.vals)
		for name, v := range cv.vals {
			if v != nil {
				cv.cty[name] = toCty(v, n.sch.Attributes[name].Type)
			}
		}
	}
	return cv, diags
}

// blockConfig evaluates an instance's nested blocks, dynamic blocks
// expanded (with their iterators, nested ones too) by hcl's dynblock.
func (e *evaluator) blockConfig(n *node, ctx *hcl.EvalContext, cv *configValues) hcl.Diagnostics {
	spec := blockSpec(n.sch)
	v, diags := hcldec.Decode(dynblock.Expand(n.blocks, ctx), spec, ctx)
	if diags.HasErrors() {
		return diags
	}
	for name, a := range n.sch.Attributes {
		if a.Type != provider.Blocks || a.Computed && !a.Optional && !a.Required {
			continue
		}
		bv := cty.DynamicVal
		if v.IsKnown() && !v.IsNull() && v.Type().IsObjectType() && v.Type().HasAttribute(name) {
			bv = v.GetAttr(name)
		}
		uv, marks := bv.UnmarkDeep()
		if _, ok := marks[config.Sensitive]; ok || a.Sensitive {
			cv.sensitive[name] = true
		}
		cv.set[name] = true
		if !uv.IsWhollyKnown() {
			cv.unknown[name] = true
			cv.cty[name] = cty.DynamicVal
			continue
		}
		g, err := blocksToGo(uv, a.Block)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Incorrect attribute value type",
				Detail: fmt.Sprintf("Inappropriate value in a %s block: %s.", name, err), Subject: n.res.Range.Ptr()})
			continue
		}
		cv.vals[name] = g
		cv.cty[name] = toCty(g, provider.Blocks)
	}
	return diags
}

func convertValue(v cty.Value, t provider.Type) (cty.Value, error) {
	if !v.IsKnown() {
		return cty.UnknownVal(ctyType(t)), nil
	}
	out, err := convertCty(v, ctyType(t))
	if err != nil {
		return cty.NilVal, err
	}
	return out, nil
}

// objectValue is an instance's value as other expressions see it: every
// schema attribute plus id; sensitive ones keep their mark.
func objectValue(sch *provider.Schema, vals map[string]cty.Value, id cty.Value) cty.Value {
	m := make(map[string]cty.Value, len(sch.Attributes)+1)
	for name, a := range sch.Attributes {
		if v, ok := vals[name]; ok && v != cty.NilVal {
			m[name] = v
		} else {
			m[name] = cty.NullVal(ctyType(a.Type))
		}
	}
	m["id"] = id
	return cty.ObjectVal(m)
}

// ctyValues converts known provider values to cty by the schema, marking
// sensitive ones.
func ctyValues(sch *provider.Schema, v provider.Values, sensitive func(string) bool) map[string]cty.Value {
	out := make(map[string]cty.Value, len(sch.Attributes))
	for name, a := range sch.Attributes {
		cv := toCty(v[name], a.Type)
		if sensitive(name) {
			cv = cv.Mark(config.Sensitive)
		}
		out[name] = cv
	}
	return out
}
