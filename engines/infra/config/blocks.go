package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/zclconf/go-cty/cty"
)

// ModuleCall is a `module "NAME" {}` block: a local module called with
// input variables, perhaps many times (count, for_each).
type ModuleCall struct {
	Name      string
	Source    string
	Count     hcl.Expression // nil when not set
	ForEach   hcl.Expression // nil when not set
	DependsOn []hcl.Traversal
	Args      hcl.Attributes // the input variables given
	Child     *Config        // the called module, once loaded
	Range     hcl.Range
}

// Terraform is what `terraform {}` blocks declare.
type Terraform struct {
	RequiredVersion []VersionConstraint
	// RequiredProviders by local name ("random").
	RequiredProviders map[string]*RequiredProvider
}

// VersionConstraint is a required_version, with where it was written.
type VersionConstraint struct {
	Constraint string
	Range      hcl.Range
}

// RequiredProvider is one entry of required_providers.
type RequiredProvider struct {
	Name    string // the local name
	Source  string // "hashicorp/random"; the local name under hashicorp/ when left out
	Version string
	Range   hcl.Range
}

// ProviderBlock is a `provider "NAME" {}` block. cairn's providers take
// no configuration: the block is accepted (with alias) and its arguments
// are not evaluated.
type ProviderBlock struct {
	Name  string
	Alias string
	Range hcl.Range
}

// Moved is a `moved {}` block: state at From is now at To.
type Moved struct {
	From, To string
	Range    hcl.Range
}

// Import is an `import {}` block: the object ID is put under management
// at To when the plan is applied.
type Import struct {
	To    string
	ID    hcl.Expression
	Range hcl.Range
}

// Removed is a `removed {}` block: From leaves the configuration, and
// leaves state without being destroyed unless lifecycle.destroy is true.
type Removed struct {
	From    string
	Destroy bool
	Range   hcl.Range
}

// Check is a `check "NAME" {}` block: asserts that warn when false.
type Check struct {
	Name    string
	Asserts []*Condition
	Range   hcl.Range
}

var moduleSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "source", Required: true}, {Name: "version"}, {Name: "count"}, {Name: "for_each"},
		{Name: "depends_on"}, {Name: "providers"},
	},
}

func (c *Config) addModuleCall(b *hcl.Block) hcl.Diagnostics {
	mc := &ModuleCall{Name: b.Labels[0], Range: b.DefRange}
	var diags hcl.Diagnostics
	if !hclsyntaxValidIdent(mc.Name) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid module instance name",
			Detail: "A name must start with a letter or underscore and may contain only letters, digits, underscores and dashes.", Subject: b.LabelRanges[0].Ptr()})
	}
	content, remain, d := b.Body.PartialContent(moduleSchema)
	diags = append(diags, d...)
	if a, ok := content.Attributes["source"]; ok {
		diags = append(diags, gohcl.DecodeExpression(a.Expr, nil, &mc.Source)...)
	}
	if a, ok := content.Attributes["version"]; ok && isLocalSource(mc.Source) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid registry module source address",
			Detail: "Cannot use a version constraint with a local module source; remove version.", Subject: a.NameRange.Ptr()})
	}
	if a, ok := content.Attributes["count"]; ok {
		mc.Count = a.Expr
	}
	if a, ok := content.Attributes["for_each"]; ok {
		mc.ForEach = a.Expr
	}
	if mc.Count != nil && mc.ForEach != nil {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid combination of \"count\" and \"for_each\"",
			Detail: "The \"count\" and \"for_each\" meta-arguments are mutually-exclusive; only one may be used.", Subject: content.Attributes["for_each"].NameRange.Ptr()})
	}
	if a, ok := content.Attributes["depends_on"]; ok {
		trs, d := traversalList(a.Expr)
		diags = append(diags, d...)
		mc.DependsOn = trs
	}
	if a, ok := content.Attributes["providers"]; ok {
		// providers = { random = random.alt }: cairn's providers take no
		// configuration, so every alias is the one provider; the map is
		// checked for shape only.
		pairs, d := hcl.ExprMap(a.Expr)
		diags = append(diags, d...)
		for _, kv := range pairs {
			_, d := hcl.AbsTraversalForExpr(kv.Value)
			diags = append(diags, d...)
		}
	}
	args, d := remain.JustAttributes()
	diags = append(diags, d...)
	mc.Args = args
	if prev, dup := c.ModuleCalls[mc.Name]; dup {
		return append(diags, duplicate("module call", mc.Name, b.DefRange, prev.Range))
	}
	c.ModuleCalls[mc.Name] = mc
	return diags
}

