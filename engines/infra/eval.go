package infra

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/cairnhq/cairn/engines/infra/config"
	"github.com/cairnhq/cairn/engines/infra/provider"
)

// node is one object of the configuration graph: a local, a resource or
// data source (all its instances), or an output.
type node struct {
	addr  string // local.X, TYPE.NAME, data.TYPE.NAME, output.X
	deps  []string
	res   *config.Resource
	attrs hcl.Attributes // a resource's configured arguments
	sch   *provider.Schema
	local *config.Local
	out   *config.Output
}

// maxCount bounds count and for_each: a typo of 1e9 must not take the
// daemon's memory.
const maxCount = 100000

// instance is one instance of a resource: the resource itself, or one of
// its count or for_each copies.
type instance struct {
	addr string    // net_link.br0, net_link.v[0], file.f["a"]
	key  cty.Value // cty.NilVal, a number (count) or a string (for_each)
	each cty.Value // for_each's each.value
}

// evaluator holds the values known so far while a plan or an apply walks
// the graph. It is safe for concurrent use.
type evaluator struct {
	cfg   *config.Config
	funcs map[string]function.Function
	vars  cty.Value

	mu     sync.Mutex
	locals map[string]cty.Value
	// inst holds each resource instance's value by resource address and
	// instance key ("" for a resource without count or for_each).
	inst  map[string]map[string]cty.Value
	shape map[string]string // resource address -> "single", "count", "for_each"
}

func newEvaluator(cfg *config.Config, vars map[string]cty.Value) *evaluator {
	vv := map[string]cty.Value{}
	for k, v := range vars {
		vv[k] = v
	}
	return &evaluator{
		cfg: cfg, funcs: config.Functions(), vars: cty.ObjectVal(vv),
		locals: map[string]cty.Value{}, inst: map[string]map[string]cty.Value{}, shape: map[string]string{},
	}
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

func (e *evaluator) setInstance(resAddr string, key cty.Value, v cty.Value) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.inst[resAddr]
	if m == nil {
		m = map[string]cty.Value{}
		e.inst[resAddr] = m
	}
	m[instKey(key)] = v
}

func (e *evaluator) setShape(resAddr, shape string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.shape[resAddr] = shape
	if e.inst[resAddr] == nil {
		e.inst[resAddr] = map[string]cty.Value{}
	}
}

func (e *evaluator) setLocal(name string, v cty.Value) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.locals[name] = v
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

// context returns the evaluation context for expressions that refer to
// refs (as config.Refs returns them), for one instance.
func (e *evaluator) context(refs []string, in *instance) *hcl.EvalContext {
	e.mu.Lock()
	defer e.mu.Unlock()
	vars := map[string]cty.Value{
		"var":  e.vars,
		"path": cty.ObjectVal(map[string]cty.Value{"module": cty.StringVal(e.cfg.Dir), "root": cty.StringVal(e.cfg.Dir), "cwd": cty.StringVal(e.cfg.Dir)}),
	}
	locals := map[string]cty.Value{}
	byType := map[string]map[string]cty.Value{}
	data := map[string]map[string]cty.Value{}
	for _, r := range refs {
		switch {
		case strings.HasPrefix(r, "var."):
		case strings.HasPrefix(r, "local."):
			if v, ok := e.locals[r[6:]]; ok {
				locals[r[6:]] = v
			} else {
				locals[r[6:]] = cty.DynamicVal
			}
		case strings.HasPrefix(r, "data."):
			t, n, _ := strings.Cut(r[5:], ".")
			if data[t] == nil {
				data[t] = map[string]cty.Value{}
			}
			data[t][n] = e.resourceValue(r)
		default:
			t, n, _ := strings.Cut(r, ".")
			if byType[t] == nil {
				byType[t] = map[string]cty.Value{}
			}
			byType[t][n] = e.resourceValue(r)
		}
	}
	vars["local"] = cty.ObjectVal(locals)
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
		if a.Computed && !a.Optional && !a.Required {
			continue
		}
		bs.Attributes = append(bs.Attributes, hcl.AttributeSchema{Name: n, Required: a.Required})
	}
	return bs
}

// graph builds the configuration's nodes with their dependencies, in an
// order where every node comes after what it depends on.
func buildGraph(cfg *config.Config) ([]*node, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	nodes := map[string]*node{}
	for name, l := range cfg.Locals {
		refs, d := cfg.Refs(l.Expr.Variables())
		diags = append(diags, d...)
		nodes["local."+name] = &node{addr: "local." + name, deps: refs, local: l}
	}
	for _, r := range cfg.SortedResources() {
		n := &node{addr: r.Addr(), res: r}
		var sch *provider.Schema
		if r.Mode == config.Data {
			if dt := dataType(r.Type); dt != nil {
				sch = dt.Schema()
			} else {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid data source type",
					Detail: fmt.Sprintf("There is no data source type %q; the data source types are %s.", r.Type, strings.Join(dataTypeNames(), ", ")), Subject: r.TypeRange.Ptr()})
				continue
			}
		} else if rt := resourceType(r.Type); rt != nil {
			sch = rt.Schema()
		} else {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid resource type",
				Detail: fmt.Sprintf("There is no resource type %q; the resource types are %s.", r.Type, strings.Join(resourceTypeNames(), ", ")), Subject: r.TypeRange.Ptr()})
			continue
		}
		n.sch = sch
		content, d := r.Body.Content(bodySchema(sch))
		diags = append(diags, d...)
		n.attrs = content.Attributes
		var trs []hcl.Traversal
		for _, a := range content.Attributes {
			trs = append(trs, a.Expr.Variables()...)
		}
		if r.Count != nil {
			trs = append(trs, r.Count.Variables()...)
		}
		if r.ForEach != nil {
			trs = append(trs, r.ForEach.Variables()...)
		}
		trs = append(trs, r.DependsOn...)
		refs, d := cfg.Refs(trs)
		diags = append(diags, d...)
		for _, ref := range refs {
			if ref == n.addr {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Self-referential block",
					Detail: fmt.Sprintf("%s refers to itself; use self only in provisioners, which cairn does not have.", n.addr), Subject: r.Range.Ptr()})
			}
		}
		n.deps = refs
		nodes[n.addr] = n
	}
	for name, o := range cfg.Outputs {
		trs := append(o.Expr.Variables(), o.DependsOn...)
		refs, d := cfg.Refs(trs)
		diags = append(diags, d...)
		nodes["output."+name] = &node{addr: "output." + name, deps: refs, out: o}
	}
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

