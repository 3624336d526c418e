package infra

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// A root module calls a local module twice with for_each, and once more
// with count through a nested module: plans, state and outputs carry
// Terraform's module addresses, a second plan is empty, and removing a
// key destroys that instance's objects only.
func TestModulesForEachNestedAndOutputs(t *testing.T) {
	e := newEnv(t)
	root := publicDir(t)
	cfg := filepath.Join(t.TempDir(), "mods")
	writeConfig(t, filepath.Join(cfg, "modules", "site"), map[string]string{
		"main.tf": `
variable "name" {
  type = string
}
variable "dir" {}
locals {
  greeting = "hello ${var.name}"
}
resource "file" "conf" {
  path    = "${var.dir}/${var.name}.conf"
  content = local.greeting
}
module "inner" {
  source = "./inner"
  count  = 1
  path   = "${var.dir}/${var.name}.inner"
  text   = file.conf.sha256
}
output "path" {
  value = file.conf.path
}
output "inner" {
  value = module.inner[0].path
}
`})
	writeConfig(t, filepath.Join(cfg, "modules", "site", "inner"), map[string]string{
		"main.tf": `
variable "path" {}
variable "text" {}
resource "file" "f" {
  path    = var.path
  content = var.text
}
output "path" {
  value = file.f.path
}
`})
	main := func(keys string) map[string]string {
		return map[string]string{"main.tf": `
terraform {
  required_version = ">= 1.3.0"
}
module "web" {
  source   = "./modules/site"
  for_each = toset([` + keys + `])
  name     = each.key
  dir      = "` + root + `"
}
output "paths" {
  value = { for k, m in module.web : k => m.path }
}
output "inner" {
  value = module.web["a"].inner
}
resource "file" "after" {
  path       = "` + root + `/after"
  content    = "after the sites"
  depends_on = [module.web]
}
`}
	}
	writeConfig(t, cfg, main(`"a", "b"`))
	plan := e.ok("infra plan " + cfg).text
	mustContain(t, "plan", plan,
		`# module.web["a"].file.conf will be created`,
		`# module.web["b"].module.inner[0].file.f will be created`,
		"Plan: 5 to add, 0 to change, 0 to destroy.")
	e.ok("infra apply " + cfg + " auto-approve")
	if got := readFile(t, filepath.Join(root, "b.conf")); got != "hello b" {
		t.Fatalf("b.conf = %q", got)
	}
	if got := readFile(t, filepath.Join(root, "a.inner")); len(got) != 64 {
		t.Fatalf("a.inner = %q, want the sha256 of a.conf", got)
	}
	e.noChanges("infra plan " + cfg)
	list := e.ok("infra state list workspace=mods")
	var addrs []string
	for _, r := range list.rows {
		var row stateRow
		if err := json.Unmarshal(r, &row); err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, row.Addr)
	}
	want := `file.after module.web["a"].file.conf module.web["a"].module.inner[0].file.f module.web["b"].file.conf module.web["b"].module.inner[0].file.f`
	if strings.Join(addrs, " ") != want {
		t.Fatalf("state:\n got %s\nwant %s", strings.Join(addrs, " "), want)
	}
	out := e.ok("infra output paths workspace=mods")
	mustContain(t, "output", string(out.rows[0]), filepath.Join(root, "a.conf"), filepath.Join(root, "b.conf"))
	mustContain(t, "output", string(e.ok("infra output inner workspace=mods").rows[0]), filepath.Join(root, "a.inner"))

	graph := e.ok("infra graph " + cfg).text
	mustContain(t, "graph", graph, `"module.web.file.conf"`, `"module.web.module.inner.file.f" -> "module.web.module.inner"`,
		`"file.after" -> "module.web.module.inner.file.f"`)

	writeConfig(t, cfg, main(`"a"`))
	plan = e.ok("infra plan " + cfg).text
	mustContain(t, "plan", plan, `# module.web["b"].file.conf will be destroyed`, "Plan: 0 to add, 0 to change, 2 to destroy.")
	e.ok("infra apply " + cfg + " auto-approve")
	e.noChanges("infra plan " + cfg)
	e.ok("infra destroy " + cfg + " auto-approve")
	// Destroyed after what depends on the module, before the module's own.
	evs := e.events("infra.delete")
	evs = evs[len(evs)-3:] // the two before are key b's
	if evs[0].Data["addr"] != "file.after" {
		t.Fatalf("destroy order: %v first", evs[0].Data["addr"])
	}
	if n := len(e.ok("infra state list workspace=mods").rows); n != 0 {
		t.Fatalf("%d objects left after destroy", n)
	}
}

