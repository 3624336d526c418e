package infra

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// moved blocks move state into and out of modules, so nothing is
// destroyed and made again; removed blocks take an object out of state
// without destroying it; import blocks bring an existing object in.
func TestMovedRemovedImportBlocks(t *testing.T) {
	e := newEnv(t)
	root := publicDir(t)
	cfg := filepath.Join(t.TempDir(), "blocks")
	writeConfig(t, filepath.Join(cfg, "mod"), map[string]string{"main.tf": `
variable "path" {}
resource "file" "f" {
  path    = var.path
  content = "x"
}`})
	writeConfig(t, cfg, map[string]string{"main.tf": `
resource "file" "a" {
  path    = "` + root + `/a"
  content = "x"
}`})
	e.ok("infra apply " + cfg + " auto-approve")

	// Into a module, keyed by for_each.
	writeConfig(t, cfg, map[string]string{"main.tf": `
module "m" {
  source   = "./mod"
  for_each = { one = "` + root + `/a" }
  path     = each.value
}
moved {
  from = file.a
  to   = module.m["one"].file.f
}`})
	plan := e.ok("infra plan " + cfg).text
	mustContain(t, "plan", plan, `# file.a has moved to module.m["one"].file.f`)
	if strings.Contains(plan, "will be created") || strings.Contains(plan, "destroyed") {
		t.Fatalf("a move that makes or destroys:\n%s", plan)
	}
	e.ok("infra apply " + cfg + " auto-approve")
	e.noChanges("infra plan " + cfg)
	e.ok(`infra state show 'module.m["one"].file.f' workspace=blocks`)

	// A whole module instance moves to another call.
	writeConfig(t, cfg, map[string]string{"main.tf": `
module "n" {
  source = "./mod"
  path   = "` + root + `/a"
}
moved {
  from = module.m["one"]
  to   = module.n
}`})
	mustContain(t, "plan", e.ok("infra plan "+cfg).text, `# module.m["one"].file.f has moved to module.n.file.f`)
	e.ok("infra apply " + cfg + " auto-approve")
	e.noChanges("infra plan " + cfg)

	// removed with destroy = false: out of state, the file stays.
	writeConfig(t, cfg, map[string]string{"main.tf": `
removed {
  from = module.n
  lifecycle {
    destroy = false
  }
}`})
	mustContain(t, "plan", e.ok("infra plan "+cfg).text, "# module.n.file.f will no longer be managed by cairn (it is not destroyed)")
	e.ok("infra apply " + cfg + " auto-approve")
	if readFile(t, filepath.Join(root, "a")) != "x" {
		t.Fatal("removed destroyed the file")
	}
	if n := len(e.ok("infra state list workspace=blocks").rows); n != 0 {
		t.Fatalf("%d objects in state after removed", n)
	}

	// import brings it back, and the plan says what it changes of it.
	writeConfig(t, cfg, map[string]string{"main.tf": `
resource "file" "back" {
  path    = "` + root + `/a"
  content = "y"
}
import {
  to = file.back
  id = "` + root + `/a"
}`})
	plan = e.ok("infra plan " + cfg).text
	mustContain(t, "plan", plan, "# file.back will be imported [id="+root+"/a], then:", "Plan: 1 to import, 0 to add, 1 to change, 0 to destroy.")
	mustContain(t, "apply", e.ok("infra apply "+cfg+" auto-approve").text, "Apply complete! Resources: 1 imported, 0 added, 1 changed, 0 destroyed.")
	if readFile(t, filepath.Join(root, "a")) != "y" {
		t.Fatal("the imported file was not updated")
	}
	e.noChanges("infra plan " + cfg)
	if len(e.events("infra.import")) != 1 {
		t.Fatal("no infra.import event")
	}

	// An import of nothing is Terraform's error.
	writeConfig(t, cfg, map[string]string{"main.tf": `
resource "file" "none" {
  path = "` + root + `/none"
}
import {
  to = file.none
  id = "` + root + `/none"
}`})
	a := e.run("infra plan " + cfg)
	if a.err == nil || !strings.Contains(a.err.Error(), "Cannot import non-existent remote object") {
		t.Fatalf("import of nothing: %v", a.err)
	}
}

// Preconditions and postconditions fail with Terraform's summaries and
// the configuration's error_message; a failing check block warns.
func TestConditionsAndChecks(t *testing.T) {
	e := newEnv(t)
	root := publicDir(t)
	cfg := filepath.Join(t.TempDir(), "conds")
	conf := func(n, content string) map[string]string {
		return map[string]string{"main.tf": `
variable "n" {
  type    = number
  default = ` + n + `
  validation {
    condition     = var.n >= 0
    error_message = "n must not be negative."
  }
}
resource "file" "f" {
  path    = "` + root + `/f"
  content = "` + content + `"
  lifecycle {
    precondition {
      condition     = var.n < 10
      error_message = "n must be below 10, not ${var.n}."
    }
    postcondition {
      condition     = self.sha256 != sha256("forbidden")
      error_message = "The file must not say forbidden."
    }
  }
}
check "small" {
  assert {
    condition     = length(file.f.content) < 5
    error_message = "The content is long."
  }
}
`}
	}
	writeConfig(t, cfg, conf("12", "ok"))
	a := e.run("infra plan " + cfg)
	if a.err == nil || !strings.Contains(a.err.Error(), "error: Resource precondition failed; n must be below 10, not 12.") {
		t.Fatalf("precondition: %v", a.err)
	}
	writeConfig(t, cfg, conf("-1", "ok"))
	a = e.run("infra plan " + cfg)
	if a.err == nil || !strings.Contains(a.err.Error(), "Invalid value for variable; n must not be negative.") {
		t.Fatalf("validation: %v", a.err)
	}
	writeConfig(t, cfg, conf("1", "forbidden"))
	a = e.run("infra apply " + cfg + " auto-approve")
	if a.err == nil || !strings.Contains(a.err.Error(), "Resource postcondition failed; The file must not say forbidden.") {
		t.Fatalf("postcondition: %v\n%s", a.err, a.text)
	}
	// Checked at plan time once known: the file is there now.
	a = e.run("infra plan " + cfg)
	if a.err == nil || !strings.Contains(a.err.Error(), "Resource postcondition failed") {
		t.Fatalf("postcondition at plan: %v", a.err)
	}
	writeConfig(t, cfg, conf("1", "longer than five"))
	a = e.ok("infra apply " + cfg + " auto-approve")
	mustContain(t, "apply", a.text, "Warning: Check block assertion failed: check.small", "The content is long.")
	if _, err := os.Stat(filepath.Join(root, "f")); err != nil {
		t.Fatal(err)
	}
}