// isLocalSource reports whether a module source is a local path, which
// Terraform spells with a leading ./ or ../.
func isLocalSource(s string) bool {
	return strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") || s == "." || s == ".."
}

// maxModuleDepth bounds module nesting: a module that calls itself must
// end in an error, not in the daemon's memory.
const maxModuleDepth = 16

// loader loads the modules of one configuration tree.
type loader struct {
	root     string
	files    map[string][]byte // every file read, for diagnostics
	manifest map[string]string // .terraform/modules/modules.json: key -> dir
	read     bool
}

// installed returns the directory terraform init downloaded the module
// with the given key ("web", "web.db") into, if it did.
func (l *loader) installed(key string) (string, bool) {
	if !l.read {
		l.read = true
		b, err := os.ReadFile(filepath.Join(l.root, ".terraform", "modules", "modules.json"))
		if err == nil {
			var m struct {
				Modules []struct{ Key, Source, Dir string }
			}
			if json.Unmarshal(b, &m) == nil {
				l.manifest = map[string]string{}
				for _, x := range m.Modules {
					l.manifest[x.Key] = x.Dir
				}
			}
		}
	}
	d, ok := l.manifest[key]
	if !ok || d == "" {
		return "", false
	}
	if !filepath.IsAbs(d) {
		d = filepath.Join(l.root, d)
	}
	return d, true
}

// loadModules loads the child configuration of every module call of c,
// recursively.
func (c *Config) loadModules(l *loader) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, name := range slices.Sorted(maps.Keys(c.ModuleCalls)) {
		mc := c.ModuleCalls[name]
		path := append(slices.Clone(c.Path), name)
		if len(path) > maxModuleDepth {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Module nesting too deep",
				Detail: fmt.Sprintf("Modules are nested more than %d deep (module.%s); does a module call itself?", maxModuleDepth, strings.Join(path, ".module.")), Subject: mc.Range.Ptr()})
			continue
		}
		var dir string
		switch {
		case isLocalSource(mc.Source):
			dir = filepath.Join(c.Dir, mc.Source)
		default:
			d, ok := l.installed(strings.Join(path, "."))
			if !ok {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Module not installed",
					Detail:  fmt.Sprintf("Module source %q is not a local path (./ or ../): cairn fetches nothing from the network, so registry, git and http sources are refused. Use a local path, or a .terraform/modules directory terraform init filled (with its modules.json).", mc.Source),
					Subject: mc.Range.Ptr()})
				continue
			}
			dir = d
		}
		child, d := loadDir(dir, path)
		for _, x := range d {
			if x.Subject == nil {
				x.Detail = fmt.Sprintf("module.%s (source %q): %s", strings.Join(path, ".module."), mc.Source, x.Detail)
				x.Subject = mc.Range.Ptr()
			}
		}
		diags = append(diags, d...)
		if child == nil {
			continue
		}
		maps.Copy(l.files, child.Files)
		mc.Child = child
		diags = append(diags, child.loadModules(l)...)
	}
	return diags
}

var terraformSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "required_version"}, {Name: "experiments"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "required_providers"}, {Type: "backend", LabelNames: []string{"type"}}, {Type: "cloud"}, {Type: "provider_meta", LabelNames: []string{"provider"}}},
}

