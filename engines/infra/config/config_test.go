package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cairnhq/cairn/engines/infra/config"
)

// writeDir writes files (name -> source) into a new temporary directory and
// returns it.
func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// format renders diags as config.Format does, with dir stripped from file
// names and written $DIR elsewhere, so that expectations do not depend on
// the temporary directory.
func format(diags hcl.Diagnostics, dir string) string {
	s := config.Format(diags)
	if dir != "" {
		s = strings.ReplaceAll(s, dir+string(filepath.Separator), "")
		s = strings.ReplaceAll(s, dir, "$DIR")
	}
	return s
}

// parse parses files with config.Parse and fails the test on any error.
func parse(t *testing.T, files map[string]string) *config.Config {
	t.Helper()
	c, diags := config.Parse("/x", files)
	if diags.HasErrors() {
		t.Fatalf("parse: %s", config.Format(diags))
	}
	return c
}

// parseErr parses files with config.Parse and returns the formatted
// diagnostics, failing the test when there is no error.
func parseErr(t *testing.T, files map[string]string) string {
	t.Helper()
	_, diags := config.Parse("/x", files)
	if !diags.HasErrors() {
		t.Fatalf("parse succeeded; want an error (diagnostics: %q)", config.Format(diags))
	}
	return config.Format(diags)
}

// traversalString renders tr as it is written: root.attr[key].
func traversalString(tr hcl.Traversal) string {
	var b strings.Builder
	for _, s := range tr {
		switch s := s.(type) {
		case hcl.TraverseRoot:
			b.WriteString(s.Name)
		case hcl.TraverseAttr:
			b.WriteString("." + s.Name)
		case hcl.TraverseIndex:
			switch s.Key.Type() {
			case cty.String:
				fmt.Fprintf(&b, "[%q]", s.Key.AsString())
			case cty.Number:
				fmt.Fprintf(&b, "[%s]", s.Key.AsBigFloat().Text('f', -1))
			default:
				fmt.Fprintf(&b, "[%s]", s.Key.GoString())
			}
		default:
			fmt.Fprintf(&b, "<%T>", s)
		}
	}
	return b.String()
}

func traversalStrings(trs []hcl.Traversal) []string {
	out := make([]string, len(trs))
	for i, tr := range trs {
		out[i] = traversalString(tr)
	}
	return out
}

