package infra

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/engines/infra/config"
	"github.com/cairnhq/cairn/engines/infra/provider"
)

// Action is what a plan does to one instance.
type Action string

const (
	NoOp       Action = "no-op"
	Create     Action = "create"
	Update     Action = "update"
	Delete     Action = "delete"
	Replace    Action = "replace"          // delete, then create (-/+)
	ReplaceCBD Action = "replace-cbd"      // create, then delete (+/-)
	Read       Action = "read"             // a data source read during apply (<=)
	readNow    Action = "read-during-plan" // a data source read while planning
)

// AttrChange is one attribute's change in a plan.
type AttrChange struct {
	Name      string
	Before    any
	After     any
	Unknown   bool // after is known only after apply
	ForceNew  bool
	Sensitive bool
	Changed   bool
}

// Change is one instance's entry of a plan.
type Change struct {
	Addr        string
	Module      string // the module instance: "" (root), module.web["a"]
	Type        string
	Name        string
	Mode        string // managed or data
	Action      Action
	Reason      string
	ID          string // the object's id in state, for update/delete/replace
	Attrs       []AttrChange
	resAddr     string
	node        *node
	inst        instance
	prior       *ResourceState
	actual      provider.Values // as refreshed; nil when missing
	cfg         *configValues
	deps        []string // resource addresses (TYPE.NAME) it depends on
	lc          config.Lifecycle
	newID       string // the id the new object will have, when known at plan time
	reapply     bool   // something it refers to is replaced: read reality again first
	reapplyRoot string // the replaced resource
	forget      bool   // gone outside cairn and not wanted: leaves state
	forgetWhy   string // why it leaves state when not gone (a removed block)
	Importing   bool   // an import block brings it under management with this apply
}

// Move is a state address change Terraform makes on its own: X becomes
// X[0] when count is added, and back when it is removed.
type Move struct {
	From string
	To   string
}

// Outside is an attribute that changed outside cairn since the last apply.
type Outside struct {
	Addr      string
	Attribute string // empty: the object is gone
	Before    any
	After     any
}

// Summary counts a plan's changes as Terraform does.
type Summary struct {
	Import  int
	Add     int
	Change  int
	Destroy int
}