// Registry and git sources are refused by name; a missing variable and
// an argument the module does not declare are errors at the module block.
func TestModuleErrors(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "bad")
	writeConfig(t, filepath.Join(cfg, "m"), map[string]string{"main.tf": `variable "x" {}`})
	for _, tc := range []struct{ src, want string }{
		{`module "vpc" {
  source  = "terraform-aws-modules/vpc/aws"
  version = "5.0.0"
}`, `Module source "terraform-aws-modules/vpc/aws" is not a local path (./ or ../): cairn fetches nothing from the network`},
		{`module "g" {
  source = "git::https://example.com/m.git"
}`, `Module not installed`},
		{`module "m" {
  source = "./m"
}`, `No value for required variable; Variable "x" has no default; set x in the module "m" block.`},
		{`module "m" {
  source = "./m"
  x      = 1
  y      = 2
}`, `Unsupported argument; An argument named "y" is not expected here: module.m (./m) declares no variable "y".`},
		{`module "m" {
  source = "./nowhere"
}`, `module.m (source "./nowhere")`},
		{`module "again" {
  source = "./"
}`, `Module nesting too deep; Modules are nested more than 16 deep`},
	} {
		writeConfig(t, cfg, map[string]string{"main.tf": tc.src})
		a := e.run("infra plan " + cfg)
		if a.err == nil || !strings.Contains(a.err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant …%s…", tc.src, a.err, tc.want)
		}
	}
}

// target= takes a module, a module instance or a resource in one.
func TestTargetModules(t *testing.T) {
	e := newEnv(t)
	root := publicDir(t)
	cfg := filepath.Join(root, "tgt")
	writeConfig(t, filepath.Join(cfg, "m"), map[string]string{"main.tf": `
variable "n" {}
resource "file" "f" {
  path    = "` + root + `/${var.n}"
  content = var.n
}`})
	writeConfig(t, cfg, map[string]string{"main.tf": `
module "m" {
  source   = "./m"
  for_each = toset(["a", "b"])
  n        = each.key
}
resource "file" "top" {
  path    = "` + root + `/top"
  content = "top"
}`})
	plan := e.ok(`infra plan ` + cfg + ` target='module.m["a"]'`).text
	mustContain(t, "plan", plan, `# module.m["a"].file.f will be created`, "Plan: 1 to add, 0 to change, 0 to destroy.")
	plan = e.ok("infra plan " + cfg + " target=module.m").text
	mustContain(t, "plan", plan, "Plan: 2 to add, 0 to change, 0 to destroy.")
	e.ok(`infra apply ` + cfg + ` target='module.m["b"].file.f' auto-approve`)
	if readFile(t, filepath.Join(root, "b")) != "b" {
		t.Fatal("the targeted file was not made")
	}
	mustContain(t, "plan", e.ok("infra plan "+cfg).text, "Plan: 2 to add, 0 to change, 0 to destroy.")
}

// Terraform's JSON syntax (*.tf.json) is read with the native syntax.
func TestTFJSONFiles(t *testing.T) {
	e := newEnv(t)
	root := publicDir(t)
	cfg := filepath.Join(root, "json")
	writeConfig(t, cfg, map[string]string{
		"main.tf.json": `{
  "variable": {"who": {"default": "json"}},
  "resource": {"local_file": {"hello": {"filename": "` + root + `/hello", "content": "hi ${var.who}"}}},
  "output": {"sha": {"value": "${local_file.hello.content_sha1}"}}
}`,
		"more.tf": `resource "null_resource" "n" {
  triggers = { f = local_file.hello.id }
}`,
	})
	e.ok("infra apply " + cfg + " auto-approve")
	if readFile(t, filepath.Join(root, "hello")) != "hi json" {
		t.Fatal("the JSON configuration was not applied")
	}
	e.noChanges("infra plan " + cfg)
}

// A registry module terraform init already downloaded is read from
// .terraform/modules, as modules.json names it; nothing is fetched.
func TestInstalledRegistryModule(t *testing.T) {
	e := newEnv(t)
	root := publicDir(t)
	cfg := filepath.Join(root, "installed")
	writeConfig(t, filepath.Join(cfg, ".terraform", "modules", "label"), map[string]string{"main.tf": `
variable "name" {}
output "id" {
  value = "label-${var.name}"
}`})
	writeConfig(t, filepath.Join(cfg, ".terraform", "modules"), map[string]string{"modules.json": `{"Modules":[{"Key":"","Source":"","Dir":"."},{"Key":"label","Source":"registry.terraform.io/cloudposse/label/null","Version":"0.25.0","Dir":".terraform/modules/label"}]}`})
	writeConfig(t, cfg, map[string]string{"main.tf": `
module "label" {
  source  = "cloudposse/label/null"
  version = "0.25.0"
  name    = "app"
}
resource "terraform_data" "t" {
  input = module.label.id
}
output "id" {
  value = module.label.id
}`})
	mustContain(t, "init", e.ok("infra init "+cfg).text, "- label in .terraform/modules/label")
	a := e.ok("infra apply " + cfg + " auto-approve")
	mustContain(t, "apply", a.text, "Apply complete! Resources: 1 added")
	mustContain(t, "output", string(e.ok("infra output id workspace=installed").rows[0]), "label-app")
}
