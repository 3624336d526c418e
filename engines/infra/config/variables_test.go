package config_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/cairnhq/cairn/engines/infra/config"
)

const declarations = `
variable "bridge" {
  default = "br0"
}
variable "mtu" {
  type    = number
  default = 1500
}
variable "hosts" {
  type = list(string)
  default = []
}
variable "token" {
  type      = string
  sensitive = true
  default   = "t0"
}
`

func values(t *testing.T, c *config.Config, in config.Inputs) map[string]cty.Value {
	t.Helper()
	vals, diags := c.VariableValues(in)
	if len(diags) != 0 {
		t.Fatalf("VariableValues: %s", config.Format(diags))
	}
	return vals
}

func valuesErr(t *testing.T, c *config.Config, in config.Inputs) string {
	t.Helper()
	_, diags := c.VariableValues(in)
	if !diags.HasErrors() {
		t.Fatalf("VariableValues succeeded; want an error (diagnostics: %q)", config.Format(diags))
	}
	return config.Format(diags)
}

func wantValue(t *testing.T, vals map[string]cty.Value, name string, want cty.Value) {
	t.Helper()
	got, ok := vals[name]
	if !ok {
		t.Errorf("var.%s missing", name)
		return
	}
	if !got.RawEquals(want) {
		t.Errorf("var.%s = %#v, want %#v", name, got, want)
	}
}

func TestVariableValuesDefaults(t *testing.T) {
	c := parse(t, map[string]string{"variables.hcl": declarations})
	vals := values(t, c, config.Inputs{})
	if len(vals) != 4 {
		t.Errorf("VariableValues returned %d values, want 4: %#v", len(vals), vals)
	}
	wantValue(t, vals, "bridge", cty.StringVal("br0"))
	wantValue(t, vals, "mtu", cty.NumberIntVal(1500))
	wantValue(t, vals, "hosts", cty.ListValEmpty(cty.String))
	wantValue(t, vals, "token", cty.StringVal("t0").Mark(config.Sensitive))
}

// A var-file= value wins over the default, a later file wins over an
// earlier one, and a var.NAME=VALUE value wins over every file.
func TestVariableValuesPrecedence(t *testing.T) {
	c := parse(t, map[string]string{"variables.hcl": declarations})
	dir := writeDir(t, map[string]string{
		"first.vars":  "bridge = \"br1\"\nmtu = 9000\nhosts = [\"a\"]\n",
		"second.vars": "mtu = 1400\n",
	})
	first, second := filepath.Join(dir, "first.vars"), filepath.Join(dir, "second.vars")

	vals := values(t, c, config.Inputs{Files: []string{first}})
	wantValue(t, vals, "bridge", cty.StringVal("br1"))
	wantValue(t, vals, "mtu", cty.NumberIntVal(9000))
	wantValue(t, vals, "hosts", cty.ListVal([]cty.Value{cty.StringVal("a")}))
	wantValue(t, vals, "token", cty.StringVal("t0").Mark(config.Sensitive))

	vals = values(t, c, config.Inputs{Files: []string{first, second}})
	wantValue(t, vals, "bridge", cty.StringVal("br1"))
	wantValue(t, vals, "mtu", cty.NumberIntVal(1400))

	vals = values(t, c, config.Inputs{Files: []string{second, first}})
	wantValue(t, vals, "mtu", cty.NumberIntVal(9000))

	vals = values(t, c, config.Inputs{
		Files:  []string{first, second},
		Values: map[string]string{"mtu": "1280", "bridge": "br9", "token": "s3cret"},
	})
	wantValue(t, vals, "bridge", cty.StringVal("br9"))
	wantValue(t, vals, "mtu", cty.NumberIntVal(1280))
	wantValue(t, vals, "hosts", cty.ListVal([]cty.Value{cty.StringVal("a")}))
	wantValue(t, vals, "token", cty.StringVal("s3cret").Mark(config.Sensitive))
}