func (c *Config) addTerraform(b *hcl.Block) hcl.Diagnostics {
	content, diags := b.Body.Content(terraformSchema)
	if a, ok := content.Attributes["required_version"]; ok {
		var s string
		d := gohcl.DecodeExpression(a.Expr, nil, &s)
		diags = append(diags, d...)
		if !d.HasErrors() {
			c.Terraform.RequiredVersion = append(c.Terraform.RequiredVersion, VersionConstraint{Constraint: s, Range: a.Expr.Range()})
		}
	}
	if a, ok := content.Attributes["experiments"]; ok {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Experiments are not supported",
			Detail: "cairn implements no Terraform language experiment.", Subject: a.NameRange.Ptr()})
	}
	for _, blk := range content.Blocks {
		switch blk.Type {
		case "backend", "cloud":
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unsupported " + blk.Type + " block",
				Detail: "cairn keeps state in its journal; a " + blk.Type + " block would store it elsewhere. Remove it.", Subject: blk.DefRange.Ptr()})
		case "provider_meta":
		case "required_providers":
			attrs, d := blk.Body.JustAttributes()
			diags = append(diags, d...)
			if c.Terraform.RequiredProviders == nil {
				c.Terraform.RequiredProviders = map[string]*RequiredProvider{}
			}
			for _, name := range slices.Sorted(maps.Keys(attrs)) {
				a := attrs[name]
				rp := &RequiredProvider{Name: name, Source: "hashicorp/" + name, Range: a.Range}
				v, d := a.Expr.Value(nil)
				diags = append(diags, d...)
				if d.HasErrors() {
					continue
				}
				switch {
				case v.Type().IsObjectType() || v.Type().IsMapType():
					for it := v.ElementIterator(); it.Next(); {
						k, x := it.Element()
						if x.IsNull() || x.Type() != cty.String {
							continue
						}
						switch k.AsString() {
						case "source":
							rp.Source = x.AsString()
						case "version":
							rp.Version = x.AsString()
						}
					}
				case v.Type() == cty.String && !v.IsNull():
					rp.Version = v.AsString() // the pre-0.13 form: name = "~> 3.0"
				default:
					diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid required_providers entry",
						Detail:  fmt.Sprintf("required_providers.%s must be { source = \"NAMESPACE/%s\", version = \"CONSTRAINT\" } or a version constraint string.", name, name),
						Subject: a.Expr.Range().Ptr()})
					continue
				}
				c.Terraform.RequiredProviders[name] = rp
			}
		}
	}
	return diags
}

var providerSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "alias"}, {Name: "version"}}}

func (c *Config) addProvider(b *hcl.Block) hcl.Diagnostics {
	pb := &ProviderBlock{Name: b.Labels[0], Range: b.DefRange}
	content, _, diags := b.Body.PartialContent(providerSchema)
	if a, ok := content.Attributes["alias"]; ok {
		diags = append(diags, gohcl.DecodeExpression(a.Expr, nil, &pb.Alias)...)
	}
	for _, prev := range c.Providers {
		if prev.Name == pb.Name && prev.Alias == pb.Alias {
			what := pb.Name
			if pb.Alias != "" {
				what += "." + pb.Alias
			}
			return append(diags, duplicate("provider configuration", what, b.DefRange, prev.Range))
		}
	}
	c.Providers = append(c.Providers, pb)
	return diags
}

// addrAttr reads an attribute that holds an address (moved's from and
// to, import's to, removed's from).
func addrAttr(attrs map[string]*hcl.Attribute, name string) (string, hcl.Diagnostics) {
	a, ok := attrs[name]
	if !ok {
		return "", nil
	}
	tr, diags := hcl.AbsTraversalForExpr(a.Expr)
	if diags.HasErrors() {
		return "", diags
	}
	return TraversalString(tr), nil
}

var movedSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "from", Required: true}, {Name: "to", Required: true}}}

func (c *Config) addMoved(b *hcl.Block) hcl.Diagnostics {
	content, diags := b.Body.Content(movedSchema)
	m := &Moved{Range: b.DefRange}
	var d hcl.Diagnostics
	m.From, d = addrAttr(content.Attributes, "from")
	diags = append(diags, d...)
	m.To, d = addrAttr(content.Attributes, "to")
	diags = append(diags, d...)
	if !diags.HasErrors() {
		c.Moved = append(c.Moved, m)
	}
	return diags
}

var importSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "to", Required: true}, {Name: "id"}, {Name: "identity"}, {Name: "provider"}, {Name: "for_each"}}}

