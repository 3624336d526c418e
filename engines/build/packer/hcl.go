package packer

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/cairnhq/cairn/internal/hclfuncs"
)

var rootSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
	{Type: "packer"}, {Type: "variable", LabelNames: []string{"name"}}, {Type: "variables"},
	{Type: "locals"}, {Type: "local", LabelNames: []string{"name"}},
	{Type: "source", LabelNames: []string{"type", "name"}}, {Type: "build"},
}}

var buildSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "name"}, {Name: "sources"}, {Name: "description"}},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "source", LabelNames: []string{"ref"}},
		{Type: "provisioner", LabelNames: []string{"type"}},
		{Type: "post-processor", LabelNames: []string{"type"}},
		{Type: "post-processors"},
	},
}

// ParseHCL reads an HCL2 template: a *.pkr.hcl file, or a directory of
// them (read together, as Packer does).
func ParseHCL(file string, in Inputs) (*Template, error) {
	files := []string{file}
	if fi, err := os.Stat(file); err == nil && fi.IsDir() {
		m, _ := filepath.Glob(filepath.Join(file, "*.pkr.hcl"))
		if len(m) == 0 {
			return nil, &Error{File: file, Msg: "no *.pkr.hcl file in the directory"}
		}
		files = m
	}
	var bodies []*hclsyntax.Body
	var diags hcl.Diagnostics
	sum := sha256.New()
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		sum.Write(src)
		hf, d := hclsyntax.ParseConfig(src, f, hcl.InitialPos)
		diags = append(diags, d...)
		if hf != nil {
			bodies = append(bodies, hf.Body.(*hclsyntax.Body))
		}
	}
	if diags.HasErrors() {
		return nil, diagError(diags)
	}
	p := &hclParser{in: in, t: &Template{Path: file, Format: "hcl2", Variables: map[string]string{}, Digest: fmt.Sprintf("sha256:%x", sum.Sum(nil))},
		vars: map[string]cty.Value{}, locals: map[string]cty.Value{}, sources: map[string]*hcl.Block{}}
	var contents []*hcl.BodyContent
	for _, b := range bodies {
		c, d := b.Content(rootSchema)
		if d.HasErrors() {
			return nil, diagError(d)
		}
		contents = append(contents, c)
	}
	if err := p.variables(contents); err != nil {
		return nil, err
	}
	if err := p.localValues(contents); err != nil {
		return nil, err
	}
	for _, c := range contents {
		for _, blk := range c.Blocks {
			if blk.Type == "source" {
				ref := "source." + blk.Labels[0] + "." + blk.Labels[1]
				if _, dup := p.sources[ref]; dup {
					return nil, diagError(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "duplicate " + ref, Subject: &blk.DefRange}})
				}
				p.sources[ref] = blk
			}
		}
	}
	for _, c := range contents {
		for _, blk := range c.Blocks {
			if blk.Type == "build" {
				if err := p.build(blk); err != nil {
					return nil, err
				}
			}
		}
	}
	if len(p.t.Builders) == 0 {
		return nil, &Error{File: file, Msg: "no build block uses a source: nothing to build"}
	}
	return p.t, nil
}

type hclParser struct {
	in      Inputs
	t       *Template
	vars    map[string]cty.Value
	locals  map[string]cty.Value
	sources map[string]*hcl.Block
}

func diagError(diags hcl.Diagnostics) error {
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		e := &Error{Msg: d.Summary}
		if d.Detail != "" {
			e.Msg += ": " + d.Detail
		}
		if d.Subject != nil {
			e.File, e.Line, e.Col = d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column
		}
		return e
	}
	return diags
}

func (p *hclParser) ctx() *hcl.EvalContext {
	fns := maps.Clone(hclfuncs.Functions())
	now := p.in.Now
	fns["timestamp"] = function.New(&function.Spec{Type: function.StaticReturnType(cty.String),
		Impl: func([]cty.Value, cty.Type) (cty.Value, error) {
			return cty.StringVal(now.UTC().Format("2006-01-02T15:04:05Z")), nil
		}})
	env := p.in.Env
	fns["env"] = function.New(&function.Spec{Params: []function.Parameter{{Name: "name", Type: cty.String}}, Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.StringVal(env[args[0].AsString()]), nil
		}})
	dir := filepath.Dir(p.t.Path)
	return &hcl.EvalContext{Functions: fns, Variables: map[string]cty.Value{
		"var":   cty.ObjectVal(p.vars),
		"local": cty.ObjectVal(p.locals),
		"path":  cty.ObjectVal(map[string]cty.Value{"root": cty.StringVal(dir), "cwd": cty.StringVal(dir)}),
	}}
}