// Plan is a plan: what an apply would do. It is the planner's typed
// answer; planJSON renders it for the wire.
type Plan struct {
	ID        int64 // the seq of its infra.plan event
	Workspace string
	Dir       string
	Destroy   bool
	Summary   Summary
	Changes   []*Change
	Moves     []Move
	Outside   []Outside
	Outputs   map[string]any
	Unknown   []string       // outputs known only after apply
	prior     map[string]any // the outputs of the last apply
	sensOut   map[string]bool
	StateSeq  int64
	Reality   string // digest of what refresh read
	Targets   []string
	Warnings  []string
	order     []*node
	eval      *evaluator
	stateRes  map[string]*ResourceState  // state after the plan's moves
	data      map[string]provider.Values // data source reads, by instance address
	imports   map[string]bool            // instances import blocks bring in
	reads     []dataRead                 // data source reads still needed
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool {
	return p.Summary == Summary{} && len(p.Moves) == 0 && len(p.forgets()) == 0
}

// forgets lists the changes that only take a gone object out of state.
func (p *Plan) forgets() []*Change {
	var out []*Change
	for _, c := range p.Changes {
		if c.forget {
			out = append(out, c)
		}
	}
	return out
}

// diagError is HCL diagnostics as an error, rendered file:line:col.
type diagError struct{ diags hcl.Diagnostics }

func (e *diagError) Error() string { return config.Format(e.diags) }

// diagErr keeps the errors of d as an invalid_argument error.
func diagErr(d hcl.Diagnostics) error {
	var errs hcl.Diagnostics
	for _, x := range d {
		if x.Severity == hcl.DiagError {
			errs = append(errs, x)
		}
	}
	return &wire.Error{Code: wire.InvalidArgument, Message: (&diagError{errs}).Error()}
}

// realityDigest condenses what refresh read, so a saved plan can tell
// whether reality moved.
func realityDigest(state map[string]*ResourceState, actual map[string]provider.Values) string {
	addrs := slices.Sorted(maps.Keys(state))
	h := sha256.New()
	for _, a := range addrs {
		rs := state[a]
		v := actual[a]
		m := map[string]any{}
		for k, x := range v {
			if rs.sensitive(k) {
				x = digest(x)
			}
			m[k] = x
		}
		b, _ := json.Marshal(m)
		fmt.Fprintf(h, "%s\x00%t\x00%s\x00", a, v != nil, b)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// planOptions is what a statement asks of a plan besides configuration,
// variables, state and reality.
type planOptions struct {
	Workspace string
	Dir       string
	StateSeq  int64    // the workspace's seq the state was read at
	Targets   []string // target=: only these (and what they need)
	Replace   []string // replace=: replace these even if unchanged
	Destroy   bool
	// ReadFile reads for file() and templatefile(), with the caller's
	// credentials; nil leaves those functions out.
	ReadFile config.ReadFunc
	// PriorOutputs are the outputs of the last apply, for the JSON plan's
	// output_changes.
	PriorOutputs map[string]any
}

// plan diffs a configuration, evaluated with vars, against state and
// reality. It is pure: it reads no file and calls no provider (refresh
// and data source reads happen before, in makePlan), and changes none of
// its arguments. When a data source instance's arguments are known but
// reality does not hold its read yet, the plan is not whole: its reads
// list what to read before planning again.
func plan(cfg *config.Config, vars map[string]cty.Value, state map[string]*ResourceState, real Reality, opts planOptions) (*Plan, error) {
	order, diags := buildGraph(cfg)
	if diags.HasErrors() {
		return nil, diagErr(diags)
	}
	state, actual := maps.Clone(state), maps.Clone(real.Objects) // moveCount moves entries
	if state == nil {
		state = map[string]*ResourceState{}
	}
	if actual == nil {
		actual = map[string]provider.Values{}
	}
	p := &Plan{
		Workspace: opts.Workspace, Dir: opts.Dir, Destroy: opts.Destroy, StateSeq: opts.StateSeq, Targets: opts.Targets,
		order: order, eval: newEvaluator(cfg, vars), stateRes: state, data: real.Data, imports: real.Imported,
		Outputs: map[string]any{},
	}
	p.eval.workspace = opts.Workspace
	p.prior, p.sensOut = opts.PriorOutputs, map[string]bool{}
	for name, o := range cfg.Outputs {
		p.sensOut[name] = o.Sensitive
	}
	p.eval.funcs = config.FunctionsFor(opts.ReadFile, cfg.Dir)
	p.Reality = realityDigest(state, actual)
	p.Outside = outside(state, actual)

	replace := map[string]bool{}
	for _, r := range opts.Replace {
		replace[r] = true
	}
	inConfig := map[string]bool{}
	if !opts.Destroy {
		if err := p.movedBlocks(p.eval.rootMod(), state, actual); err != nil {
			return nil, err
		}
	}
	for _, n := range order {
		for _, mi := range p.eval.modsOf(n) {
			switch {
			case n.local != nil || n.call != nil || n.out != nil && n.prefix != "":
				if err := p.eval.evalNode(n, mi); err != nil {
					return nil, err
				}
				if n.call != nil && !opts.Destroy {
					for _, child := range p.eval.instancesOf(mi.qualify("module." + n.call.Name)) {
						if err := p.movedBlocks(child, state, actual); err != nil {
							return nil, err
						}
					}
				}
			case n.out != nil:
				v, d := n.out.Expr.Value(p.eval.context(mi, n.refs, nil, cty.NilVal))
				if d.HasErrors() {
					return nil, diagErr(d)
				}
				if err := p.eval.outputPreconditions(n, mi); err != nil {
					return nil, err
				}
				uv, marks := v.UnmarkDeep()
				_, sens := marks[config.Sensitive]
				if sens && !n.out.Sensitive {
					return nil, diagErr(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Output refers to sensitive values",
						Detail: fmt.Sprintf("Output %q shows a sensitive value; add sensitive = true to the output block to confirm it may be stored (redacted).", n.out.Name), Subject: n.out.Range.Ptr()}})
				}
				if !uv.IsWhollyKnown() {
					p.Unknown = append(p.Unknown, n.out.Name)
					continue
				}
				p.Outputs[n.out.Name] = outputValue(uv, n.out.Sensitive)
			case n.res != nil && n.res.Mode == config.Data:
				if err := p.planData(n, mi); err != nil {
					return nil, err
				}
				if len(p.reads) > 0 {
					return p, nil // not whole: read these, then plan again
				}
			case n.res != nil:
				insts, d := p.eval.expand(n, mi)
				if d.HasErrors() {
					return nil, diagErr(d)
				}
				p.moveCount(n, mi.qualify(n.res.Addr()), insts, state, actual)
				triggered := p.triggered(n, mi)
				for _, in := range insts {
					inConfig[in.addr] = true
					c, err := p.planInstance(n, in, state[in.addr], actual[in.addr], replace[in.addr] || replace[in.res] || replace[n.addr] || triggered != "", opts.Destroy)
					if triggered != "" && c.Action == Replace && !replace[in.addr] && !replace[in.res] {
						c.Reason = "replace_triggered_by: " + triggered + " changes"
					}
					if err != nil {
						return nil, err
					}
					p.Changes = append(p.Changes, c)
				}
			}
		}
	}
	if !opts.Destroy {
		p.Warnings = append(p.Warnings, p.eval.checks()...)
	}
	// What state holds and the configuration no longer declares.
	var orphans []string
	for a := range state {
		if !inConfig[a] {
			orphans = append(orphans, a)
		}
	}
	sort.Strings(orphans)
	removed := map[string]*config.Removed{}
	for _, mi := range p.eval.allMods() {
		for _, rm := range mi.cfg.Removed {
			from := mi.qualify(rm.From)
			for a := range inConfig {
				if addrUnder(a, from) {
					return nil, diagErr(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Removed resource block still exists",
						Detail: fmt.Sprintf("This \"removed\" block is for %s, which is still declared in the configuration; remove its block, or this one.", rm.From), Subject: rm.Range.Ptr()}})
				}
			}
			for _, a := range orphans {
				if addrUnder(a, from) {
					removed[a] = rm
				}
			}
		}
	}
	for _, a := range orphans {
		rs := state[a]
		mod, _ := splitAddr(a)
		c := &Change{Addr: a, Module: mod, Type: rs.Type, Name: nameOf(a), Mode: "managed", Action: Delete, Reason: "not in the configuration", ID: rs.ID, prior: rs, actual: actual[a], deps: rs.Deps, resAddr: staticAddr(a)}
		if actual[a] == nil {
			c.Action, c.Reason, c.forget = NoOp, "not in the configuration and already gone", true
		}
		if rm := removed[a]; rm != nil && !rm.Destroy && !opts.Destroy {
			c.Action, c.Reason, c.forget = NoOp, "removed block: no longer managed, not destroyed", true
			c.forgetWhy = "removed from the configuration by a removed block with lifecycle.destroy = false"
		}
		if opts.Destroy {
			c.Reason = ""
		}
		c.Attrs = deleteAttrs(rs, actual[a])
		p.Changes = append(p.Changes, c)
	}
	p.createBeforeDestroy()
	p.reapplyDependents()
	if err := p.applyTargets(opts.Targets); err != nil {
		return nil, err
	}
	for _, c := range p.Changes {
		if (c.Action == Delete || c.Action == Replace || c.Action == ReplaceCBD) && c.lc.PreventDestroy {
			what := "destroy"
			if c.Action != Delete {
				what = "replace"
			}
			return nil, wire.Errorf(wire.FailedPrecondition,
				"%s has lifecycle.prevent_destroy set, but the plan would %s it; remove prevent_destroy from its lifecycle block if this is intended, or change the configuration so it is kept", c.Addr, what)
		}
		if c.Importing {
			p.Summary.Import++
		}
		switch c.Action {
		case Create:
			p.Summary.Add++
		case Update:
			p.Summary.Change++
		case Delete:
			p.Summary.Destroy++
		case Replace, ReplaceCBD:
			p.Summary.Add++
			p.Summary.Destroy++
		}
	}
	sort.SliceStable(p.Changes, func(i, j int) bool { return p.Changes[i].Addr < p.Changes[j].Addr })
	return p, nil
}

