package config_test

import (
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/cairnhq/cairn/engines/infra/config"
)

// fuzzSeeds are realistic configurations: a bridge with veth pairs,
// addresses and a route, using count, for_each, locals, variables and
// outputs. testdata/fuzz/FuzzParse holds more, in Go's corpus format.
var fuzzSeeds = []string{
	`
variable "bridge" {
  description = "name of the bridge"
  type        = string
  default     = "br0"
}

variable "peers" {
  type    = set(string)
  default = ["a", "b"]
}

locals {
  prefix  = "10.20.0.0/24"
  gateway = cidrhost(local.prefix, 1)
}

resource "net_link" "br0" {
  name = var.bridge
  kind = "bridge"
  mtu  = 1500
  lifecycle {
    prevent_destroy = true
  }
}

resource "net_link" "veth" {
  for_each = var.peers
  name     = "veth-${each.key}"
  kind     = "veth"
  peer     = "veth-${each.key}-p"
  master   = net_link.br0.name
}

resource "net_address" "gw" {
  link    = net_link.br0.name
  address = "${local.gateway}/24"
}

resource "net_route" "default" {
  destination = "0.0.0.0/0"
  gateway     = local.gateway
  depends_on  = [net_address.gw, net_link.veth]
}

output "bridge_index" {
  value = net_link.br0.index
}
`,
	`
variable "hosts" {
  type    = number
  default = 3
}

variable "token" {
  type      = string
  sensitive = true
  default   = "s3cret"
}

resource "net_link" "dummy" {
  count = var.hosts
  name  = format("dummy%d", count.index)
  kind  = "dummy"
}

resource "net_address" "host" {
  count   = var.hosts
  link    = net_link.dummy[count.index].name
  address = "${cidrhost("10.30.0.0/24", count.index + 10)}/24"
  lifecycle {
    create_before_destroy = true
    ignore_changes        = [labels["team"], mtu]
  }
}

output "addresses" {
  value      = net_address.host[*].address
  depends_on = [net_address.host]
}

output "token" {
  value     = var.token
  sensitive = true
}
`,
	`
variable "links" {
  type = map(object({
    kind = string
    mtu  = optional(number)
  }))
  default = {
    br1 = { kind = "bridge" }
    d0  = { kind = "dummy", mtu = 9000 }
  }
}

locals {
  names = [for name, l in var.links : name if l.kind == "bridge"]
  json  = jsonencode({ links = local.names })
}

resource "net_link" "each" {
  for_each = var.links
  name     = each.key
  kind     = each.value.kind
  mtu      = try(each.value.mtu, 1500)
  lifecycle {
    ignore_changes = all
  }
}

data "net_link" "lo" {
  name = "lo"
}

output "lo_index" {
  value = data.net_link.lo.index
}
`,
	`
variable "pair" {
  type    = tuple([string, number])
  default = ["br0", "1500"]
}
variable "labels" {
  type    = map(any)
  default = { team = "net", tier = 1 }
}
variable "ports" {
  type    = set(any)
  default = [80, "443"]
}
variable "nothing" {
  type    = list(object({ a = optional(string) }))
  default = null
}
output "pair" {
  value = "${var.pair[0]}:${var.labels["team"]}"
}
`,
	"locals {\n  a = 1\n}\nlocals {\n  a = 2\n}\n",
	"resource \"net_link\" \"x\" {\n  count = 1\n  for_each = {}\n}\n",
	"variable \"x\" {\n  type = number\n  default = \"1\"\n}\noutput \"o\" {\n  value = var.x + local.y\n}\n",
	"module \"m\" {\n  source = \"./m\"\n  for_each = toset([\"a\"])\n  x = each.key\n}\nmoved {\n  from = file.a\n  to = module.m[\"a\"].file.a\n}\nimport {\n  to = file.b\n  id = \"/b\"\n}\nremoved {\n  from = file.c\n  lifecycle {\n    destroy = false\n  }\n}\ncheck \"c\" {\n  assert {\n    condition = true\n    error_message = \"no\"\n  }\n}\nterraform {\n  required_version = \">= 1.0\"\n  required_providers {\n    random = { source = \"hashicorp/random\" }\n  }\n}\nprovider \"random\" {\n  alias = \"x\"\n}\n",
	"",
}

// FuzzParse feeds arbitrary text as one configuration file: Parse, and
// when the configuration is valid VariableValues and Refs, must never
// panic, and what they return must hold together.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, diags := config.Parse("/x", map[string]string{"main.hcl": s})
		_ = config.Format(diags)
		if c == nil {
			t.Fatal("Parse returned no configuration")
		}
		if diags.HasErrors() {
			return
		}
		vals, vdiags := c.VariableValues(config.Inputs{})
		_ = config.Format(vdiags)
		if !vdiags.HasErrors() {
			if len(vals) != len(c.Variables) {
				t.Errorf("VariableValues returned %d values for %d variables", len(vals), len(c.Variables))
			}
			for name, v := range c.Variables {
				if got := vals[name].HasMark(config.Sensitive); got != v.Sensitive {
					t.Errorf("var.%s: sensitive mark %v, declared sensitive %v", name, got, v.Sensitive)
				}
			}
		}
		refs := func(trs []hcl.Traversal) {
			addrs, d := c.Refs(trs)
			_ = config.Format(d)
			for _, a := range addrs {
				if !c.Exists(a) {
					t.Errorf("Refs returned %s, which does not exist", a)
				}
			}
		}
		for name, l := range c.Locals {
			if l.Expr == nil {
				t.Fatalf("local.%s has no expression and no error", name)
			}
			refs(l.Expr.Variables())
		}
		for name, o := range c.Outputs {
			if o.Expr == nil {
				t.Fatalf("output %s has no value and no error", name)
			}
			refs(o.Expr.Variables())
			refs(o.DependsOn)
		}
		for addr, r := range c.Resources {
			if r.Addr() != addr {
				t.Errorf("resource %s has address %s", addr, r.Addr())
			}
			if r.Count != nil && r.ForEach != nil {
				t.Errorf("%s has both count and for_each and no error", addr)
			}
			if r.Count != nil {
				refs(r.Count.Variables())
			}
			if r.ForEach != nil {
				refs(r.ForEach.Variables())
			}
			refs(r.DependsOn)
		}
		if got := len(c.SortedResources()); got != len(c.Resources) {
			t.Errorf("SortedResources returned %d of %d", got, len(c.Resources))
		}
	})
}

// The first seeds are valid configurations, so that fuzzing starts from
// inputs that reach VariableValues and Refs.
func TestFuzzSeedsAreValid(t *testing.T) {
	for i, s := range fuzzSeeds[:4] {
		c, diags := config.Parse("/x", map[string]string{"main.hcl": s})
		if diags.HasErrors() {
			t.Fatalf("seed %d: %s", i, config.Format(diags))
		}
		if _, diags := c.VariableValues(config.Inputs{}); diags.HasErrors() {
			t.Fatalf("seed %d: %s", i, config.Format(diags))
		}
	}
}