// topo orders nodes so dependencies come first (ties by address); on a
// cycle it returns the nodes left in it.
func topo(nodes map[string]*node) ([]*node, []string) {
	indeg := map[string]int{}
	users := map[string][]string{}
	for a, n := range nodes {
		for _, d := range n.deps {
			if strings.HasPrefix(d, "var.") {
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

// expand evaluates a resource's count or for_each into its instances.
func (e *evaluator) expand(n *node) ([]instance, hcl.Diagnostics) {
	r := n.res
	ctx := e.context(n.deps, nil)
	switch {
	case r.Count != nil:
		v, diags := r.Count.Value(ctx)
		if diags.HasErrors() {
			return nil, diags
		}
		v, _ = v.Unmark()
		if !v.IsKnown() {
			return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid count argument",
				Detail: "The \"count\" value depends on values that are known only after apply; count must be known at plan time.", Subject: r.Count.Range().Ptr()}}
		}
		var cnt int
		if !v.IsNull() {
			v, _ = convertCty(v, cty.Number) // "2" counts as 2, as in Terraform
		}
		if v == cty.NilVal || v.IsNull() || v.Type() != cty.Number {
			return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid count argument", Detail: "count must be a whole number.", Subject: r.Count.Range().Ptr()}}
		}
		i, acc := v.AsBigFloat().Int64()
		if acc != 0 || i < 0 || i > maxCount {
			return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid count argument",
				Detail: fmt.Sprintf("count must be a whole number from 0 to %d.", maxCount), Subject: r.Count.Range().Ptr()}}
		}
		cnt = int(i)
		e.setShape(n.addr, "count")
		out := make([]instance, cnt)
		for i := range out {
			out[i] = instance{addr: fmt.Sprintf("%s[%d]", n.addr, i), key: cty.NumberIntVal(int64(i))}
		}
		return out, nil
	case r.ForEach != nil:
		v, diags := r.ForEach.Value(ctx)
		if diags.HasErrors() {
			return nil, diags
		}
		bad := func(detail string) hcl.Diagnostics {
			return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid for_each argument", Detail: detail, Subject: r.ForEach.Range().Ptr()}}
		}
		v, marks := v.UnmarkDeep()
		if _, ok := marks[config.Sensitive]; ok {
			return nil, bad("Sensitive values, or values derived from sensitive values, cannot be used as for_each arguments: the keys would name instances in plans, state and events.")
		}
		if !v.IsWhollyKnown() {
			return nil, bad("The \"for_each\" value depends on values that are known only after apply; it must be known at plan time.")
		}
		if v.IsNull() {
			return nil, bad("for_each must be a map, or a set of strings; it is null.")
		}
		ty := v.Type()
		if (ty.IsMapType() || ty.IsObjectType() || ty.IsSetType()) && v.LengthInt() > maxCount {
			n := v.LengthInt()
			return nil, bad(fmt.Sprintf("for_each has %d elements; at most %d.", n, maxCount))
		}
		if ty.IsSetType() {
			for it := v.ElementIterator(); it.Next(); {
				if _, ev := it.Element(); ev.IsNull() {
					return nil, bad("for_each sets must not contain null.")
				}
			}
		}
		e.setShape(n.addr, "for_each")
		var out []instance
		switch {
		case ty.IsMapType() || ty.IsObjectType():
			for it := v.ElementIterator(); it.Next(); {
				k, ev := it.Element()
				out = append(out, instance{addr: fmt.Sprintf("%s[%q]", n.addr, k.AsString()), key: k, each: ev})
			}
		case ty.IsSetType() && ty.ElementType() == cty.String:
			for it := v.ElementIterator(); it.Next(); {
				_, ev := it.Element()
				out = append(out, instance{addr: fmt.Sprintf("%s[%q]", n.addr, ev.AsString()), key: ev, each: ev})
			}
		default:
			return nil, bad(fmt.Sprintf("for_each must be a map, or a set of strings (use toset() on a list), not %s.", ty.FriendlyName()))
		}
		sort.Slice(out, func(i, j int) bool { return out[i].addr < out[j].addr })
		return out, nil
	}
	e.setShape(n.addr, "single")
	return []instance{{addr: n.addr}}, nil
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
	ctx := e.context(n.deps, in)
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
	for name, at := range n.sch.Attributes {
		if _, given := n.attrs[name]; given || at.Default == nil {
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