func outputValue(v cty.Value, sensitive bool) any {
	if sensitive {
		return "(sensitive value)"
	}
	b, err := ctyJSON(v)
	if err != nil {
		return v.GoString()
	}
	var x any
	_ = json.Unmarshal(b, &x)
	return x
}

// moveCount moves state as Terraform does when count is added to a
// resource (X becomes X[0]) or removed (X[0] becomes X), so the object is
// kept rather than destroyed and made again.
func (p *Plan) moveCount(n *node, res string, insts []instance, state map[string]*ResourceState, actual map[string]provider.Values) {
	move := func(from, to string) { p.move(from, to, state, actual) }
	zero := res + "[0]"
	_, haveBare := state[res]
	_, haveZero := state[zero]
	switch {
	case n.res.Count != nil && len(insts) > 0 && insts[0].addr == zero && haveBare && !haveZero:
		move(res, zero)
	case n.res.Count == nil && n.res.ForEach == nil && haveZero && !haveBare:
		move(zero, res)
	}
}

// move moves one object of state from one address to another.
func (p *Plan) move(from, to string, state map[string]*ResourceState, actual map[string]provider.Values) {
	rs := *state[from]
	rs.Addr = to
	state[to] = &rs
	delete(state, from)
	if v, ok := actual[from]; ok {
		actual[to] = v
		delete(actual, from)
	}
	p.Moves = append(p.Moves, Move{From: from, To: to})
}

