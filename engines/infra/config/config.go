// Package config reads an infra configuration: every *.tf and *.hcl file of
// a directory and of the local modules it calls, in Terraform's syntax (hashicorp/hcl/v2), into resources, data
// sources, variables, locals and outputs, with the references between them.
// It knows nothing of providers beyond the schemas it is handed, and
// evaluates nothing but variables: the planner evaluates the rest in
// dependency order.
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
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
)

// Mode says whether a block is a managed resource or a data source.
type Mode int

const (
	Managed Mode = iota
	Data
)

// Config is one directory's configuration.
type Config struct {
	Dir       string
	Files     map[string][]byte // file name -> source, for diagnostics
	Variables map[string]*Variable
	Locals    map[string]*Local
	Resources map[string]*Resource // by address: "net_link.br0", "data.file.motd"
	Outputs   map[string]*Output
	// Path names the module: nil for the root, ["web", "db"] for the
	// module "db" that the module "web" calls.
	Path        []string
	ModuleCalls map[string]*ModuleCall
	Terraform   Terraform
	Providers   []*ProviderBlock
	Moved       []*Moved
	Imports     []*Import
	Removed     []*Removed
	Checks      []*Check
}

// Variable is a `variable "NAME" {}` block.
type Variable struct {
	Name        string
	Description string
	Default     cty.Value // cty.NilVal when there is none
	Type        cty.Type  // cty.DynamicPseudoType when not constrained
	Sensitive   bool
	Nullable    bool // false: a null value stands for the default
	Validations []*Condition
	Range       hcl.Range
}

// Local is one attribute of a `locals {}` block.
type Local struct {
	Name  string
	Expr  hcl.Expression
	Range hcl.Range
}

// Output is an `output "NAME" {}` block.
type Output struct {
	Name          string
	Description   string
	Expr          hcl.Expression
	Sensitive     bool
	DependsOn     []hcl.Traversal
	Preconditions []*Condition
	Range         hcl.Range
}

// Lifecycle is a resource's lifecycle block.
type Lifecycle struct {
	CreateBeforeDestroy bool
	PreventDestroy      bool
	IgnoreChanges       []string // attribute names; "all" ignores every one
	Preconditions       []*Condition
	Postconditions      []*Condition
	// ReplaceTriggeredBy are references to resources (or their
	// attributes): a change of one replaces the resource.
	ReplaceTriggeredBy []hcl.Traversal
}

// Condition is a precondition, a postcondition or a check's assert.
type Condition struct {
	Cond  hcl.Expression
	Msg   hcl.Expression
	Range hcl.Range
}

// Resource is a `resource "TYPE" "NAME"` or `data "TYPE" "NAME"` block.
type Resource struct {
	Mode       Mode
	Type, Name string
	Count      hcl.Expression // nil when not set
	ForEach    hcl.Expression // nil when not set
	DependsOn  []hcl.Traversal
	Lifecycle  Lifecycle
	Body       hcl.Body // the block's body without its meta-arguments
	Range      hcl.Range
	TypeRange  hcl.Range
	Provider   string // the provider meta-argument, as written ("random.alt"); "" when not set
}

// Addr returns the resource's address: TYPE.NAME, or data.TYPE.NAME.
func (r *Resource) Addr() string {
	if r.Mode == Data {
		return "data." + r.Type + "." + r.Name
	}
	return r.Type + "." + r.Name
}

var rootSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "resource", LabelNames: []string{"type", "name"}},
		{Type: "data", LabelNames: []string{"type", "name"}},
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "output", LabelNames: []string{"name"}},
		{Type: "module", LabelNames: []string{"name"}},
		{Type: "terraform"},
		{Type: "provider", LabelNames: []string{"name"}},
		{Type: "moved"},
		{Type: "import"},
		{Type: "removed"},
		{Type: "check", LabelNames: []string{"name"}},
	},
}

var metaSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "count"}, {Name: "for_each"}, {Name: "depends_on"}, {Name: "provider"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "lifecycle"}, {Type: "provisioner", LabelNames: []string{"type"}}, {Type: "connection"}},
}

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "default"}, {Name: "type"}, {Name: "description"}, {Name: "sensitive"}, {Name: "nullable"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "validation"}},
}

var outputSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "value", Required: true}, {Name: "description"}, {Name: "sensitive"}, {Name: "depends_on"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "precondition"}},
}

var lifecycleSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "create_before_destroy"}, {Name: "prevent_destroy"}, {Name: "ignore_changes"}, {Name: "replace_triggered_by"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "precondition"}, {Type: "postcondition"}},
}

var conditionSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "condition", Required: true}, {Name: "error_message", Required: true}},
}

// Load reads every *.tf and *.hcl file of dir (sorted by name) into one
// configuration, with the local modules it calls. The diagnostics carry
// file:line:col.
func Load(dir string) (*Config, hcl.Diagnostics) {
	c, diags := loadDir(dir, nil)
	if c == nil || diags.HasErrors() {
		return c, diags
	}
	diags = append(diags, c.loadModules(&loader{root: dir, files: c.Files})...)
	return c, diags
}

// IsConfigFile reports whether a file name is part of a configuration:
// Terraform's *.tf and *.tf.json, and cairn's *.hcl (not *.tfvars).
func IsConfigFile(name string) bool {
	return strings.HasSuffix(name, ".tf") || strings.HasSuffix(name, ".tf.json") || strings.HasSuffix(name, ".hcl")
}

func loadDir(dir string, path []string) (*Config, hcl.Diagnostics) {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		detail := fmt.Sprintf("%s is not a directory", dir)
		if err != nil {
			detail = err.Error()
		}
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read configuration", Detail: detail + "; give the directory that holds the *.tf or *.hcl files"}}
	}
	// Not filepath.Glob: the directory's own name may hold glob characters.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read configuration", Detail: err.Error()}}
	}
	var names []string
	for _, e := range entries {
		if IsConfigFile(e.Name()) && !e.IsDir() {
			names = append(names, filepath.Join(dir, e.Name()))
		}
	}
	if len(names) == 0 {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "No configuration files",
			Detail: fmt.Sprintf("%s holds no *.tf or *.hcl file; an infra configuration is every *.tf and *.hcl file of a directory", dir)}}
	}
	sort.Strings(names)
	files := make(map[string]string, len(names))
	var diags hcl.Diagnostics
	for _, name := range names {
		src, err := os.ReadFile(name)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read configuration", Detail: err.Error()})
			continue
		}
		files[name] = string(src)
	}
	c, d := Parse(dir, files)
	if c != nil {
		c.Path = path
	}
	return c, append(diags, d...)
}

// Parse reads one configuration from sources given by file name (Load
// reads them from a directory; tests and fuzzing give them directly).
func Parse(dir string, files map[string]string) (*Config, hcl.Diagnostics) {
	p := hclparse.NewParser()
	c := &Config{
		Dir: dir, Files: map[string][]byte{}, Variables: map[string]*Variable{}, Locals: map[string]*Local{},
		Resources: map[string]*Resource{}, Outputs: map[string]*Output{}, ModuleCalls: map[string]*ModuleCall{},
	}
	var diags hcl.Diagnostics
	for _, name := range slices.Sorted(maps.Keys(files)) {
		src := []byte(files[name])
		var f *hcl.File
		var d hcl.Diagnostics
		if strings.HasSuffix(name, ".json") {
			f, d = p.ParseJSON(src, name) // Terraform's JSON syntax (*.tf.json)
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
		c.Files[name] = f.Bytes
		diags = append(diags, c.addFile(f)...)
	}
	return c, diags
}

func (c *Config) addFile(f *hcl.File) hcl.Diagnostics {
	content, diags := f.Body.Content(rootSchema)
	for _, b := range content.Blocks {
		switch b.Type {
		case "resource", "data":
			diags = append(diags, c.addResource(b)...)
		case "variable":
			diags = append(diags, c.addVariable(b)...)
		case "locals":
			attrs, d := b.Body.JustAttributes()
			diags = append(diags, d...)
			names := slices.Sorted(maps.Keys(attrs))
			for _, name := range names {
				a := attrs[name]
				if prev, dup := c.Locals[name]; dup {
					diags = append(diags, duplicate("local value", name, a.NameRange, prev.Range))
					continue
				}
				c.Locals[name] = &Local{Name: name, Expr: a.Expr, Range: a.NameRange}
			}
		case "output":
			diags = append(diags, c.addOutput(b)...)
		case "module":
			diags = append(diags, c.addModuleCall(b)...)
		case "terraform":
			diags = append(diags, c.addTerraform(b)...)
		case "provider":
			diags = append(diags, c.addProvider(b)...)
		case "moved":
			diags = append(diags, c.addMoved(b)...)
		case "import":
			diags = append(diags, c.addImport(b)...)
		case "removed":
			diags = append(diags, c.addRemoved(b)...)
		case "check":
			diags = append(diags, c.addCheck(b)...)
		}
	}
	return diags
}

func duplicate(what, name string, at, prev hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Duplicate " + what,
		Detail:   fmt.Sprintf("%s %q was already declared at %s; names must be unique.", what, name, prev),
		Subject:  at.Ptr(),
	}
}

