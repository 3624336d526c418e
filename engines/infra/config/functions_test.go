package config_test

import (
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/cairnhq/cairn/engines/infra/config"
)

// eval evaluates src with the configuration's functions and vars as var.
func eval(t *testing.T, src string, vars map[string]cty.Value) (cty.Value, hcl.Diagnostics) {
	t.Helper()
	expr, diags := hclsyntax.ParseExpression([]byte(src), "expr.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("parse %s: %s", src, config.Format(diags))
	}
	ctx := &hcl.EvalContext{Functions: config.Functions()}
	if vars != nil {
		ctx.Variables = map[string]cty.Value{"var": cty.ObjectVal(vars)}
	}
	return expr.Value(ctx)
}

func TestFunctions(t *testing.T) {
	vars := map[string]cty.Value{
		"links": cty.ListVal([]cty.Value{cty.StringVal("br0"), cty.StringVal("veth0")}),
		"mtu":   cty.NumberIntVal(1500),
		"port":  cty.StringVal("8080"),
	}
	for _, tc := range []struct {
		expr string
		want cty.Value
	}{
		{`cidrhost("10.0.0.0/24", 5)`, cty.StringVal("10.0.0.5")},
		{`cidrhost("10.0.0.0/24", -2)`, cty.StringVal("10.0.0.254")},
		{`cidrhost("fd00::/64", 17)`, cty.StringVal("fd00::11")},
		{`cidrsubnet("10.0.0.0/16", 8, 2)`, cty.StringVal("10.0.2.0/24")},
		{`cidrsubnet("fd00::/48", 16, 255)`, cty.StringVal("fd00:0:0:ff::/64")},
		{`cidrsubnets("10.0.0.0/16", 8, 8, 4)`, cty.ListVal([]cty.Value{cty.StringVal("10.0.0.0/24"), cty.StringVal("10.0.1.0/24"), cty.StringVal("10.0.16.0/20")})},
		{`cidrnetmask("10.0.0.0/22")`, cty.StringVal("255.255.252.0")},
		{`format("%s-%03d", "veth", 7)`, cty.StringVal("veth-007")},
		{`format("%v mtu %d", var.links[0], var.mtu)`, cty.StringVal("br0 mtu 1500")},
		{`join(",", var.links)`, cty.StringVal("br0,veth0")},
		{`join("", [])`, cty.StringVal("")},
		{`upper("br0")`, cty.StringVal("BR0")},
		{`lower("BR0")`, cty.StringVal("br0")},
		{`length(var.links)`, cty.NumberIntVal(2)},
		{`length(tolist(["a", "b", "c"]))`, cty.NumberIntVal(3)},
		{`length(tomap({a = 1, b = 2}))`, cty.NumberIntVal(2)},
		{`tostring(var.mtu)`, cty.StringVal("1500")},
		{`tostring("x")`, cty.StringVal("x")},
		{`tonumber(var.port)`, cty.NumberIntVal(8080)},
		{`try(tonumber("eighty"), 80)`, cty.NumberIntVal(80)},
		{`try(var.links[5], "none")`, cty.StringVal("none")},
		{`try(var.nope, "none")`, cty.StringVal("none")},
		{`can(tonumber("eighty"))`, cty.False},
		{`can(tonumber(var.port))`, cty.True},
		{`can(cidrhost("10.0.0.0/30", 9))`, cty.False},
		{`jsonencode({name = "br0", mtu = 1500, up = true, ports = [1, 2]})`, cty.StringVal(`{"mtu":1500,"name":"br0","ports":[1,2],"up":true}`)},
		{`jsondecode("{\"a\": [1]}").a[0]`, cty.NumberIntVal(1)},
		{`merge({a = 1}, {b = 2})`, cty.ObjectVal(map[string]cty.Value{"a": cty.NumberIntVal(1), "b": cty.NumberIntVal(2)})},
		{`lookup({a = "x"}, "b", "fallback")`, cty.StringVal("fallback")},
		{`[for i in range(3) : cidrhost("10.1.0.0/24", i + 1)]`, cty.TupleVal([]cty.Value{cty.StringVal("10.1.0.1"), cty.StringVal("10.1.0.2"), cty.StringVal("10.1.0.3")})},
		{`sha256("")`, cty.StringVal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")},
		{`base64encode("br0")`, cty.StringVal("YnIw")},
		{`replace("veth-a", "-", "_")`, cty.StringVal("veth_a")},
		{`element(var.links, 3)`, cty.StringVal("veth0")},
		{`zipmap(["a", "b"], [1, 2])`, cty.ObjectVal(map[string]cty.Value{"a": cty.NumberIntVal(1), "b": cty.NumberIntVal(2)})},
	} {
		got, diags := eval(t, tc.expr, vars)
		if diags.HasErrors() {
			t.Errorf("%s: %s", tc.expr, config.Format(diags))
			continue
		}
		if !got.RawEquals(tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.expr, got, tc.want)
		}
	}
}

