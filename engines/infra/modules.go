package infra

import (
	"fmt"

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