func TestLoadReadsEveryHCLFileOfTheDirectory(t *testing.T) {
	dir := writeDir(t, map[string]string{
		"variables.hcl": `
variable "bridge" {
  description = "name of the bridge"
  type        = string
  default     = "br0"
}

variable "hosts" {
  type = number
}
`,
		"main.hcl": `
locals {
  prefix = "10.0.0.0/24"
  mtu    = 1500
}

resource "net_link" "br0" {
  name = var.bridge
  kind = "bridge"
  mtu  = local.mtu
}

resource "net_address" "host" {
  count   = var.hosts
  link    = net_link.br0.name
  address = cidrhost(local.prefix, count.index + 1)
}

data "net_link" "lo" {
  name = "lo"
}
`,
		"outputs.hcl": `
output "bridge_index" {
  description = "the kernel's index of the bridge"
  value       = net_link.br0.index
}
`,
		// Not configuration: neither read nor reported.
		"README.md":          "# not hcl",
		"main.hcl.orig":      "this is not { hcl",
		"nested/ignored.hcl": `variable "nested" {}`,
	})
	c, diags := config.Load(dir)
	if len(diags) != 0 {
		t.Fatalf("Load: %s", format(diags, dir))
	}
	if c.Dir != dir {
		t.Errorf("Dir = %q, want %q", c.Dir, dir)
	}
	var files []string
	for name := range c.Files {
		files = append(files, name)
	}
	slices.Sort(files)
	want := []string{filepath.Join(dir, "main.hcl"), filepath.Join(dir, "outputs.hcl"), filepath.Join(dir, "variables.hcl")}
	if !slices.Equal(files, want) {
		t.Errorf("Files = %q, want %q", files, want)
	}
	if got := string(c.Files[filepath.Join(dir, "outputs.hcl")]); !strings.Contains(got, `output "bridge_index"`) {
		t.Errorf("Files[outputs.hcl] does not hold the file's source: %q", got)
	}
	if got := sortedKeys(c.Variables); !slices.Equal(got, []string{"bridge", "hosts"}) {
		t.Errorf("variables = %q", got)
	}
	if got := sortedKeys(c.Locals); !slices.Equal(got, []string{"mtu", "prefix"}) {
		t.Errorf("locals = %q", got)
	}
	if got := sortedKeys(c.Outputs); !slices.Equal(got, []string{"bridge_index"}) {
		t.Errorf("outputs = %q", got)
	}
	var addrs []string
	for _, r := range c.SortedResources() {
		addrs = append(addrs, r.Addr())
	}
	if want := []string{"data.net_link.lo", "net_address.host", "net_link.br0"}; !slices.Equal(addrs, want) {
		t.Errorf("SortedResources = %q, want %q", addrs, want)
	}

	br0 := c.Resources["net_link.br0"]
	if br0.Mode != config.Managed || br0.Type != "net_link" || br0.Name != "br0" {
		t.Errorf("net_link.br0 = %+v", br0)
	}
	if br0.Count != nil || br0.ForEach != nil || br0.DependsOn != nil {
		t.Errorf("net_link.br0 has meta-arguments it was not given: %+v", br0)
	}
	if got := rangeString(br0.Range, dir); got != "main.hcl:7,1-26" {
		t.Errorf("net_link.br0 Range = %s, want main.hcl:7,1-26", got)
	}
	if got := rangeString(br0.TypeRange, dir); got != "main.hcl:7,10-20" {
		t.Errorf("net_link.br0 TypeRange = %s, want main.hcl:7,10-20 (the type label)", got)
	}
	lo := c.Resources["data.net_link.lo"]
	if lo.Mode != config.Data || lo.Addr() != "data.net_link.lo" {
		t.Errorf("data.net_link.lo = %+v (addr %s)", lo, lo.Addr())
	}
	if c.Resources["net_address.host"].Count == nil {
		t.Error("net_address.host: Count not set")
	}

	v := c.Variables["bridge"]
	if v.Description != "name of the bridge" || v.Type != cty.String || !v.Default.RawEquals(cty.StringVal("br0")) || v.Sensitive {
		t.Errorf("variable bridge = %+v", v)
	}
	if got := rangeString(v.Range, dir); got != "variables.hcl:2,1-18" {
		t.Errorf("variable bridge Range = %s", got)
	}
	if h := c.Variables["hosts"]; h.Default != cty.NilVal || h.Type != cty.Number {
		t.Errorf("variable hosts = %+v; want no default, type number", h)
	}
	if got := rangeString(c.Locals["mtu"].Range, dir); got != "main.hcl:4,3-6" {
		t.Errorf("local mtu Range = %s, want the name's range main.hcl:4,3-6", got)
	}
	o := c.Outputs["bridge_index"]
	if o.Description != "the kernel's index of the bridge" || o.Expr == nil || o.Sensitive {
		t.Errorf("output = %+v", o)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func rangeString(r hcl.Range, dir string) string {
	return strings.TrimPrefix(r.String(), dir+string(filepath.Separator))
}

func TestLoadRefusesWhatIsNotAConfigurationDirectory(t *testing.T) {
	empty := t.TempDir()
	other := writeDir(t, map[string]string{"main.tfvars": `x = 1`})
	file := filepath.Join(writeDir(t, map[string]string{"main.hcl": `variable "x" {}`}), "main.hcl")
	for _, tc := range []struct {
		name, dir, want string
	}{
		{"missing", filepath.Join(empty, "nope"), "error: Cannot read configuration; stat " + filepath.Join(empty, "nope") + ": no such file or directory; give the directory that holds the *.tf or *.hcl files"},
		{"file", file, "error: Cannot read configuration; " + file + " is not a directory; give the directory that holds the *.tf or *.hcl files"},
		{"empty", empty, "error: No configuration files; " + empty + " holds no *.tf or *.hcl file; an infra configuration is every *.tf and *.hcl file of a directory"},
		{"no hcl", other, "error: No configuration files; " + other + " holds no *.tf or *.hcl file; an infra configuration is every *.tf and *.hcl file of a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, diags := config.Load(tc.dir)
			if c != nil {
				t.Errorf("Load returned a configuration: %+v", c)
			}
			if got := config.Format(diags); got != tc.want {
				t.Errorf("diagnostics:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// A file that does not parse is reported, and the others are still read, so
// that one answer lists every mistake.
func TestLoadReportsEveryBadFile(t *testing.T) {
	dir := writeDir(t, map[string]string{
		"a.hcl": "variable \"a\" {}\nresource \"x\" {\n",
		"b.hcl": `variable "b" {}`,
		"c.hcl": "locals {\n  l = \n}\n",
	})
	c, diags := config.Load(dir)
	got := format(diags, dir)
	for _, want := range []string{"a.hcl:2:", "c.hcl:2:"} {
		if !strings.Contains(got, want) {
			t.Errorf("diagnostics do not name %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "b.hcl") {
		t.Errorf("diagnostics name b.hcl, which is valid:\n%s", got)
	}
	if c == nil || c.Variables["b"] == nil {
		t.Fatalf("b.hcl was not read: %+v", c)
	}
}

// Load of a directory whose name holds a glob metacharacter must read that
// directory, not one the pattern happens to match.
func TestLoadDirectoryWithGlobMetacharacters(t *testing.T) {
	base := t.TempDir()
	for dir, src := range map[string]string{"a[b]": `variable "mine" {}`, "ab": `variable "someone_elses" {}`} {
		if err := os.Mkdir(filepath.Join(base, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(base, dir, "main.hcl"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, diags := config.Load(filepath.Join(base, "a[b]"))
	if diags.HasErrors() {
		t.Fatalf("Load: %s", config.Format(diags))
	}
	if got := sortedKeys(c.Variables); !slices.Equal(got, []string{"mine"}) {
		t.Errorf("Load(a[b]) read variables %q; want [mine]", got)
	}
}

func TestDuplicateDeclarations(t *testing.T) {
	for _, tc := range []struct {
		name   string
		a, b   string
		want   string
		winner func(*config.Config) string // what the first declaration left
	}{
		{
			name: "resource",
			a:    "resource \"net_link\" \"br0\" {\n  mtu = 1500\n}\n",
			b:    "\n\nresource \"net_link\" \"br0\" {\n  mtu = 9000\n}\n",
			want: `b.hcl:3:1: error: Duplicate resource; resource "net_link.br0" was already declared at a.hcl:1,1-26; names must be unique.`,
			winner: func(c *config.Config) string {
				return rangeString(c.Resources["net_link.br0"].Range, "")
			},
		},
		{
			name: "data source",
			a:    `data "net_link" "lo" {}`,
			b:    "# the loopback\n  data \"net_link\" \"lo\" {}",
			want: `b.hcl:2:3: error: Duplicate resource; resource "data.net_link.lo" was already declared at a.hcl:1,1-21; names must be unique.`,
			winner: func(c *config.Config) string {
				return rangeString(c.Resources["data.net_link.lo"].Range, "")
			},
		},
		{
			name: "variable",
			a:    "variable \"mtu\" {\n  default = 1500\n}\n",
			b:    "variable \"mtu\" {\n  default = 9000\n}\n",
			want: `b.hcl:1:1: error: Duplicate variable; variable "mtu" was already declared at a.hcl:1,1-15; names must be unique.`,
			winner: func(c *config.Config) string {
				return c.Variables["mtu"].Default.GoString()
			},
		},
		{
			name: "local",
			a:    "locals {\n  mtu = 1500\n}\n",
			b:    "locals {\n  other = 1\n\n    mtu = 9000\n}\n",
			want: `b.hcl:4:5: error: Duplicate local value; local value "mtu" was already declared at a.hcl:2,3-6; names must be unique.`,
			winner: func(c *config.Config) string {
				return rangeString(c.Locals["mtu"].Range, "")
			},
		},
		{
			name: "output",
			a:    "output \"index\" {\n  value = 1\n}\n",
			b:    "\noutput \"index\" {\n  value = 2\n}\n",
			want: `b.hcl:2:1: error: Duplicate output; output "index" was already declared at a.hcl:1,1-15; names must be unique.`,
			winner: func(c *config.Config) string {
				return rangeString(c.Outputs["index"].Range, "")
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeDir(t, map[string]string{"a.hcl": tc.a, "b.hcl": tc.b})
			c, diags := config.Load(dir)
			if got := format(diags, dir); got != tc.want {
				t.Errorf("diagnostics:\n got %s\nwant %s", got, tc.want)
			}
			// The first file (by name) keeps the name.
			got := strings.TrimPrefix(tc.winner(c), dir+string(filepath.Separator))
			if strings.Contains(got, "b.hcl") || strings.Contains(got, "9000") {
				t.Errorf("the second declaration replaced the first: %s", got)
			}
			// Parse reports the same thing with the names it was given.
			_, diags = config.Parse(dir, map[string]string{"b.hcl": tc.b, "a.hcl": tc.a})
			if got := config.Format(diags); got != tc.want {
				t.Errorf("Parse diagnostics:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestDuplicatesInOneFile(t *testing.T) {
	got := parseErr(t, map[string]string{"main.hcl": `
variable "x" {}
locals {
  a = 1
}
locals {
  a = 2
}
variable "x" {}
`})
	want := `main.hcl:7:3: error: Duplicate local value; local value "a" was already declared at main.hcl:4,3-4; names must be unique.
main.hcl:9:1: error: Duplicate variable; variable "x" was already declared at main.hcl:2,1-13; names must be unique.`
	if got != want {
		t.Errorf("diagnostics:\n got %s\nwant %s", got, want)
	}
	// Within one locals block, HCL itself refuses the second.
	got = parseErr(t, map[string]string{"main.hcl": "locals {\n  a = 1\n  a = 2\n}\n"})
	if !strings.HasPrefix(got, "main.hcl:3:3: error: Attribute redefined") {
		t.Errorf("diagnostics: %s", got)
	}
}

// A resource and a data source of the same type and name are different
// objects.
func TestResourceAndDataSourceDoNotCollide(t *testing.T) {
	c := parse(t, map[string]string{"main.hcl": `
resource "net_link" "br0" {}
data "net_link" "br0" {}
`})
	if c.Resources["net_link.br0"].Mode != config.Managed || c.Resources["data.net_link.br0"].Mode != config.Data {
		t.Errorf("resources = %v", sortedKeys(c.Resources))
	}
}

func TestCountAndForEach(t *testing.T) {
	c := parse(t, map[string]string{"main.hcl": `
resource "net_link" "counted" {
  count = 3
  kind  = "dummy"
}
resource "net_link" "each" {
  for_each = toset(["a", "b"])
  name     = each.key
}
`})
	counted, each := c.Resources["net_link.counted"], c.Resources["net_link.each"]
	if counted.Count == nil || counted.ForEach != nil {
		t.Errorf("counted: Count=%v ForEach=%v", counted.Count, counted.ForEach)
	}
	if v, d := counted.Count.Value(nil); d.HasErrors() || !v.RawEquals(cty.NumberIntVal(3)) {
		t.Errorf("counted: count = %#v %s", v, config.Format(d))
	}
	if each.ForEach == nil || each.Count != nil {
		t.Errorf("each: Count=%v ForEach=%v", each.Count, each.ForEach)
	}
	if got := traversalStrings(each.ForEach.Variables()); len(got) != 0 {
		t.Errorf("each: for_each refers to %q", got)
	}

	got := parseErr(t, map[string]string{"main.hcl": `resource "net_link" "both" {
  count    = 2
  for_each = {}
}
`})
	want := `main.hcl:3:3: error: Invalid combination of "count" and "for_each"; The "count" and "for_each" meta-arguments are mutually-exclusive; only one may be used.`
	if got != want {
		t.Errorf("diagnostics:\n got %s\nwant %s", got, want)
	}
	// The same holds for data sources.
	got = parseErr(t, map[string]string{"main.hcl": "data \"net_link\" \"both\" {\n  for_each = {}\n  count = 1\n}\n"})
	if !strings.HasPrefix(got, `main.hcl:2:3: error: Invalid combination of "count" and "for_each"`) {
		t.Errorf("data source diagnostics: %s", got)
	}
}

// The resource's Body is what a provider decodes: the meta-arguments are
// taken out of it.
func TestResourceBodyHoldsNoMetaArguments(t *testing.T) {
	c := parse(t, map[string]string{"main.hcl": `
resource "net_link" "br0" {
  count      = 1
  depends_on = [net_link.lo]
  name       = "br0"
  lifecycle {
    prevent_destroy = true
  }
  mtu = 1500
  vlan {
    id = 7
  }
}
resource "net_link" "lo" {}
`})
	schema := &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "name"}, {Name: "mtu"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "vlan"}},
	}
	content, diags := c.Resources["net_link.br0"].Body.Content(schema)
	if diags.HasErrors() {
		t.Fatalf("Body.Content: %s", config.Format(diags))
	}
	if got := sortedKeys(content.Attributes); !slices.Equal(got, []string{"mtu", "name"}) {
		t.Errorf("body attributes = %q", got)
	}
	if len(content.Blocks) != 1 || content.Blocks[0].Type != "vlan" {
		t.Errorf("body blocks = %+v", content.Blocks)
	}
}

func TestInvalidResourceName(t *testing.T) {
	for _, name := range []string{"", "0br", "br.0", "br 0", "-br"} {
		src := fmt.Sprintf("resource \"net_link\" %q {}\n", name)
		got := parseErr(t, map[string]string{"main.hcl": src})
		want := "main.hcl:1:21: error: Invalid resource name; A name must start with a letter or underscore and may contain only letters, digits, underscores and dashes."
		if got != want {
			t.Errorf("%q:\n got %s\nwant %s", name, got, want)
		}
	}
	for _, name := range []string{"br0", "_x", "a-b_c9", "X"} {
		parse(t, map[string]string{"main.hcl": fmt.Sprintf("resource \"net_link\" %q {}\n", name)})
	}
}

// The type label becomes part of the address as the name label does, so it
// must be held to the same rule.
func TestInvalidResourceType(t *testing.T) {
	for _, typ := range []string{"data.net_link", "net link", "0net", ""} {
		src := fmt.Sprintf("resource %q \"lo\" {}\n", typ)
		if got := parseErr(t, map[string]string{"main.hcl": src}); !strings.HasPrefix(got, "main.hcl:1:10: error: Invalid resource type") {
			t.Errorf("%q: %s", typ, got)
		}
	}
}

func TestLifecycle(t *testing.T) {
	for _, tc := range []struct {
		body string
		want config.Lifecycle
	}{
		{"", config.Lifecycle{}},
		{"lifecycle {}", config.Lifecycle{}},
		{"lifecycle {\n create_before_destroy = true\n}", config.Lifecycle{CreateBeforeDestroy: true}},
		{"lifecycle {\n prevent_destroy = true\n}", config.Lifecycle{PreventDestroy: true}},
		{"lifecycle {\n create_before_destroy = false\n prevent_destroy = false\n}", config.Lifecycle{}},
		{"lifecycle {\n ignore_changes = [mtu, name]\n}", config.Lifecycle{IgnoreChanges: []string{"mtu", "name"}}},
		// A deeper path ignores the whole attribute it starts with.
		{"lifecycle {\n ignore_changes = [labels[\"team\"], vlan[0].id]\n}", config.Lifecycle{IgnoreChanges: []string{"labels", "vlan"}}},
		{"lifecycle {\n ignore_changes = all\n}", config.Lifecycle{IgnoreChanges: []string{"all"}}},
		{"lifecycle {\n ignore_changes = []\n}", config.Lifecycle{}},
		{
			"lifecycle {\n create_before_destroy = true\n prevent_destroy = true\n ignore_changes = [mtu]\n}",
			config.Lifecycle{CreateBeforeDestroy: true, PreventDestroy: true, IgnoreChanges: []string{"mtu"}},
		},
	} {
		src := "resource \"net_link\" \"br0\" {\n  name = \"br0\"\n" + tc.body + "\n}\n"
		c := parse(t, map[string]string{"main.hcl": src})
		got := c.Resources["net_link.br0"].Lifecycle
		if got.CreateBeforeDestroy != tc.want.CreateBeforeDestroy || got.PreventDestroy != tc.want.PreventDestroy ||
			!slices.Equal(got.IgnoreChanges, tc.want.IgnoreChanges) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.body, got, tc.want)
		}
	}
}

func TestLifecycleErrors(t *testing.T) {
	for _, tc := range []struct {
		body, want string
	}{
		{"lifecycle {\n create_before_destroy = \"maybe\"\n}", "main.hcl:3:27: error: Unsuitable value type; Unsuitable value: a bool is required"},
		{"lifecycle {\n prevent_destroy = var.protect\n}", "main.hcl:3:20: error: Variables not allowed; Variables may not be used here."},
		{"lifecycle {\n ignore_changes = [\"mtu\"]\n}", "main.hcl:3:20: error: Invalid expression; A single static variable reference is required"},
		{"lifecycle {\n ignore_changes = mtu\n}", "main.hcl:3:19: error: Invalid expression; A static list expression is required."},
		{"lifecycle {\n replace_triggered_by = [\"x\"]\n}", "main.hcl:3:26: error: Invalid expression; A single static variable reference is required"},
		{"lifecycle \"x\" {}", "main.hcl:2:11: error: Extraneous label for lifecycle; No labels are expected for lifecycle blocks."},
	} {
		src := "resource \"net_link\" \"br0\" {\n" + tc.body + "\n}\n"
		got := parseErr(t, map[string]string{"main.hcl": src})
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s:\n got %s\nwant %s…", tc.body, got, tc.want)
		}
	}
}

func TestDependsOn(t *testing.T) {
	c := parse(t, map[string]string{"main.hcl": `
resource "net_link" "br0" {}
resource "net_link" "veth" {
  count = 2
}
data "net_link" "lo" {}

resource "net_route" "default" {
  depends_on = [
    net_link.br0,
    net_link.veth[1],
    data.net_link.lo,
  ]
}

output "ready" {
  value      = true
  depends_on = [net_route.default]
}
`})
	r := c.Resources["net_route.default"]
	if got, want := traversalStrings(r.DependsOn), []string{"net_link.br0", "net_link.veth[1]", "data.net_link.lo"}; !slices.Equal(got, want) {
		t.Errorf("depends_on = %q, want %q", got, want)
	}
	if got := rangeString(r.DependsOn[1].SourceRange(), ""); got != "main.hcl:11,5-21" {
		t.Errorf("depends_on[1] range = %s", got)
	}
	refs, diags := c.Refs(r.DependsOn)
	if diags.HasErrors() {
		t.Fatalf("Refs: %s", config.Format(diags))
	}
	if want := []string{"net_link.br0", "net_link.veth", "data.net_link.lo"}; !slices.Equal(refs, want) {
		t.Errorf("Refs(depends_on) = %q, want %q", refs, want)
	}
	if got := traversalStrings(c.Outputs["ready"].DependsOn); !slices.Equal(got, []string{"net_route.default"}) {
		t.Errorf("output depends_on = %q", got)
	}

	for _, tc := range []struct {
		expr, want string
	}{
		{`net_link.br0`, "main.hcl:2:16: error: Invalid expression; A static list expression is required."},
		{`["net_link.br0"]`, "main.hcl:2:17: error: Invalid expression; A single static variable reference is required"},
		{`[net_link.br0.name, upper("x")]`, "main.hcl:2:36: error: Invalid expression; A single static variable reference is required"},
	} {
		got := parseErr(t, map[string]string{"main.hcl": "resource \"net_link\" \"x\" {\n  depends_on = " + tc.expr + "\n}\n"})
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("depends_on = %s:\n got %s\nwant %s…", tc.expr, got, tc.want)
		}
	}
}

func TestVariableBlock(t *testing.T) {
	c := parse(t, map[string]string{"main.hcl": `
variable "untyped" {
  default = "x"
}
variable "port" {
  type    = number
  default = "8080"
}
variable "names" {
  type    = list(string)
  default = ["a", 1, true]
}
variable "link" {
  type = object({
    name = string
    mtu  = optional(number)
  })
  default = { name = "br0" }
}
variable "nothing" {
  default = null
}
variable "secret" {
  type      = string
  sensitive = true
  nullable  = false
}
`})
	for _, tc := range []struct {
		name    string
		typ     cty.Type
		def     cty.Value
		secret  bool
		noValue bool
	}{
		{name: "untyped", typ: cty.DynamicPseudoType, def: cty.StringVal("x")},
		{name: "port", typ: cty.Number, def: cty.NumberIntVal(8080)},
		{name: "names", typ: cty.List(cty.String), def: cty.ListVal([]cty.Value{cty.StringVal("a"), cty.StringVal("1"), cty.StringVal("true")})},
		{name: "link", typ: cty.ObjectWithOptionalAttrs(map[string]cty.Type{"name": cty.String, "mtu": cty.Number}, []string{"mtu"}),
			def: cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("br0"), "mtu": cty.NullVal(cty.Number)})},
		{name: "nothing", typ: cty.DynamicPseudoType, def: cty.NullVal(cty.DynamicPseudoType)},
		{name: "secret", typ: cty.String, secret: true, noValue: true},
	} {
		v := c.Variables[tc.name]
		if v == nil {
			t.Errorf("variable %s missing", tc.name)
			continue
		}
		if !v.Type.Equals(tc.typ) {
			t.Errorf("%s: type %s, want %s", tc.name, v.Type.GoString(), tc.typ.GoString())
		}
		if tc.noValue {
			if v.Default != cty.NilVal {
				t.Errorf("%s: default %#v, want none", tc.name, v.Default)
			}
		} else if !v.Default.RawEquals(tc.def) {
			t.Errorf("%s: default %#v, want %#v", tc.name, v.Default, tc.def)
		}
		if v.Sensitive != tc.secret {
			t.Errorf("%s: sensitive = %v", tc.name, v.Sensitive)
		}
	}
}

func TestVariableBlockErrors(t *testing.T) {
	for _, tc := range []struct {
		body, want string
	}{
		{"type = number\n default = \"many\"", `main.hcl:3:12: error: Invalid default value for variable; This default value is not compatible with the variable's type constraint: a number is required.`},
		{"type = list(string)\n default = \"a\"", `main.hcl:3:12: error: Invalid default value for variable; This default value is not compatible with the variable's type constraint: list of string required, but have string.`},
		{"type = strin", `main.hcl:2:9: error: Invalid type specification; The keyword "strin" is not a valid type specification.`},
		{"default = var.other", `main.hcl:2:12: error: Variables not allowed; Variables may not be used here.`},
		{"default = upper(\"x\")", `main.hcl:2:12: error: Function calls not allowed; Functions may not be called here.`},
		{"sensitive = \"very\"", `main.hcl:2:15: error: Unsuitable value type; Unsuitable value: a bool is required`},
		{"validation {\n condition = true\n }", `main.hcl:2:13: error: Missing required argument; The argument "error_message" is required, but no definition was found.`},
		{"value = 1", `main.hcl:2:2: error: Unsupported argument; An argument named "value" is not expected here.`},
	} {
		got := parseErr(t, map[string]string{"main.hcl": "variable \"v\" {\n " + tc.body + "\n}\n"})
		if got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.body, got, tc.want)
		}
	}
}

func TestOutputBlock(t *testing.T) {
	c := parse(t, map[string]string{"main.hcl": `
output "secret" {
  value     = "x"
  sensitive = true
}
`})
	if o := c.Outputs["secret"]; !o.Sensitive || o.Expr == nil {
		t.Errorf("output = %+v", o)
	}
	got := parseErr(t, map[string]string{"main.hcl": "output \"o\" {\n  description = \"no value\"\n}\n"})
	if want := `main.hcl:1:12: error: Missing required argument; The argument "value" is required, but no definition was found.`; got != want {
		t.Errorf("diagnostics:\n got %s\nwant %s", got, want)
	}
}

func TestUnknownBlocksAndArguments(t *testing.T) {
	for _, tc := range []struct {
		src, want string
	}{
		{"module \"m\" {}\n", `main.hcl:1:12: error: Missing required argument; The argument "source" is required, but no definition was found.`},
		{"atlas {}\n", `main.hcl:1:1: error: Unsupported block type; Blocks of type "atlas" are not expected here.`},
		{"x = 1\n", `main.hcl:1:1: error: Unsupported argument; An argument named "x" is not expected here.`},
		{"resource \"net_link\" {}\n", `main.hcl:1:21: error: Missing name for resource; All resource blocks must have 2 labels (type, name).`},
		{"locals \"l\" {}\n", `main.hcl:1:8: error: Extraneous label for locals; No labels are expected for locals blocks.`},
		{"locals {\n  nested {}\n}\n", `main.hcl:2:3: error: Unexpected "nested" block; Blocks are not allowed here.`},
	} {
		if got := parseErr(t, map[string]string{"main.hcl": tc.src}); got != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.src, got, tc.want)
		}
	}
}

func TestFormat(t *testing.T) {
	subject := hcl.Range{Filename: "main.hcl", Start: hcl.Pos{Line: 3, Column: 7, Byte: 20}, End: hcl.Pos{Line: 3, Column: 9, Byte: 22}}
	diags := hcl.Diagnostics{
		{Severity: hcl.DiagError, Summary: "Bad thing", Detail: "Fix it.", Subject: &subject},
		{Severity: hcl.DiagWarning, Summary: "Odd thing", Subject: &subject},
		{Severity: hcl.DiagError, Summary: "Nowhere", Detail: "No subject."},
	}
	want := "main.hcl:3:7: error: Bad thing; Fix it.\nmain.hcl:3:7: warning: Odd thing\nerror: Nowhere; No subject."
	if got := config.Format(diags); got != want {
		t.Errorf("Format:\n got %q\nwant %q", got, want)
	}
	if got := config.Format(nil); got != "" {
		t.Errorf("Format(nil) = %q", got)
	}
}

// A number literal is short however large it is, and so is its text as
// HCL wrote it: turning it into a string must not cost the daemon minutes
// of CPU and megabytes of memory.
func TestHugeNumberDefault(t *testing.T) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		config.Parse("/x", map[string]string{"main.hcl": "variable \"x\" {\n  type    = string\n  default = 1e9999999\n}\n"})
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Parse of a 46-byte configuration did not finish in 2s")
	}
}