// A var.NAME=VALUE value is text: a string variable takes it as it is, and
// a variable of another type reads it as an HCL expression, as terraform
// -var does.
func TestVariableValuesConversion(t *testing.T) {
	c := parse(t, map[string]string{"variables.hcl": `
variable "untyped" {}
variable "text"    { type = string }
variable "port"    { type = number }
variable "quoted"  { type = number }
variable "up"      { type = bool }
variable "names"   { type = list(string) }
variable "ports"   { type = set(number) }
variable "link" {
  type = object({
    name = string
    mtu  = optional(number)
  })
}
variable "labels"  { type = map(string) }
variable "anything" { type = any }
`})
	vals := values(t, c, config.Inputs{Values: map[string]string{
		"untyped":  `["not", "a", "list"]`,
		"text":     "8080",
		"port":     "8080",
		"quoted":   `"22"`,
		"up":       "true",
		"names":    `["a", 1]`,
		"ports":    `[80, 443, 80]`,
		"link":     `{ name = "br0" }`,
		"labels":   `{ team = "net", tier = 1 }`,
		"anything": `[1]`,
	}})
	wantValue(t, vals, "untyped", cty.StringVal(`["not", "a", "list"]`))
	wantValue(t, vals, "text", cty.StringVal("8080"))
	wantValue(t, vals, "port", cty.NumberIntVal(8080))
	wantValue(t, vals, "quoted", cty.NumberIntVal(22))
	wantValue(t, vals, "up", cty.True)
	wantValue(t, vals, "names", cty.ListVal([]cty.Value{cty.StringVal("a"), cty.StringVal("1")}))
	wantValue(t, vals, "ports", cty.SetVal([]cty.Value{cty.NumberIntVal(80), cty.NumberIntVal(443)}))
	wantValue(t, vals, "link", cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("br0"), "mtu": cty.NullVal(cty.Number)}))
	wantValue(t, vals, "labels", cty.MapVal(map[string]cty.Value{"team": cty.StringVal("net"), "tier": cty.StringVal("1")}))
	// `any` is not constrained: the text stays text.
	wantValue(t, vals, "anything", cty.StringVal("[1]"))

	// A var-file value is converted to the declared type too.
	dir := writeDir(t, map[string]string{"v.vars": "port = \"443\"\ntext = 5\nnames = [true]\n"})
	vals = values(t, c, config.Inputs{
		Files:  []string{filepath.Join(dir, "v.vars")},
		Values: map[string]string{"untyped": "", "quoted": "1", "up": "false", "ports": "[]", "link": `{name="x", mtu=9000}`, "labels": "{}", "anything": "x"},
	})
	wantValue(t, vals, "port", cty.NumberIntVal(443))
	wantValue(t, vals, "text", cty.StringVal("5"))
	wantValue(t, vals, "names", cty.ListVal([]cty.Value{cty.StringVal("true")}))
	wantValue(t, vals, "untyped", cty.StringVal(""))
	wantValue(t, vals, "link", cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("x"), "mtu": cty.NumberIntVal(9000)}))
}

