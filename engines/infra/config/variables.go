package config

import (
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Sensitive is the cty mark on values that come from a sensitive variable
// (and on everything computed from them): they are shown and journaled
// only as "(sensitive value)" and a digest.
const Sensitive = "sensitive"

// Inputs are the variable values given for one plan: var-file= files (in
// order) and var.NAME=VALUE options, which win over the files, which win
// over the defaults.
type Inputs struct {
	Files  []string
	Values map[string]string
	// ValueRanges, when set, gives where each var.NAME option was written,
	// for diagnostics.
	ValueRanges map[string]hcl.Range
}

func convertTo(v cty.Value, ty cty.Type) (cty.Value, error) {
	if ty == cty.DynamicPseudoType {
		return v, nil
	}
	return convert.Convert(v, ty)
}

// VariableValues resolves every declared variable's value for in, marking
// sensitive ones.
func (c *Config) VariableValues(in Inputs) (map[string]cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	given := map[string]cty.Value{}
	givenAt := map[string]hcl.Range{}
	p := hclparse.NewParser()
	for _, name := range in.Files {
		src, err := os.ReadFile(name)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read var-file", Detail: err.Error()})
			continue
		}
		if d := CheckNumbers(src, name); d.HasErrors() {
			diags = append(diags, d...)
			continue
		}
		f, d := p.ParseHCL(src, name)
		diags = append(diags, d...)
		if f == nil {
			continue
		}
		attrs, d := f.Body.JustAttributes()
		diags = append(diags, d...)
		for n, a := range attrs {
			if _, ok := c.Variables[n]; !ok {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Value for undeclared variable",
					Detail: fmt.Sprintf("The configuration declares no variable %q; declare it with a variable block, or remove it from %s.", n, name), Subject: a.NameRange.Ptr()})
				continue
			}
			v, d := a.Expr.Value(nil)
			diags = append(diags, d...)
			if !d.HasErrors() {
				given[n], givenAt[n] = v, a.Expr.Range()
			}
		}
	}
	names := slices.Sorted(maps.Keys(in.Values))
	for _, n := range names {
		raw := in.Values[n]
		at := in.ValueRanges[n]
		decl, ok := c.Variables[n]
		if !ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Value for undeclared variable",
				Detail: fmt.Sprintf("var.%s was given but the configuration declares no variable %q.", n, n), Subject: rangePtr(at)})
			continue
		}
		if decl.Type == cty.String || decl.Type == cty.DynamicPseudoType {
			given[n], givenAt[n] = cty.StringVal(raw), at
			continue
		}
		// As terraform -var: a value of another type is an HCL expression.
		if d := CheckNumbers([]byte(raw), "var."+n); d.HasErrors() {
			diags = append(diags, d...)
			continue
		}
		expr, d := hclsyntax.ParseExpression([]byte(raw), "var."+n, hcl.InitialPos)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		v, d := expr.Value(nil)
		diags = append(diags, d...)
		if !d.HasErrors() {
			given[n], givenAt[n] = v, at
		}
	}
	out := make(map[string]cty.Value, len(c.Variables))
	declared := slices.Sorted(maps.Keys(c.Variables))
	for _, n := range declared {
		decl := c.Variables[n]
		v, ok := given[n]
		if !ok {
			if decl.Default == cty.NilVal {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "No value for required variable",
					Detail: fmt.Sprintf("Variable %q has no default; give var.%s=VALUE or a var-file= that sets it.", n, n), Subject: decl.Range.Ptr()})
				continue
			}
			v = decl.Default
		}
		cv, err := convertTo(v, decl.Type)
		if err != nil {
			r := givenAt[n]
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value for variable",
				Detail: fmt.Sprintf("The value given for var.%s is not a %s: %s.", n, decl.Type.FriendlyName(), err), Subject: rangePtr(r)})
			continue
		}
		if decl.Sensitive {
			cv = cv.Mark(Sensitive)
		}
		out[n] = cv
	}
	return out, diags
}

func rangePtr(r hcl.Range) *hcl.Range {
	if r.Filename == "" {
		return nil
	}
	return &r
}