// movedBlocks carries out the moved blocks of a module instance (the
// root, or one a module call just made): every object of state at or
// under from goes to the same place under to. A move whose destination
// is taken already is not made, with a warning, as Terraform does.
func (p *Plan) movedBlocks(mi *modInst, state map[string]*ResourceState, actual map[string]provider.Values) error {
	for _, mv := range mi.cfg.Moved {
		from, to := mi.qualify(mv.From), mi.qualify(mv.To)
		fromMod, toMod := isModulePath(from), isModulePath(to)
		if fromMod != toMod {
			return diagErr(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid \"moved\" addresses",
				Detail: fmt.Sprintf("Cannot move %s to %s: a module moves only to a module, a resource only to a resource.", mv.From, mv.To), Subject: mv.Range.Ptr()}})
		}
		if !fromMod {
			_, fr := splitAddr(from)
			_, tr := splitAddr(to)
			if typeOf(fr) != typeOf(tr) {
				return diagErr(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Resource type mismatch",
					Detail: fmt.Sprintf("This statement declares a move from %s to %s, which is a resource of a different type.", mv.From, mv.To), Subject: mv.Range.Ptr()}})
			}
		}
		for _, a := range slices.Sorted(maps.Keys(state)) {
			if !addrUnder(a, from) {
				continue
			}
			dest := to + a[len(from):]
			if _, taken := state[dest]; taken {
				p.Warnings = append(p.Warnings, fmt.Sprintf("Unresolved resource instance address changes: %s could not move to %s, which is in state already (moved block at %s)", a, dest, mv.Range))
				continue
			}
			p.move(a, dest, state, actual)
		}
	}
	return nil
}

// typeOf answers TYPE of [data.]TYPE.NAME[KEY].
func typeOf(res string) string {
	parts := addrParts(staticAddr(res))
	if len(parts) > 1 && parts[0] == "data" {
		return "data." + parts[1]
	}
	return parts[0]
}

