package config

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

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
	// Env holds the caller's TF_VAR_NAME values by NAME: they are
	// weaker than every file.
	Env map[string]string
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
	for _, n := range slices.Sorted(maps.Keys(in.Env)) {
		if _, ok := c.Variables[n]; !ok {
			continue // as Terraform: a TF_VAR_ for no variable is ignored
		}
		v, d := c.cliValue(n, in.Env[n], hcl.Range{Filename: "TF_VAR_" + n})
		diags = append(diags, d...)
		if !d.HasErrors() {
			given[n] = v
		}
	}
	// Terraform's order: terraform.tfvars, terraform.tfvars.json, then
	// *.auto.tfvars and *.auto.tfvars.json by name, then var-file=.
	files := c.autoVarFiles()
	files = append(files, in.Files...)
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read var-file", Detail: err.Error()})
			continue
		}
		var f *hcl.File
		var d hcl.Diagnostics
		if strings.HasSuffix(name, ".json") {
			f, d = p.ParseJSON(src, name)
		} else {
			if d := CheckNumbers(src, name); d.HasErrors() {
				diags = append(diags, d...)
				continue
			}
			f, d = p.ParseHCL(src, name)
		}
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
		if _, ok := c.Variables[n]; !ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Value for undeclared variable",
				Detail: fmt.Sprintf("var.%s was given but the configuration declares no variable %q.", n, n), Subject: rangePtr(at)})
			continue
		}
		v, d := c.cliValue(n, raw, at)
		diags = append(diags, d...)
		if !d.HasErrors() {
			given[n], givenAt[n] = v, at
		}
	}
	out, d := c.ModuleVariables(given, givenAt, "give var.NAME=VALUE or a var-file= that sets it")
	return out, append(diags, d...)
}

// cliValue parses a value given on the command line or in TF_VAR_NAME, as
// terraform does: a string variable takes it as it is, another type as an
// HCL expression.
func (c *Config) cliValue(n, raw string, at hcl.Range) (cty.Value, hcl.Diagnostics) {
	decl := c.Variables[n]
	if decl.Type == cty.String || decl.Type == cty.DynamicPseudoType {
		return cty.StringVal(raw), nil
	}
	if d := CheckNumbers([]byte(raw), "var."+n); d.HasErrors() {
		return cty.NilVal, d
	}
	expr, d := hclsyntax.ParseExpression([]byte(raw), "var."+n, hcl.InitialPos)
	if d.HasErrors() {
		return cty.NilVal, d
	}
	return expr.Value(nil)
}

// autoVarFiles lists the variable files Terraform loads on its own from
// the root module's directory.
func (c *Config) autoVarFiles() []string {
	var out []string
	for _, n := range []string{"terraform.tfvars", "terraform.tfvars.json"} {
		if st, err := os.Stat(filepath.Join(c.Dir, n)); err == nil && st.Mode().IsRegular() {
			out = append(out, filepath.Join(c.Dir, n))
		}
	}
	entries, _ := os.ReadDir(c.Dir)
	var auto []string
	for _, e := range entries {
		if !e.IsDir() && (strings.HasSuffix(e.Name(), ".auto.tfvars") || strings.HasSuffix(e.Name(), ".auto.tfvars.json")) {
			auto = append(auto, filepath.Join(c.Dir, e.Name()))
		}
	}
	sort.Strings(auto)
	return append(out, auto...)
}

// ModuleVariables resolves every declared variable of c from the given
// values (by name, with where each was given), defaults, type conversion
// and validation; sensitive ones are marked. how says how a value is
// given, for the error of a missing one (NAME stands for the name).
func (c *Config) ModuleVariables(given map[string]cty.Value, givenAt map[string]hcl.Range, how string) (map[string]cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	out := make(map[string]cty.Value, len(c.Variables))
	declared := slices.Sorted(maps.Keys(c.Variables))
	for _, n := range declared {
		decl := c.Variables[n]
		v, ok := given[n]
		if !ok {
			if decl.Default == cty.NilVal {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "No value for required variable",
					Detail: fmt.Sprintf("Variable %q has no default; ", n) + strings.ReplaceAll(how, "NAME", n) + ".", Subject: decl.Range.Ptr()})
				continue
			}
			v = decl.Default
		}
		if v.IsNull() && !decl.Nullable {
			// nullable = false: null stands for "not given", as in Terraform.
			if decl.Default == cty.NilVal || decl.Default.IsNull() {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Required variable not set",
					Detail: fmt.Sprintf("Unsupported null value for non-nullable variable %q.", n), Subject: rangePtr(givenAt[n])})
				continue
			}
			v = decl.Default
		}
		// A module's argument may be sensitive: the variable is then too.
		v, marks := v.UnmarkDeep()
		cv, err := convertTo(v, decl.Type)
		if _, ok := marks[Sensitive]; ok && err == nil {
			decl = &Variable{Name: decl.Name, Type: decl.Type, Sensitive: true, Validations: decl.Validations, Range: decl.Range}
		}
		if err != nil {
			r := givenAt[n]
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value for variable",
				Detail: fmt.Sprintf("The value given for var.%s is not a %s: %s.", n, decl.Type.FriendlyName(), err), Subject: rangePtr(r)})
			continue
		}
		diags = append(diags, decl.validate(cv)...)
		if decl.Sensitive {
			cv = cv.Mark(Sensitive)
		}
		out[n] = cv
	}
	return out, diags
}

// validate checks a variable's validation blocks against its value.
func (v *Variable) validate(val cty.Value) hcl.Diagnostics {
	var diags hcl.Diagnostics
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{v.Name: val})}, Functions: Functions()}
	for _, cond := range v.Validations {
		ok, msg, d := EvalCondition(cond, ctx)
		diags = append(diags, d...)
		if !d.HasErrors() && !ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value for variable",
				Detail: msg + "\n\nThis was checked by the validation rule at " + cond.Range.String() + ".", Subject: v.Range.Ptr()})
		}
	}
	return diags
}

// EvalCondition evaluates a condition: ok, or the error message.
// An unknown condition passes (it is checked again once known).
func EvalCondition(cond *Condition, ctx *hcl.EvalContext) (ok bool, msg string, diags hcl.Diagnostics) {
	v, diags := cond.Cond.Value(ctx)
	if diags.HasErrors() {
		return false, "", diags
	}
	v, _ = v.UnmarkDeep()
	if !v.IsWhollyKnown() {
		return true, "", nil
	}
	if v.IsNull() || v.Type() != cty.Bool {
		if cv, err := convert.Convert(v, cty.Bool); err == nil && !cv.IsNull() {
			v = cv
		} else {
			return false, "", hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid condition result",
				Detail: "The condition expression must produce a boolean value, true or false.", Subject: cond.Cond.Range().Ptr()}}
		}
	}
	if v.True() {
		return true, "", nil
	}
	m, d := cond.Msg.Value(ctx)
	if d.HasErrors() {
		return false, "", d
	}
	m, marks := m.UnmarkDeep()
	if len(marks) > 0 {
		return false, "The error message included a sensitive value, so it will not be displayed.", nil
	}
	if !m.IsKnown() || m.IsNull() {
		return false, "(error message unknown)", nil
	}
	if sm, err := convert.Convert(m, cty.String); err == nil {
		return false, sm.AsString(), nil
	}
	return false, "(error message not a string)", nil
}

func rangePtr(r hcl.Range) *hcl.Range {
	if r.Filename == "" {
		return nil
	}
	return &r
}