func TestFunctionErrors(t *testing.T) {
	for _, tc := range []struct {
		expr, want string
	}{
		{`cidrhost("10.0.0.0/30", 9)`, `expr.hcl:1:1: error: Error in function call; Call to function "cidrhost" failed: prefix of 30 does not accommodate a host numbered 9.`},
		{`cidrsubnet("10.0.0.0/16", 33, 0)`, `expr.hcl:1:1: error: Error in function call; Call to function "cidrsubnet" failed: may not extend prefix by more than 32 bits.`},
		{`cidrhost("not a prefix", 1)`, `expr.hcl:1:1: error: Error in function call; Call to function "cidrhost" failed: invalid CIDR expression: invalid CIDR address: not a prefix.`},
		{`tonumber("eighty")`, `expr.hcl:1:11: error: Invalid function argument; Invalid value for "v" parameter: cannot convert "eighty" to number; given string must be a decimal representation of a number.`},
		{`range(100000)`, `expr.hcl:1:1: error: Error in function call; Call to function "range" failed: more than 1024 values were generated; either decrease the difference between start and end or use a smaller step.`},
	} {
		_, diags := eval(t, tc.expr, nil)
		if got := config.Format(diags); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.expr, got, tc.want)
		}
	}
}

// The daemon evaluates a configuration as root: no function may read a
// file, nor anything else of the machine, on the configuration's behalf.
func TestFunctionsReadNoFiles(t *testing.T) {
	funcs := config.Functions()
	for _, name := range []string{
		"file", "templatefile", "filebase64", "fileexists", "fileset",
		"filemd5", "filesha1", "filesha256", "filesha512", "filebase64sha256", "filebase64sha512",
		"abspath", "pathexpand",
	} {
		if _, ok := funcs[name]; ok {
			t.Errorf("Functions offers %s", name)
		}
	}
	for _, src := range []string{`file("/etc/shadow")`, `templatefile("/etc/shadow", {})`} {
		v, diags := eval(t, src, nil)
		got := config.Format(diags)
		if !strings.Contains(got, "error: Call to unknown function") {
			t.Errorf("%s = %#v, %s; want an unknown function", src, v, got)
		}
	}
	for name := range funcs {
		if strings.Contains(name, "file") || strings.Contains(name, "path") {
			t.Errorf("Functions offers %s", name)
		}
	}
}

// Functions returns a new table each time: a caller that adds to it (the
// planner may) changes no other caller's.
func TestFunctionsIsFresh(t *testing.T) {
	a := config.Functions()
	a["file"] = function.New(&function.Spec{})
	delete(a, "upper")
	b := config.Functions()
	if _, ok := b["file"]; ok {
		t.Error("a function added to one table shows in the next")
	}
	if _, ok := b["upper"]; !ok {
		t.Error("a function deleted from one table is missing from the next")
	}
}

// Terraform's length counts the characters of a string and the attributes
// of an object; a configuration written for Terraform calls it so
// (length(local.links) where local.links is an object literal is common).
func TestLengthOfStringAndObject(t *testing.T) {
	for src, want := range map[string]int64{`length("br0")`: 3, `length({a = 1})`: 1, `length("")`: 0} {
		got, diags := eval(t, src, nil)
		if diags.HasErrors() || !got.RawEquals(cty.NumberIntVal(want)) {
			t.Errorf("%s = %#v, %s; want %d", src, got, config.Format(diags), want)
		}
	}
}

// A negative newbits must be refused: it asks for a subnet shorter than
// its network, which is no subnet at all.
func TestCidrsubnetNegativeNewbits(t *testing.T) {
	for _, src := range []string{`cidrsubnet("10.0.0.0/16", -1, 0)`, `cidrsubnet("0.0.0.0/0", -1, 0)`} {
		got, diags := eval(t, src, nil)
		if !diags.HasErrors() {
			t.Errorf("%s = %#v; want an error", src, got)
		}
	}
}