// createBeforeDestroy passes create_before_destroy on to what a +/-
// replacement depends on, as Terraform does: otherwise the dependency's
// -/+ (delete first) and the dependent's +/- (create first) wait on each
// other. A dependency whose id does not change cannot be created first:
// the dependent is then replaced delete-first too.
func (p *Plan) createBeforeDestroy() {
	byRes := map[string][]*Change{}
	gone := map[string]*Change{} // old id -> the change that deletes it
	for _, c := range p.Changes {
		byRes[c.resAddr] = append(byRes[c.resAddr], c)
		if c.prior != nil && (c.Action == Delete || c.Action == Replace || c.Action == ReplaceCBD) {
			gone[c.prior.ID] = c
		}
	}
	// A change falls back to delete-first for good (the set only grows, so
	// this ends): when its new object would take an id another change
	// still has to delete, or a dependency must be replaced delete-first.
	downgraded := map[*Change]bool{}
	downgrade := func(c *Change, why string) {
		c.Action, downgraded[c] = Replace, true
		c.Reason = strings.TrimPrefix(c.Reason+"; ", "; ") + "create_before_destroy cannot apply: " + why
	}
	for _, c := range p.Changes {
		if o, ok := gone[c.newID]; ok && o != c && c.Action == ReplaceCBD {
			downgrade(c, "its new id "+c.newID+" is "+o.Addr+"'s until that is deleted")
		}
	}
	for changed := true; changed; {
		changed = false
		for _, c := range p.Changes {
			if c.Action != ReplaceCBD {
				continue
			}
			for _, d := range c.deps {
				for _, x := range byRes[d] {
					if x.Action != Replace || c.Action != ReplaceCBD {
						continue
					}
					if !downgraded[x] && x.newID != "" && x.newID != x.ID {
						x.Action = ReplaceCBD
					} else {
						downgrade(c, x.Addr+" is replaced delete-first")
					}
					changed = true
				}
			}
		}
	}
}

// reapplyDependents updates in place what refers to a replaced object
// and would otherwise be left alone: the kernel takes a bridge's ports
// off it when the bridge is deleted, so a veth whose master is the
// replaced bridge must be enslaved again, or cairn's own apply would
// leave drift behind.
func (p *Plan) reapplyDependents() {
	replaced := map[string]string{} // resource -> the replaced resource it goes back to
	for _, c := range p.Changes {
		if c.Action == Replace || c.Action == ReplaceCBD {
			replaced[c.resAddr] = c.resAddr
		}
	}
	if len(replaced) == 0 {
		return
	}
	// Through what is re-applied too: a route via an address of the
	// replaced bridge went with it.
	for more := true; more; {
		more = false
		for _, c := range p.Changes {
			if c.reapply || c.Action != NoOp && c.Action != Update || c.node == nil || c.prior == nil || c.actual == nil {
				continue
			}
			for _, d := range c.deps {
				if root, ok := replaced[d]; ok {
					c.Action, c.Reason, c.reapply, c.reapplyRoot = Update, root+" is replaced", true, root
					if _, seen := replaced[c.resAddr]; !seen {
						replaced[c.resAddr], more = root, true
					}
					break
				}
			}
		}
	}
}

// triggered names what of a resource's replace_triggered_by changes in
// this plan (in the same module instance), or "".
func (p *Plan) triggered(n *node, mi *modInst) string {
	for _, tr := range n.res.Lifecycle.ReplaceTriggeredBy {
		ref, ok, _ := config.Ref(tr)
		if !ok {
			continue
		}
		res := mi.qualify(ref)
		for _, c := range p.Changes {
			if c.Action != NoOp && c.Action != Read && c.Action != Delete && (c.Addr == res || strings.HasPrefix(c.Addr, res+"[")) {
				return c.Addr
			}
		}
	}
	return ""
}

// nameOf returns NAME of [module.M.]TYPE.NAME[key].
func nameOf(addr string) string {
	_, r := splitAddr(addr)
	r = staticAddr(r)
	if i := strings.LastIndexByte(r, '.'); i >= 0 {
		return r[i+1:]
	}
	return r
}