func (c *Config) addResource(b *hcl.Block) hcl.Diagnostics {
	r := &Resource{Type: b.Labels[0], Name: b.Labels[1], Range: b.DefRange, TypeRange: b.LabelRanges[0]}
	if b.Type == "data" {
		r.Mode = Data
	}
	var diags hcl.Diagnostics
	if !hclsyntaxValidIdent(r.Type) || strings.Contains(r.Type, "-") {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid resource type",
			Detail: "A type must start with a letter or underscore and may contain only letters, digits and underscores.", Subject: b.LabelRanges[0].Ptr()})
		return diags
	}
	if !hclsyntaxValidIdent(r.Name) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid resource name",
			Detail: "A name must start with a letter or underscore and may contain only letters, digits, underscores and dashes.", Subject: b.LabelRanges[1].Ptr()})
	}
	content, remain, d := b.Body.PartialContent(metaSchema)
	diags = append(diags, d...)
	r.Body = remain
	if a, ok := content.Attributes["count"]; ok {
		r.Count = a.Expr
	}
	if a, ok := content.Attributes["for_each"]; ok {
		r.ForEach = a.Expr
	}
	if r.Count != nil && r.ForEach != nil {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid combination of \"count\" and \"for_each\"",
			Detail: "The \"count\" and \"for_each\" meta-arguments are mutually-exclusive; only one may be used.", Subject: content.Attributes["for_each"].NameRange.Ptr()})
	}
	if a, ok := content.Attributes["depends_on"]; ok {
		trs, d := traversalList(a.Expr)
		diags = append(diags, d...)
		r.DependsOn = trs
	}
	if a, ok := content.Attributes["provider"]; ok {
		tr, d := hcl.AbsTraversalForExpr(a.Expr)
		diags = append(diags, d...)
		if !d.HasErrors() {
			r.Provider = TraversalString(tr)
		}
	}
	for _, lb := range content.Blocks {
		if lb.Type != "lifecycle" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unsupported block type",
				Detail: fmt.Sprintf("cairn has no %s blocks: provisioners run commands outside the plan, and cairn applies only what it can diff and journal.", lb.Type), Subject: lb.DefRange.Ptr()})
			continue
		}
		lc, d := lb.Body.Content(lifecycleSchema)
		diags = append(diags, d...)
		if a, ok := lc.Attributes["create_before_destroy"]; ok {
			diags = append(diags, gohcl.DecodeExpression(a.Expr, nil, &r.Lifecycle.CreateBeforeDestroy)...)
		}
		if a, ok := lc.Attributes["prevent_destroy"]; ok {
			diags = append(diags, gohcl.DecodeExpression(a.Expr, nil, &r.Lifecycle.PreventDestroy)...)
		}
		if a, ok := lc.Attributes["ignore_changes"]; ok {
			if kw := hcl.ExprAsKeyword(a.Expr); kw == "all" {
				r.Lifecycle.IgnoreChanges = []string{"all"}
			} else {
				trs, d := traversalList(a.Expr)
				diags = append(diags, d...)
				for _, tr := range trs {
					r.Lifecycle.IgnoreChanges = append(r.Lifecycle.IgnoreChanges, tr.RootName())
				}
			}
		}
		if a, ok := lc.Attributes["replace_triggered_by"]; ok {
			exprs, d := hcl.ExprList(a.Expr)
			diags = append(diags, d...)
			for _, e := range exprs {
				tr, d := hcl.AbsTraversalForExpr(e)
				if d.HasErrors() {
					// resource.x[count.index] is not a static traversal:
					// its variables name what it refers to.
					vs := e.Variables()
					if len(vs) == 0 {
						diags = append(diags, d...)
						continue
					}
					tr = vs[0]
				}
				r.Lifecycle.ReplaceTriggeredBy = append(r.Lifecycle.ReplaceTriggeredBy, tr)
			}
		}
		for _, cb := range lc.Blocks {
			cond, d := condition(cb)
			diags = append(diags, d...)
			if cond == nil {
				continue
			}
			if cb.Type == "precondition" {
				r.Lifecycle.Preconditions = append(r.Lifecycle.Preconditions, cond)
			} else {
				r.Lifecycle.Postconditions = append(r.Lifecycle.Postconditions, cond)
			}
		}
	}
	addr := r.Addr()
	if prev, dup := c.Resources[addr]; dup {
		return append(diags, duplicate("resource", addr, b.DefRange, prev.Range))
	}
	c.Resources[addr] = r
	return diags
}

func hclsyntaxValidIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
		case i > 0 && (r == '-' || r >= '0' && r <= '9'):
		default:
			return false
		}
	}
	return true
}

func traversalList(expr hcl.Expression) ([]hcl.Traversal, hcl.Diagnostics) {
	exprs, diags := hcl.ExprList(expr)
	var out []hcl.Traversal
	for _, e := range exprs {
		tr, d := hcl.AbsTraversalForExpr(e)
		diags = append(diags, d...)
		if !d.HasErrors() {
			out = append(out, tr)
		}
	}
	return out, diags
}

func (c *Config) addVariable(b *hcl.Block) hcl.Diagnostics {
	v := &Variable{Name: b.Labels[0], Range: b.DefRange, Type: cty.DynamicPseudoType, Nullable: true}
	content, diags := b.Body.Content(variableSchema)
	if a, ok := content.Attributes["type"]; ok {
		ty, d := typeexpr.TypeConstraint(a.Expr)
		diags = append(diags, d...)
		if !d.HasErrors() {
			v.Type = ty
		}
	}
	if a, ok := content.Attributes["description"]; ok {
		diags = append(diags, gohcl.DecodeExpression(a.Expr, nil, &v.Description)...)
	}
	if a, ok := content.Attributes["sensitive"]; ok {
		diags = append(diags, gohcl.DecodeExpression(a.Expr, nil, &v.Sensitive)...)
	}
	if a, ok := content.Attributes["nullable"]; ok {
		diags = append(diags, gohcl.DecodeExpression(a.Expr, nil, &v.Nullable)...)
	}
	for _, vb := range content.Blocks {
		cond, d := condition(vb)
		diags = append(diags, d...)
		if cond != nil {
			v.Validations = append(v.Validations, cond)
		}
	}
	if a, ok := content.Attributes["default"]; ok {
		val, d := a.Expr.Value(nil)
		diags = append(diags, d...)
		if !d.HasErrors() {
			cv, err := convertTo(val, v.Type)
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid default value for variable",
					Detail: fmt.Sprintf("This default value is not compatible with the variable's type constraint: %s.", err), Subject: a.Expr.Range().Ptr()})
			} else {
				v.Default = cv
			}
		}
	}
	if prev, dup := c.Variables[v.Name]; dup {
		return append(diags, duplicate("variable", v.Name, b.DefRange, prev.Range))
	}
	c.Variables[v.Name] = v
	return diags
}

func (c *Config) addOutput(b *hcl.Block) hcl.Diagnostics {
	o := &Output{Name: b.Labels[0], Range: b.DefRange}
	content, diags := b.Body.Content(outputSchema)
	if a, ok := content.Attributes["value"]; ok {
		o.Expr = a.Expr
	}
	if a, ok := content.Attributes["description"]; ok {
		diags = append(diags, gohcl.DecodeExpression(a.Expr, nil, &o.Description)...)
	}
	if a, ok := content.Attributes["sensitive"]; ok {
		diags = append(diags, gohcl.DecodeExpression(a.Expr, nil, &o.Sensitive)...)
	}
	if a, ok := content.Attributes["depends_on"]; ok {
		trs, d := traversalList(a.Expr)
		diags = append(diags, d...)
		o.DependsOn = trs
	}
	for _, cb := range content.Blocks {
		cond, d := condition(cb)
		diags = append(diags, d...)
		if cond != nil {
			o.Preconditions = append(o.Preconditions, cond)
		}
	}
	if prev, dup := c.Outputs[o.Name]; dup {
		return append(diags, duplicate("output", o.Name, b.DefRange, prev.Range))
	}
	c.Outputs[o.Name] = o
	return diags
}

// SortedResources returns the resources sorted by address.
func (c *Config) SortedResources() []*Resource {
	out := make([]*Resource, 0, len(c.Resources))
	for _, r := range c.Resources {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr() < out[j].Addr() })
	return out
}

// Format renders diagnostics as "file:line:col: severity: summary; detail",
// one per line, as the DSL answers them.
func Format(diags hcl.Diagnostics) string {
	var b strings.Builder
	for i, d := range diags {
		if i > 0 {
			b.WriteByte('\n')
		}
		if d.Subject != nil {
			fmt.Fprintf(&b, "%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		b.WriteString(sev + ": " + d.Summary)
		if d.Detail != "" {
			b.WriteString("; " + d.Detail)
		}
	}
	return b.String()
}