func TestVariableValuesErrors(t *testing.T) {
	c := parse(t, map[string]string{"variables.hcl": `variable "port" {
  type    = number
  default = 80
}
variable "name" {}
variable "names" {
  type    = list(string)
  default = []
}
`})
	dir := writeDir(t, map[string]string{
		"undeclared.vars": "name = \"x\"\n\n  colour = \"blue\"\n",
		"bad.vars":        "name = \"x\"\nport = \"eighty\"\n",
		"call.vars":       "name = upper(\"x\")\n",
		"syntax.vars":     "name = \n",
		"block.vars":      "name = \"x\"\nnested {}\n",
	})
	file := func(n string) string { return filepath.Join(dir, n) }
	statement := hcl.Range{Filename: "statement", Start: hcl.Pos{Line: 1, Column: 14}, End: hcl.Pos{Line: 1, Column: 14}}
	for _, tc := range []struct {
		name string
		in   config.Inputs
		want string
	}{
		{
			name: "number given as a word",
			in:   config.Inputs{Values: map[string]string{"name": "x", "port": `"eighty"`}},
			want: "error: Invalid value for variable; The value given for var.port is not a number: a number is required.",
		},
		{
			name: "number given as a word, where it was written",
			in: config.Inputs{
				Values:      map[string]string{"name": "x", "port": `"eighty"`},
				ValueRanges: map[string]hcl.Range{"port": statement},
			},
			want: "statement:1:14: error: Invalid value for variable; The value given for var.port is not a number: a number is required.",
		},
		{
			name: "list given as a string",
			in:   config.Inputs{Values: map[string]string{"name": "x", "names": `"a"`}},
			want: "error: Invalid value for variable; The value given for var.names is not a list of string: list of string required, but have string.",
		},
		{
			name: "number given as a bare word",
			in:   config.Inputs{Values: map[string]string{"name": "x", "port": "eighty"}},
			want: "var.port:1:1: error: Variables not allowed; Variables may not be used here.",
		},
		{
			name: "value that does not parse",
			in:   config.Inputs{Values: map[string]string{"name": "x", "port": "80 80"}},
			want: "var.port:1:4: error: Extra characters after expression; An expression was successfully parsed, but extra characters were found after it.",
		},
		{
			name: "bad value in a var-file",
			in:   config.Inputs{Files: []string{file("bad.vars")}},
			want: "bad.vars:2:8: error: Invalid value for variable; The value given for var.port is not a number: a number is required.",
		},
		{
			name: "undeclared variable in Values",
			in:   config.Inputs{Values: map[string]string{"name": "x", "colour": "blue"}, ValueRanges: map[string]hcl.Range{"colour": statement}},
			want: `statement:1:14: error: Value for undeclared variable; var.colour was given but the configuration declares no variable "colour".`,
		},
		{
			name: "undeclared variable in a var-file",
			in:   config.Inputs{Files: []string{file("undeclared.vars")}},
			want: `undeclared.vars:3:3: error: Value for undeclared variable; The configuration declares no variable "colour"; declare it with a variable block, or remove it from undeclared.vars.`,
		},
		{
			name: "missing required variable",
			in:   config.Inputs{},
			want: `variables.hcl:5:1: error: No value for required variable; Variable "name" has no default; give var.name=VALUE or a var-file= that sets it.`,
		},
		{
			name: "function call in a var-file",
			in:   config.Inputs{Files: []string{file("call.vars")}},
			want: "call.vars:1:8: error: Function calls not allowed; Functions may not be called here.\n" +
				`variables.hcl:5:1: error: No value for required variable; Variable "name" has no default; give var.name=VALUE or a var-file= that sets it.`,
		},
		{
			name: "var-file that does not parse",
			in:   config.Inputs{Files: []string{file("syntax.vars")}, Values: map[string]string{"name": "x"}},
			want: "syntax.vars:1:8: error: Invalid expression; Expected the start of an expression, but found an invalid expression token.",
		},
		{
			name: "var-file with a block",
			in:   config.Inputs{Files: []string{file("block.vars")}},
			want: `block.vars:2:1: error: Unexpected "nested" block; Blocks are not allowed here.`,
		},
		{
			name: "missing var-file",
			in:   config.Inputs{Files: []string{file("nope.vars")}, Values: map[string]string{"name": "x"}},
			want: "error: Cannot read var-file; open nope.vars: no such file or directory",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.ReplaceAll(valuesErr(t, c, tc.in), dir+string(filepath.Separator), "")
			if got != tc.want {
				t.Errorf("diagnostics:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// Every diagnostic of one call is reported at once, so that the caller can
// fix them all.
func TestVariableValuesReportsEveryMistake(t *testing.T) {
	c := parse(t, map[string]string{"main.hcl": `
variable "a" {}
variable "b" { type = number }
variable "c" {}
`})
	got := valuesErr(t, c, config.Inputs{Values: map[string]string{"b": `"x"`, "z": "1"}})
	for _, want := range []string{`no variable "z"`, "var.b is not a number", `Variable "a" has no default`, `Variable "c" has no default`} {
		if !strings.Contains(got, want) {
			t.Errorf("diagnostics do not say %q:\n%s", want, got)
		}
	}
}

func TestSensitiveVariables(t *testing.T) {
	c := parse(t, map[string]string{"main.hcl": `
variable "password" {
  sensitive = true
}
variable "key" {
  type      = object({ id = number, secret = string })
  sensitive = true
  default   = { id = 1, secret = "k" }
}
variable "plain" {
  default = "p"
}
variable "not_secret" {
  sensitive = false
  default   = "n"
}
`})
	for _, in := range []config.Inputs{
		{Values: map[string]string{"password": "hunter2"}},
		{Values: map[string]string{"password": "hunter2", "key": `{ id = 2, secret = "z" }`}},
	} {
		vals := values(t, c, in)
		for name, want := range map[string]bool{"password": true, "key": true, "plain": false, "not_secret": false} {
			if got := vals[name].HasMark(config.Sensitive); got != want {
				t.Errorf("var.%s (given %v): sensitive mark %v, want %v", name, in.Values, got, want)
			}
		}
		wantValue(t, vals, "password", cty.StringVal("hunter2").Mark(config.Sensitive))
	}

	// What is computed from a sensitive value carries the mark, through
	// the functions a configuration may call.
	vals := values(t, c, config.Inputs{Values: map[string]string{"password": "hunter2"}})
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(vals)},
		Functions: config.Functions(),
	}
	for _, src := range []string{
		`upper(var.password)`,
		`"user:${var.password}"`,
		`sha256(var.password)`,
		`var.key.secret`,
		`jsonencode(var.key)`,
		`split(":", var.password)`,
		`format("%s!", var.password)`,
	} {
		expr, diags := hclsyntax.ParseExpression([]byte(src), "e.hcl", hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", src, config.Format(diags))
		}
		v, diags := expr.Value(ctx)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", src, config.Format(diags))
		}
		if !v.HasMark(config.Sensitive) && !v.ContainsMarked() {
			t.Errorf("%s = %#v lost the sensitive mark", src, v)
		}
	}

	// A diagnostic about a sensitive variable does not show its value.
	c = parse(t, map[string]string{"main.hcl": "variable \"pin\" {\n  type = number\n  sensitive = true\n}\n"})
	got := valuesErr(t, c, config.Inputs{Values: map[string]string{"pin": `"hunter2"`}})
	if strings.Contains(got, "hunter2") {
		t.Errorf("diagnostic shows the sensitive value: %s", got)
	}
}

// VariableValues reads the configuration without changing it: a second
// call with other inputs is not affected by the first.
func TestVariableValuesIsRepeatable(t *testing.T) {
	c := parse(t, map[string]string{"variables.hcl": declarations})
	values(t, c, config.Inputs{Values: map[string]string{"mtu": "9000", "bridge": "x"}})
	vals := values(t, c, config.Inputs{})
	wantValue(t, vals, "mtu", cty.NumberIntVal(1500))
	wantValue(t, vals, "bridge", cty.StringVal("br0"))
	if c.Variables["token"].Default.IsMarked() {
		t.Error("VariableValues marked the declared default itself")
	}
}

func TestVariableValuesWithoutVariables(t *testing.T) {
	c := parse(t, map[string]string{"main.hcl": `resource "net_link" "lo" {}`})
	vals := values(t, c, config.Inputs{})
	if len(vals) != 0 {
		t.Errorf("VariableValues = %#v, want none", vals)
	}
}

// The same configuration and inputs give the same answer, in the same
// order, every time: the diagnostics are shown to a person and journaled.
func TestVariableValuesDiagnosticsOrder(t *testing.T) {
	c := parse(t, map[string]string{"main.hcl": `
variable "a" {}
variable "b" {}
variable "c" {}
variable "d" {}
variable "e" {}
`})
	first := valuesErr(t, c, config.Inputs{})
	for range 50 {
		if got := valuesErr(t, c, config.Inputs{}); got != first {
			t.Fatalf("diagnostics changed between calls:\n%s\n----\n%s", first, got)
		}
	}
}

// Loading the same files twice reports their mistakes in the same order.
func TestLocalsDiagnosticsOrder(t *testing.T) {
	files := map[string]string{
		"a.hcl": "locals {\n  a = 1\n  b = 1\n  c = 1\n  d = 1\n  e = 1\n}\n",
		"b.hcl": "locals {\n  a = 2\n  b = 2\n  c = 2\n  d = 2\n  e = 2\n}\n",
	}
	first := parseErr(t, files)
	for range 50 {
		if got := parseErr(t, files); got != first {
			t.Fatalf("diagnostics changed between loads:\n%s\n----\n%s", first, got)
		}
	}
}

// Terraform's precedence: TF_VAR_ < terraform.tfvars <
// terraform.tfvars.json < *.auto.tfvars (by name) < var-file= < var.
func TestVariablePrecedenceTerraformFiles(t *testing.T) {
	dir := writeDir(t, map[string]string{
		"main.tf": `
variable "a" {}
variable "b" {}
variable "c" {}
variable "d" {}
variable "e" {
  type = number
}
variable "f" {}
`,
		"terraform.tfvars":      "b = \"tfvars\"\nc = \"tfvars\"\n",
		"terraform.tfvars.json": `{"c": "json", "d": "json"}`,
		"x.auto.tfvars":         "d = \"auto\"\n",
		"given.tfvars.json":     `{"f": "var-file"}`,
	})
	c, diags := config.Load(dir)
	if diags.HasErrors() {
		t.Fatal(config.Format(diags))
	}
	vals := values(t, c, config.Inputs{
		Env:    map[string]string{"a": "env", "b": "env", "e": "7", "unknown": "ignored"},
		Files:  []string{filepath.Join(dir, "given.tfvars.json")},
		Values: map[string]string{},
	})
	for name, want := range map[string]string{"a": "env", "b": "tfvars", "c": "json", "d": "auto", "f": "var-file"} {
		wantValue(t, vals, name, cty.StringVal(want))
	}
	wantValue(t, vals, "e", cty.NumberIntVal(7))
}

// nullable = false: a null value stands for the default; without one it
// is Terraform's error.
func TestNonNullableVariable(t *testing.T) {
	c := parse(t, map[string]string{"main.tf": `
variable "a" {
  default  = "dflt"
  nullable = false
}
variable "b" {
  nullable = false
}
variable "c" {
  default = "dflt"
}
`})
	vals, diags := c.ModuleVariables(map[string]cty.Value{"a": cty.NullVal(cty.String), "b": cty.StringVal("x"), "c": cty.NullVal(cty.String)}, nil, "set NAME")
	if diags.HasErrors() {
		t.Fatal(config.Format(diags))
	}
	wantValue(t, vals, "a", cty.StringVal("dflt"))
	wantValue(t, vals, "c", cty.NullVal(cty.String))
	_, diags = c.ModuleVariables(map[string]cty.Value{"b": cty.NullVal(cty.String)}, nil, "set NAME")
	if got := config.Format(diags); !strings.Contains(got, `Unsupported null value for non-nullable variable "b".`) {
		t.Fatalf("diagnostics: %s", got)
	}
}