func outside(state map[string]*ResourceState, actual map[string]provider.Values) []Outside {
	var out []Outside
	for a, rs := range state {
		v, ok := actual[a]
		if !ok {
			out = append(out, Outside{Addr: a})
			continue
		}
		for _, attr := range rs.Config {
			want := rs.Attrs[attr]
			got := v[attr]
			if rs.sensitive(attr) {
				if digest(got) != want {
					out = append(out, Outside{Addr: a, Attribute: attr, Before: "(sensitive value)", After: "(sensitive value)"})
				}
				continue
			}
			if !equal(want, got) {
				out = append(out, Outside{Addr: a, Attribute: attr, Before: want, After: got})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Addr != out[j].Addr {
			return out[i].Addr < out[j].Addr
		}
		return out[i].Attribute < out[j].Attribute
	})
	return out
}

func deleteAttrs(rs *ResourceState, actual provider.Values) []AttrChange {
	var out []AttrChange
	names := slices.Sorted(maps.Keys(rs.Attrs))
	for _, n := range names {
		before := rs.Attrs[n]
		if actual != nil && !rs.sensitive(n) {
			before = actual[n]
		}
		if before == nil {
			continue
		}
		out = append(out, AttrChange{Name: n, Before: before, Changed: true, Sensitive: rs.sensitive(n)})
	}
	return out
}

// planData evaluates a data source's instances from what reality read
// for them; an instance reality has not read yet goes to p.reads.
func (p *Plan) planData(n *node, mi *modInst) error {
	insts, d := p.eval.expand(n, mi)
	if d.HasErrors() {
		return diagErr(d)
	}
	for _, in := range insts {
		cv, d := p.eval.instanceConfig(n, &in)
		if d.HasErrors() {
			return diagErr(d)
		}
		if len(cv.unknown) > 0 || p.pendingDeps(n) {
			// Read during apply, once its arguments are known and what it
			// depends on is made (as Terraform defers such reads).
			vals := map[string]cty.Value{}
			for name, a := range n.sch.Attributes {
				if v, ok := cv.cty[name]; ok && !a.Computed {
					vals[name] = v
				} else {
					vals[name] = cty.UnknownVal(ctyType(a.Type))
				}
			}
			p.eval.setInstance(&in, objectValue(n.sch, vals, cty.UnknownVal(cty.String)))
			p.Changes = append(p.Changes, &Change{Addr: in.addr, Module: mi.path, Type: n.res.Type, Name: n.res.Name, Mode: "data", Action: Read,
				Reason: "its arguments are known only after apply", node: n, inst: in, cfg: cv, deps: p.transitiveDeps(n), resAddr: n.addr})
			continue
		}
		got, ok := p.data[in.addr]
		if !ok {
			p.reads = append(p.reads, dataRead{addr: in.addr, typ: n.res.Type, args: cv.vals})
			continue
		}
		p.eval.setInstance(&in, dataValue(n, cv, got))
	}
	return nil
}

// dataRead is a data source instance to read before the plan is whole.
type dataRead struct {
	addr, typ string
	args      provider.Values
}

// dataValue is a data source instance's value as expressions see it: what
// the provider read, with the arguments it did not answer.
func dataValue(n *node, cv *configValues, got provider.Values) cty.Value {
	got = got.Clone()
	for k, v := range cv.vals {
		if _, ok := got[k]; !ok {
			got[k] = v
		}
	}
	private := privateAttrs(n.res.Type, got)
	vals := ctyValues(n.sch, got, func(a string) bool { return cv.sensitive[a] || n.sch.Attributes[a].Sensitive || private[a] })
	return objectValue(n.sch, vals, cty.StringVal(n.res.Type))
}

// pendingDeps reports whether a managed resource n depends on (through
// locals too) has a change in this plan.
func (p *Plan) pendingDeps(n *node) bool {
	if p.Destroy {
		return false // nothing is made; read what is there
	}
	deps := map[string]bool{}
	for _, d := range p.transitiveDeps(n) {
		deps[d] = true
	}
	for _, c := range p.Changes {
		if deps[c.resAddr] && c.Action != NoOp && c.Action != Delete {
			return true
		}
	}
	return false
}

// transitiveDeps returns n's resource and data source dependencies,
// through locals, module calls and module outputs.
func (p *Plan) transitiveDeps(n *node) []string {
	byAddr := map[string]*node{}
	for _, x := range p.order {
		byAddr[x.addr] = x
	}
	seen := map[string]bool{}
	var out []string
	var walk func(deps []string)
	walk = func(deps []string) {
		for _, d := range deps {
			if seen[d] {
				continue
			}
			seen[d] = true
			x := byAddr[d]
			switch {
			case x == nil:
			case x.res != nil:
				out = append(out, d)
			default:
				walk(x.deps)
			}
		}
	}
	walk(n.deps)
	sort.Strings(out)
	return out
}

func (p *Plan) planInstance(n *node, in instance, prior *ResourceState, actual provider.Values, forceReplace, destroy bool) (*Change, error) {
	rt := resourceType(n.res.Type)
	cv, d := p.eval.instanceConfig(n, &in)
	if d.HasErrors() {
		return nil, diagErr(d)
	}
	c := &Change{Addr: in.addr, Module: in.mod.path, Type: n.res.Type, Name: n.res.Name, Mode: "managed", node: n, inst: in, cfg: cv, prior: prior, actual: actual, Importing: p.imports[in.addr] && !destroy,
		deps: p.transitiveDeps(n), lc: n.res.Lifecycle, resAddr: n.addr}
	known := map[string]bool{}
	for k := range cv.set {
		known[k] = true
	}
	if err := rt.Validate(cv.vals, known); err != nil {
		return nil, diagErr(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid " + n.res.Type, Detail: err.Error(), Subject: n.res.Range.Ptr()}})
	}
	if !destroy && len(n.res.Lifecycle.Preconditions) > 0 {
		if err := p.eval.conditions(n.res.Lifecycle.Preconditions, p.eval.context(in.mod, n.refs, &in, cty.NilVal), "Resource precondition failed"); err != nil {
			return nil, err
		}
	}
	id := cty.UnknownVal(cty.String)
	newID := ""
	if len(cv.unknown) == 0 {
		s, err := rt.ID(cv.vals)
		if err != nil {
			return nil, diagErr(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid " + n.res.Type, Detail: err.Error(), Subject: n.res.Range.Ptr()}})
		}
		newID = s
	}
	if prior != nil {
		c.ID = prior.ID
	}
	ignored := func(attr string) bool {
		return slices.Contains(c.lc.IgnoreChanges, "all") || slices.Contains(c.lc.IgnoreChanges, attr)
	}
	sensitive := func(attr string) bool { return cv.sensitive[attr] || n.sch.Attributes[attr].Sensitive }
	// The plan shows the caller what a private object holds (they read it
	// as themselves), but the evaluator marks it, so an output of it
	// needs sensitive = true and is journaled redacted.
	private := privateAttrs(n.res.Type, actual)
	marked := func(attr string) bool { return sensitive(attr) || private[attr] }
	vals := map[string]cty.Value{}

	switch {
	case destroy:
		if prior == nil {
			c.Action = NoOp
		} else if actual == nil {
			c.Action, c.forget = NoOp, true
		} else {
			c.Action = Delete
			c.Attrs = deleteAttrs(prior, actual)
		}
		// Values stay as they are, for outputs and references.
		if actual != nil {
			vals = ctyValues(n.sch, actual, marked)
			id = cty.StringVal(prior.ID)
		} else {
			for name, a := range n.sch.Attributes {
				vals[name] = cty.UnknownVal(ctyType(a.Type))
			}
		}
		p.eval.setInstance(&in, objectValue(n.sch, vals, id))
		return c, nil
	case prior == nil || actual == nil:
		c.Action = Create
		if prior != nil {
			c.Reason = "it was deleted outside cairn"
		}
	default:
		c.Action = NoOp
		if newID != "" && newID != prior.ID {
			c.Action = Replace
			c.Reason = fmt.Sprintf("its id changes from %s to %s", prior.ID, newID)
		}
	}
	for _, name := range n.sch.Names() {
		a := n.sch.Attributes[name]
		ac := AttrChange{Name: name, Sensitive: sensitive(name)}
		if c.Action != Create {
			ac.Before = actual[name]
		}
		switch {
		case cv.unknown[name]:
			ac.Unknown, ac.Changed = true, true
			vals[name] = cv.cty[name]
		case cv.set[name]:
			ac.After = cv.vals[name]
			vals[name] = toCty(cv.vals[name], a.Type)
			if c.Action != Create {
				ac.Changed = !equal(ac.Before, ac.After)
			} else {
				ac.Changed = true
			}
		case a.Computed:
			if c.Action == Create {
				ac.Unknown, ac.Changed = true, true
				vals[name] = cty.UnknownVal(ctyType(a.Type))
			} else {
				ac.After = ac.Before
				vals[name] = toCty(ac.Before, a.Type)
			}
		default: // not set, not computed: null
			vals[name] = cty.NullVal(ctyType(a.Type))
			if c.Action != Create {
				ac.Changed = ac.Before != nil
			}
		}
		if marked(name) && vals[name] != cty.NilVal {
			vals[name] = vals[name].Mark(config.Sensitive)
		}
		if c.Action != Create && ac.Changed && ignored(name) {
			ac.Changed, ac.After, ac.Unknown = false, ac.Before, false
			vals[name] = toCty(ac.Before, a.Type)
		}
		if ac.Changed && a.ForceNew && c.Action != Create {
			ac.ForceNew = true
		}
		if ac.Before == nil && ac.After == nil && !ac.Unknown {
			continue
		}
		c.Attrs = append(c.Attrs, ac)
	}
	if c.Action == NoOp || c.Action == Replace {
		for _, ac := range c.Attrs {
			if !ac.Changed {
				continue
			}
			if ac.ForceNew {
				c.Action = Replace
			} else if c.Action == NoOp {
				c.Action = Update
			}
		}
	}
	if forceReplace && prior != nil && actual != nil {
		c.Action, c.Reason = Replace, "replacement was requested (replace=)"
	}
	c.newID = newID
	if c.Action == Replace && c.lc.CreateBeforeDestroy {
		if newID != "" && prior != nil && newID == prior.ID {
			// The new object would be the old one: creating it first would
			// overwrite it and the deposed delete would then remove it.
			c.Reason = strings.TrimPrefix(c.Reason+"; ", "; ") + "create_before_destroy cannot apply: the new object has the same id, " + newID
		} else {
			c.Action = ReplaceCBD
		}
	}
	if c.Action == Update {
		// What only the provider computes may change with the update.
		for i, ac := range c.Attrs {
			if a := n.sch.Attributes[ac.Name]; a.UpdateComputes {
				c.Attrs[i].Unknown, c.Attrs[i].Changed = true, true
				vals[ac.Name] = cty.UnknownVal(ctyType(a.Type))
			}
		}
	}
	switch c.Action {
	case NoOp, Update:
		id = cty.StringVal(prior.ID)
	default:
		if newID != "" {
			id = cty.StringVal(newID)
		}
		if c.Action != Create {
			// Computed values of a replaced object are new.
			for name, a := range n.sch.Attributes {
				if a.Computed && !cv.set[name] {
					vals[name] = cty.UnknownVal(ctyType(a.Type))
				}
			}
		}
	}
	self := objectValue(n.sch, vals, id)
	p.eval.setInstance(&in, self)
	// What is known now is checked now; the rest after apply.
	if len(n.res.Lifecycle.Postconditions) > 0 {
		if err := p.eval.conditions(n.res.Lifecycle.Postconditions, p.eval.context(in.mod, n.refs, &in, self), "Resource postcondition failed"); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// applyTargets keeps only the changes of the targeted instances and what
// they depend on (as terraform -target does).
func (p *Plan) applyTargets(targets []string) error {
	if len(targets) == 0 {
		return nil
	}
	keep := map[string]bool{}
	byRes := map[string][]*Change{}
	for _, c := range p.Changes {
		byRes[c.resAddr] = append(byRes[c.resAddr], c)
	}
	var visit func(c *Change)
	visit = func(c *Change) {
		if keep[c.Addr] {
			return
		}
		keep[c.Addr] = true
		for _, d := range c.deps {
			for _, x := range byRes[d] {
				visit(x)
			}
		}
	}
	if p.Destroy {
		// Destroying a target destroys what depends on it, not what it
		// depends on.
		visit = func(c *Change) {
			if keep[c.Addr] {
				return
			}
			keep[c.Addr] = true
			for _, x := range p.Changes {
				if contains(x.deps, c.resAddr) || x.prior != nil && contains(x.prior.Deps, c.resAddr) {
					visit(x)
				}
			}
		}
	}
	for _, t := range targets {
		found := false
		for _, c := range p.Changes {
			if addrUnder(c.Addr, t) || c.resAddr == t {
				visit(c)
				found = true
			}
		}
		if !found {
			return wire.Errorf(wire.InvalidArgument, "target=%s matches no resource of the configuration or state", t)
		}
	}
	for _, c := range p.Changes {
		if !keep[c.Addr] && c.Action != NoOp {
			c.Action, c.Reason = NoOp, "not targeted"
		}
	}
	p.Warnings = append(p.Warnings, "Resource targeting is in effect: this plan may not include every change the configuration asks for.")
	return nil
}
