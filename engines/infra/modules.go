package infra

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cairnhq/cairn/engines/infra/config"
)

// evalNode evaluates a local, a module call or a module's output in the
// module instance mi, for a plan or, again, for an apply.
func (e *evaluator) evalNode(n *node, mi *modInst) error {
	switch {
	case n.local != nil:
		v, d := n.local.Expr.Value(e.context(mi, n.refs, nil, cty.NilVal))
		if d.HasErrors() {
			return diagErr(d)
		}
		e.setLocal(mi.qualify("local."+n.local.Name), v)
	case n.call != nil:
		if d := e.expandCall(n, mi); d.HasErrors() {
			return diagErr(d)
		}
	case n.out != nil:
		v, d := n.out.Expr.Value(e.context(mi, n.refs, nil, cty.NilVal))
		if d.HasErrors() {
			return diagErr(d)
		}
		if err := e.outputPreconditions(n, mi); err != nil {
			return err
		}
		_, marks := v.UnmarkDeep()
		if _, sens := marks[config.Sensitive]; sens && !n.out.Sensitive {
			return diagErr(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Output refers to sensitive values",
				Detail: fmt.Sprintf("Output %q of %s shows a sensitive value; add sensitive = true to the output block to confirm it may be passed on.", n.out.Name, mi.path), Subject: n.out.Range.Ptr()}})
		}
		if n.out.Sensitive {
			v = v.Mark(config.Sensitive)
		}
		e.setOutput(mi, n.out.Name, v)
	}
	return nil
}

// outputPreconditions checks an output's preconditions, with Terraform's
// message.
func (e *evaluator) outputPreconditions(n *node, mi *modInst) error {
	return e.conditions(n.out.Preconditions, e.context(mi, n.refs, nil, cty.NilVal), "Module output value precondition failed")
}

// conditions evaluates conditions; the first that fails is an error
// whose summary is Terraform's (Resource precondition failed, …) and
// whose detail is the condition's error_message.
func (e *evaluator) conditions(cs []*config.Condition, ctx *hcl.EvalContext, summary string) error {
	for _, c := range cs {
		ok, msg, d := config.EvalCondition(c, ctx)
		if d.HasErrors() {
			return diagErr(d)
		}
		if !ok {
			return diagErr(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: summary, Detail: msg, Subject: c.Cond.Range().Ptr()}})
		}
	}
	return nil
}

// checks evaluates the check blocks of every module instance and answers
// a warning for each assertion that fails, as Terraform's "Check block
// assertion failed". An assertion not known yet is not reported.
func (e *evaluator) checks() []string {
	var out []string
	for _, mi := range e.allMods() {
		for _, ch := range mi.cfg.Checks {
			var trs []hcl.Traversal
			for _, a := range ch.Asserts {
				trs = append(trs, a.Cond.Variables()...)
				trs = append(trs, a.Msg.Variables()...)
			}
			refs, d := mi.cfg.Refs(trs)
			where := strings.TrimPrefix(mi.path+".check."+ch.Name, ".")
			if d.HasErrors() {
				out = append(out, fmt.Sprintf("Check block assertion failed: %s: %s", where, config.Format(d)))
				continue
			}
			ctx := e.context(mi, refs, nil, cty.NilVal)
			for _, a := range ch.Asserts {
				ok, msg, d := config.EvalCondition(a, ctx)
				if d.HasErrors() {
					msg, ok = config.Format(d), false
				}
				if !ok {
					out = append(out, fmt.Sprintf("Check block assertion failed: %s (%s): %s", where, a.Range, msg))
				}
			}
		}
	}
	return out
}
