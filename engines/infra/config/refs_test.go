package config_test

import (
	"slices"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/cairnhq/cairn/engines/infra/config"
)

const refsConfig = `
variable "prefix" {
  default = "10.0.0.0/24"
}
locals {
  hosts = 3
}
resource "net_link" "br0" {
  kind = "bridge"
}
resource "net_link" "veth" {
  for_each = toset(["a", "b"])
  name     = "veth-${each.key}"
  master   = net_link.br0.name
}
data "net_link" "lo" {
  name = "lo"
}
`

// traversals parses src as an expression of file refs.hcl and returns the
// traversals it holds.
func traversals(t *testing.T, src string) []hcl.Traversal {
	t.Helper()
	expr, diags := hclsyntax.ParseExpression([]byte(src), "refs.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("%s: %s", src, config.Format(diags))
	}
	return expr.Variables()
}

func TestRefsResolvesEveryKind(t *testing.T) {
	c := parse(t, map[string]string{"main.hcl": refsConfig})
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`var.prefix`, []string{"var.prefix"}},
		{`local.hosts`, []string{"local.hosts"}},
		{`net_link.br0.index`, []string{"net_link.br0"}},
		{`net_link.br0`, []string{"net_link.br0"}},
		{`net_link.veth["a"].name`, []string{"net_link.veth"}},
		{`data.net_link.lo.index`, []string{"data.net_link.lo"}},
		{`data.net_link.lo`, []string{"data.net_link.lo"}},
		{`var.prefix[0]`, []string{"var.prefix"}},
		// In order of first appearance, each once.
		{
			`"${net_link.br0.name}-${var.prefix}-${data.net_link.lo.name}-${local.hosts}-${var.prefix}-${net_link.br0.index}"`,
			[]string{"net_link.br0", "var.prefix", "data.net_link.lo", "local.hosts"},
		},
		// References that name no configuration object are left out.
		{`count.index`, nil},
		{`each.key`, nil},
		{`each.value.name`, nil},
		{`path.module`, nil},
		{`self.name`, nil},
		{`terraform.workspace`, nil},
		{`cidrhost(var.prefix, count.index + local.hosts)`, []string{"var.prefix", "local.hosts"}},
		// A for expression's own symbols are not references.
		{`[for k, v in net_link.veth : "${k}=${v.name}" if v.mtu > local.hosts]`, []string{"net_link.veth", "local.hosts"}},
		{`"literal"`, nil},
	} {
		got, diags := c.Refs(traversals(t, tc.expr))
		if len(diags) != 0 {
			t.Errorf("%s: %s", tc.expr, config.Format(diags))
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Refs(%s) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

func TestRefsToUndeclaredObjects(t *testing.T) {
	c := parse(t, map[string]string{"main.hcl": refsConfig})
	for _, tc := range []struct {
		expr string
		want string
	}{
		{`var.prefx`, "refs.hcl:1:1: error: Reference to undeclared input variable; var.prefx is not declared in this configuration; declare it, or fix the name."},
		{`local.host`, "refs.hcl:1:1: error: Reference to undeclared local value; local.host is not declared in this configuration; declare it, or fix the name."},
		{`net_link.br1.index`, "refs.hcl:1:1: error: Reference to undeclared resource; net_link.br1 is not declared in this configuration; declare it, or fix the name."},
		{`net_route.br0`, "refs.hcl:1:1: error: Reference to undeclared resource; net_route.br0 is not declared in this configuration; declare it, or fix the name."},
		{`data.net_link.eth0.index`, "refs.hcl:1:1: error: Reference to undeclared data source; data.net_link.eth0 is not declared in this configuration; declare it, or fix the name."},
		// A data source is not a resource, nor the other way round.
		{`data.net_link.br0`, "refs.hcl:1:1: error: Reference to undeclared data source; data.net_link.br0 is not declared in this configuration; declare it, or fix the name."},
		{`net_link.lo`, "refs.hcl:1:1: error: Reference to undeclared resource; net_link.lo is not declared in this configuration; declare it, or fix the name."},
		{`upper(var.prefix, var.nope)`, "refs.hcl:1:19: error: Reference to undeclared input variable; var.nope is not declared in this configuration; declare it, or fix the name."},
		{`var.prefix`, ""},
	} {
		_, diags := c.Refs(traversals(t, tc.expr))
		if got := config.Format(diags); got != tc.want {
			t.Errorf("Refs(%s):\n got %s\nwant %s", tc.expr, got, tc.want)
		}
	}
}

// The diagnostic covers the reference as written, so that an editor can
// underline it.
func TestRefsUndeclaredRange(t *testing.T) {
	c := parse(t, map[string]string{"main.hcl": `
locals {
  ok  = var.prefix
  bad = "${var.prefix}/${var.mask}"
}
variable "prefix" {}
`})
	refs, diags := c.Refs(c.Locals["bad"].Expr.Variables())
	if !slices.Equal(refs, []string{"var.prefix"}) {
		t.Errorf("refs = %q", refs)
	}
	if len(diags) != 1 {
		t.Fatalf("diagnostics: %s", config.Format(diags))
	}
	d := diags[0]
	want := hcl.Range{
		Filename: "main.hcl",
		Start:    hcl.Pos{Line: 4, Column: 26, Byte: 54},
		End:      hcl.Pos{Line: 4, Column: 34, Byte: 62},
	}
	if d.Subject == nil || *d.Subject != want {
		t.Errorf("subject = %v, want %v", d.Subject, want)
	}
	if d.Summary != "Reference to undeclared input variable" || d.Severity != hcl.DiagError {
		t.Errorf("diagnostic = %s", config.Format(diags))
	}
	// Each undeclared reference is reported where it stands.
	_, diags = c.Refs(traversals(t, "[var.a,\n var.a]"))
	if got, want := config.Format(diags), "refs.hcl:1:2: error: Reference to undeclared input variable; var.a is not declared in this configuration; declare it, or fix the name.\n"+
		"refs.hcl:2:2: error: Reference to undeclared input variable; var.a is not declared in this configuration; declare it, or fix the name."; got != want {
		t.Errorf("diagnostics:\n got %s\nwant %s", got, want)
	}
}

func TestRefsInvalid(t *testing.T) {
	c := parse(t, map[string]string{"main.hcl": refsConfig})
	for _, tc := range []struct {
		expr, want string
	}{
		{`var`, "refs.hcl:1:1: error: Invalid reference; A reference to var must be followed by a name, as in var.NAME."},
		{`local`, "refs.hcl:1:1: error: Invalid reference; A reference to local must be followed by a name, as in local.NAME."},
		{`var["prefix"]`, "refs.hcl:1:1: error: Invalid reference; A reference to var must be followed by a name, as in var.NAME."},
		{`data.net_link`, "refs.hcl:1:1: error: Invalid reference; A reference to a data source must be data.TYPE.NAME."},
		{`data`, "refs.hcl:1:1: error: Invalid reference; A reference to a data source must be data.TYPE.NAME."},
		{`net_link`, "refs.hcl:1:1: error: Invalid reference; A reference to a resource type must be followed by the resource's name, as in net_link.NAME."},
		{`net_link[0]`, "refs.hcl:1:1: error: Invalid reference; A reference to a resource type must be followed by the resource's name, as in net_link.NAME."},
	} {
		refs, diags := c.Refs(traversals(t, tc.expr))
		if got := config.Format(diags); got != tc.want {
			t.Errorf("Refs(%s):\n got %s\nwant %s", tc.expr, got, tc.want)
		}
		if len(refs) != 0 {
			t.Errorf("Refs(%s) = %q, want none", tc.expr, refs)
		}
	}
}

func TestRef(t *testing.T) {
	for _, tc := range []struct {
		expr string
		addr string
		ok   bool
	}{
		{`var.x`, "var.x", true},
		{`var.x.y[2]`, "var.x", true},
		{`local.l`, "local.l", true},
		{`net_link.br0.index`, "net_link.br0", true},
		{`data.net_link.lo.index`, "data.net_link.lo", true},
		{`count.index`, "", false},
		{`each.value`, "", false},
		{`path.module`, "", false},
		{`self.id`, "", false},
		{`terraform.workspace`, "", false},
	} {
		trs := traversals(t, tc.expr)
		if len(trs) != 1 {
			t.Fatalf("%s: %d traversals", tc.expr, len(trs))
		}
		addr, ok, d := config.Ref(trs[0])
		if d != nil || addr != tc.addr || ok != tc.ok {
			t.Errorf("Ref(%s) = %q, %v, %v; want %q, %v, nil", tc.expr, addr, ok, d, tc.addr, tc.ok)
		}
	}
}

func TestExists(t *testing.T) {
	c := parse(t, map[string]string{"main.hcl": refsConfig})
	for addr, want := range map[string]bool{
		"var.prefix":       true,
		"var.nope":         false,
		"local.hosts":      true,
		"local.prefix":     false,
		"net_link.br0":     true,
		"net_link.veth":    true,
		"net_link.lo":      false,
		"data.net_link.lo": true,
		"data.net_link":    false,
		"var.":             false,
		"local.":           false,
		"":                 false,
	} {
		if got := c.Exists(addr); got != want {
			t.Errorf("Exists(%q) = %v, want %v", addr, got, want)
		}
	}
}