func (c *Config) addImport(b *hcl.Block) hcl.Diagnostics {
	content, diags := b.Body.Content(importSchema)
	if len(c.Path) > 0 {
		return append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid import configuration",
			Detail: "An import block was detected in a module. Import blocks are only allowed in the root module.", Subject: b.DefRange.Ptr()})
	}
	for _, n := range []string{"identity", "for_each"} {
		if a, ok := content.Attributes[n]; ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unsupported argument",
				Detail: fmt.Sprintf("cairn's import blocks take to and id; %s is not supported.", n), Subject: a.NameRange.Ptr()})
		}
	}
	im := &Import{Range: b.DefRange}
	var d hcl.Diagnostics
	im.To, d = addrAttr(content.Attributes, "to")
	diags = append(diags, d...)
	if a, ok := content.Attributes["id"]; ok {
		im.ID = a.Expr
	} else {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing required argument",
			Detail: "The argument \"id\" is required.", Subject: b.DefRange.Ptr()})
	}
	if !diags.HasErrors() {
		c.Imports = append(c.Imports, im)
	}
	return diags
}

var removedSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "from", Required: true}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "lifecycle"}, {Type: "provisioner", LabelNames: []string{"type"}}},
}

func (c *Config) addRemoved(b *hcl.Block) hcl.Diagnostics {
	content, diags := b.Body.Content(removedSchema)
	rm := &Removed{Range: b.DefRange}
	var d hcl.Diagnostics
	rm.From, d = addrAttr(content.Attributes, "from")
	diags = append(diags, d...)
	for _, lb := range content.Blocks {
		if lb.Type != "lifecycle" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unsupported block type",
				Detail: "cairn has no provisioners.", Subject: lb.DefRange.Ptr()})
			continue
		}
		lc, d := lb.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "destroy", Required: true}}})
		diags = append(diags, d...)
		if a, ok := lc.Attributes["destroy"]; ok {
			diags = append(diags, gohcl.DecodeExpression(a.Expr, nil, &rm.Destroy)...)
		}
	}
	if !diags.HasErrors() {
		c.Removed = append(c.Removed, rm)
	}
	return diags
}

var checkSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{{Type: "assert"}, {Type: "data", LabelNames: []string{"type", "name"}}},
}

func (c *Config) addCheck(b *hcl.Block) hcl.Diagnostics {
	content, diags := b.Body.Content(checkSchema)
	ch := &Check{Name: b.Labels[0], Range: b.DefRange}
	for _, ab := range content.Blocks {
		if ab.Type == "data" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unsupported block type",
				Detail: "cairn's check blocks take assert blocks; a scoped data source is not supported: declare it outside the check.", Subject: ab.DefRange.Ptr()})
			continue
		}
		cond, d := condition(ab)
		diags = append(diags, d...)
		if cond != nil {
			ch.Asserts = append(ch.Asserts, cond)
		}
	}
	for _, prev := range c.Checks {
		if prev.Name == ch.Name {
			return append(diags, duplicate("check block", ch.Name, b.DefRange, prev.Range))
		}
	}
	c.Checks = append(c.Checks, ch)
	return diags
}

func condition(b *hcl.Block) (*Condition, hcl.Diagnostics) {
	content, diags := b.Body.Content(conditionSchema)
	if diags.HasErrors() {
		return nil, diags
	}
	return &Condition{Cond: content.Attributes["condition"].Expr, Msg: content.Attributes["error_message"].Expr, Range: b.DefRange}, diags
}

// TraversalString renders an absolute traversal as an address:
// module.web["a"].local_file.conf[0].
func TraversalString(tr hcl.Traversal) string {
	var b strings.Builder
	for i, step := range tr {
		switch s := step.(type) {
		case hcl.TraverseRoot:
			b.WriteString(s.Name)
		case hcl.TraverseAttr:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.Name)
		case hcl.TraverseIndex:
			k := s.Key
			switch {
			case k.Type() == cty.String:
				fmt.Fprintf(&b, "[%q]", k.AsString())
			case k.Type() == cty.Number:
				f := k.AsBigFloat()
				n, _ := f.Int64()
				fmt.Fprintf(&b, "[%d]", n)
			}
		}
	}
	return b.String()
}