func (p *hclParser) variables(contents []*hcl.BodyContent) error {
	given := map[string]string{}
	for _, vf := range p.in.VarFiles {
		src, err := os.ReadFile(vf)
		if err != nil {
			return fmt.Errorf("var-file=%s: %w", vf, err)
		}
		f, d := hclsyntax.ParseConfig(src, vf, hcl.InitialPos)
		if d.HasErrors() {
			return diagError(d)
		}
		attrs, d := f.Body.JustAttributes()
		if d.HasErrors() {
			return diagError(d)
		}
		for name, a := range attrs {
			v, d := a.Expr.Value(nil)
			if d.HasErrors() {
				return diagError(d)
			}
			s, err := convert.Convert(v, cty.String)
			if err != nil {
				return &Error{File: vf, Line: a.Range.Start.Line, Col: a.Range.Start.Column, Msg: fmt.Sprintf("%s: %v", name, err)}
			}
			given[name] = s.AsString()
		}
	}
	maps.Copy(given, p.in.Vars)
	declared := map[string]bool{}
	for _, c := range contents {
		for _, blk := range c.Blocks {
			if blk.Type != "variable" {
				continue
			}
			name := blk.Labels[0]
			declared[name] = true
			attrs, d := blk.Body.JustAttributes()
			if d.HasErrors() {
				return diagError(d)
			}
			ty := cty.DynamicPseudoType
			if a, ok := attrs["type"]; ok {
				t, d := typeexpr.TypeConstraint(a.Expr)
				if d.HasErrors() {
					return diagError(d)
				}
				ty = t
			}
			var v cty.Value
			if s, ok := given[name]; ok {
				v = cty.StringVal(s)
			} else if a, ok := attrs["default"]; ok {
				dv, d := a.Expr.Value(p.ctx())
				if d.HasErrors() {
					return diagError(d)
				}
				v = dv
			} else {
				return &Error{File: blk.DefRange.Filename, Line: blk.DefRange.Start.Line, Col: blk.DefRange.Start.Column,
					Msg: fmt.Sprintf("variable %q is required and has no value: give var.%s=VALUE", name, name)}
			}
			if ty != cty.DynamicPseudoType {
				cv, err := convert.Convert(v, ty)
				if err != nil {
					return &Error{File: blk.DefRange.Filename, Line: blk.DefRange.Start.Line, Col: blk.DefRange.Start.Column, Msg: fmt.Sprintf("variable %q: %v", name, err)}
				}
				v = cv
			}
			p.vars[name] = v
			if a, ok := attrs["sensitive"]; ok {
				if sv, d := a.Expr.Value(nil); !d.HasErrors() && sv.Type() == cty.Bool && sv.True() {
					p.t.Sensitive = append(p.t.Sensitive, name)
				}
			}
			if s, err := convert.Convert(v, cty.String); err == nil && !s.IsNull() {
				p.t.Variables[name] = s.AsString()
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(given)) {
		if !declared[name] {
			p.t.Warnings = append(p.t.Warnings, fmt.Sprintf("a value was given for the undeclared variable %q (declare it with a variable block)", name))
		}
	}
	return nil
}

func (p *hclParser) localValues(contents []*hcl.BodyContent) error {
	var pending []*hcl.Attribute
	for _, c := range contents {
		for _, blk := range c.Blocks {
			switch blk.Type {
			case "locals":
				attrs, d := blk.Body.JustAttributes()
				if d.HasErrors() {
					return diagError(d)
				}
				for _, a := range attrs {
					pending = append(pending, a)
				}
			case "local":
				attrs, d := blk.Body.JustAttributes()
				if d.HasErrors() {
					return diagError(d)
				}
				if a, ok := attrs["expression"]; ok {
					pending = append(pending, &hcl.Attribute{Name: blk.Labels[0], Expr: a.Expr, Range: a.Range})
				}
			}
		}
	}
	// Locals may refer to each other: evaluate in rounds until none is
	// left or a round makes no progress.
	for len(pending) > 0 {
		var next []*hcl.Attribute
		var last hcl.Diagnostics
		for _, a := range pending {
			v, d := a.Expr.Value(p.ctx())
			if d.HasErrors() {
				next, last = append(next, a), d
				continue
			}
			p.locals[a.Name] = v
		}
		if len(next) == len(pending) {
			return diagError(last)
		}
		pending = next
	}
	return nil
}

func (p *hclParser) build(blk *hcl.Block) error {
	content, d := blk.Body.Content(buildSchema)
	if d.HasErrors() {
		return diagError(d)
	}
	ctx := p.ctx()
	var refs []string
	if a, ok := content.Attributes["sources"]; ok {
		var l []string
		v, d := a.Expr.Value(ctx)
		if d.HasErrors() {
			// sources = [source.docker.x] names sources as traversals.
			exprs, d2 := hcl.ExprList(a.Expr)
			if d2.HasErrors() {
				return diagError(d)
			}
			for _, e := range exprs {
				tr, d3 := hcl.AbsTraversalForExpr(e)
				if d3.HasErrors() {
					return diagError(d3)
				}
				l = append(l, traversalName(tr))
			}
		} else {
			for it := v.ElementIterator(); it.Next(); {
				_, s := it.Element()
				l = append(l, s.AsString())
			}
		}
		refs = append(refs, l...)
	}
	overrides := map[string]*hcl.Block{}
	for _, sb := range content.Blocks {
		if sb.Type == "source" {
			refs = append(refs, sb.Labels[0])
			overrides[sb.Labels[0]] = sb
		}
	}
	var provs []Provisioner
	var chains [][]PostProcessor
	for _, sb := range content.Blocks {
		switch sb.Type {
		case "provisioner":
			pr, err := p.provisioner(sb, ctx)
			if err != nil {
				return err
			}
			provs = append(provs, pr)
		case "post-processor":
			pp, err := p.postProcessor(sb, ctx)
			if err != nil {
				return err
			}
			chains = append(chains, []PostProcessor{pp})
		case "post-processors":
			c, d := sb.Body.Content(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "post-processor", LabelNames: []string{"type"}}}})
			if d.HasErrors() {
				return diagError(d)
			}
			var chain []PostProcessor
			for _, pb := range c.Blocks {
				pp, err := p.postProcessor(pb, ctx)
				if err != nil {
					return err
				}
				chain = append(chain, pp)
			}
			chains = append(chains, chain)
		}
	}
	for _, ref := range refs {
		src, ok := p.sources[ref]
		if !ok {
			return &Error{File: blk.DefRange.Filename, Line: blk.DefRange.Start.Line, Col: blk.DefRange.Start.Column, Msg: fmt.Sprintf("build uses %s, which no source block declares", ref)}
		}
		typ, name := src.Labels[0], src.Labels[1]
		b := Builder{Name: typ + "." + name, Type: typ, Provisioners: provs, PostProcessors: chains}
		if ov := overrides[ref]; ov != nil {
			attrs, _ := ov.Body.JustAttributes()
			if a, ok := attrs["name"]; ok {
				v, d := a.Expr.Value(ctx)
				if d.HasErrors() {
					return diagError(d)
				}
				b.Name = typ + "." + v.AsString()
			}
		}
		if slices.Contains(Runnable, typ) {
			if err := p.sourceFields(&b, src, ctx); err != nil {
				return err
			}
		}
		p.t.Builders = append(p.t.Builders, b)
	}
	return nil
}

func traversalName(tr hcl.Traversal) string {
	var parts []string
	for _, s := range tr {
		switch s := s.(type) {
		case hcl.TraverseRoot:
			parts = append(parts, s.Name)
		case hcl.TraverseAttr:
			parts = append(parts, s.Name)
		}
	}
	return strings.Join(parts, ".")
}

// attrs evaluates a block's attributes into Go values (strings, bools,
// lists of strings), keeping each one's range for errors.
func evalAttrs(body hcl.Body, ctx *hcl.EvalContext) (map[string]any, map[string]hcl.Range, error) {
	attrs, d := body.JustAttributes()
	if d.HasErrors() {
		return nil, nil, diagError(d)
	}
	out, ranges := map[string]any{}, map[string]hcl.Range{}
	for name, a := range attrs {
		v, d := a.Expr.Value(ctx)
		if d.HasErrors() {
			return nil, nil, diagError(d)
		}
		ranges[name] = a.Range
		switch {
		case v.IsNull():
		case v.Type() == cty.Bool:
			out[name] = v.True()
		case v.Type().IsListType() || v.Type().IsTupleType() || v.Type().IsSetType():
			var l []any
			for it := v.ElementIterator(); it.Next(); {
				_, e := it.Element()
				s, err := convert.Convert(e, cty.String)
				if err != nil {
					return nil, nil, &Error{File: a.Range.Filename, Line: a.Range.Start.Line, Col: a.Range.Start.Column, Msg: name + ": want a list of strings"}
				}
				l = append(l, s.AsString())
			}
			out[name] = l
		default:
			s, err := convert.Convert(v, cty.String)
			if err != nil {
				return nil, nil, &Error{File: a.Range.Filename, Line: a.Range.Start.Line, Col: a.Range.Start.Column, Msg: name + ": " + err.Error()}
			}
			out[name] = s.AsString()
		}
	}
	return out, ranges, nil
}

func placed(r hcl.Range, err error) error {
	return &Error{File: r.Filename, Line: r.Start.Line, Col: r.Start.Column, Msg: err.Error()}
}

func (p *hclParser) sourceFields(b *Builder, blk *hcl.Block, ctx *hcl.EvalContext) error {
	m, _, err := evalAttrs(blk.Body, ctx)
	if err != nil {
		return err
	}
	if err := builderFields(b, m, nil); err != nil {
		return placed(blk.DefRange, fmt.Errorf("source %s: %w", b.Name, err))
	}
	return nil
}

func (p *hclParser) provisioner(blk *hcl.Block, ctx *hcl.EvalContext) (Provisioner, error) {
	m, _, err := evalAttrs(blk.Body, ctx)
	if err != nil {
		return Provisioner{}, err
	}
	m["type"] = blk.Labels[0]
	pr, err := provisioner(m, nil)
	if err != nil {
		return pr, placed(blk.DefRange, err)
	}
	return pr, nil
}

func (p *hclParser) postProcessor(blk *hcl.Block, ctx *hcl.EvalContext) (PostProcessor, error) {
	m, _, err := evalAttrs(blk.Body, ctx)
	if err != nil {
		return PostProcessor{}, err
	}
	m["type"] = blk.Labels[0]
	pp, err := postProcessor(m, nil)
	if err != nil {
		return pp, placed(blk.DefRange, err)
	}
	return pp, nil
}
