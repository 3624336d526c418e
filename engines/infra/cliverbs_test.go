package infra

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// infra fmt formats as terraform fmt (hclwrite); check changes nothing
// and fails; init lists modules and providers; show prints state; state
// mv and state rm move and forget objects, nothing outside cairn changes.
func TestTerraformCLIHabits(t *testing.T) {
	e := newEnv(t)
	root := publicDir(t)
	cfg := filepath.Join(root, "cli")
	writeConfig(t, filepath.Join(cfg, "m"), map[string]string{"main.tf": `
variable "p" {}
resource "local_file" "f" {
  filename = var.p
  content  = "m"
}`})
	ugly := "resource \"local_file\"   \"a\" {\nfilename = \"" + root + "/a\"\n    content=\"a\"\n}\nmodule \"m\" {\n  source = \"./m\"\n  p = \"" + root + "/m\"\n}\n"
	writeConfig(t, cfg, map[string]string{"main.tf": ugly})

	a := e.run("infra fmt " + cfg + " check")
	if a.err == nil || !strings.Contains(a.text, "main.tf") {
		t.Fatalf("fmt check: %v\n%s", a.err, a.text)
	}
	if readFile(t, filepath.Join(cfg, "main.tf")) != ugly {
		t.Fatal("fmt check changed the file")
	}
	e.ok("infra fmt " + cfg + " recursive")
	got := readFile(t, filepath.Join(cfg, "main.tf"))
	mustContain(t, "formatted", got, "resource \"local_file\" \"a\" {\n  filename = ", "  content  = \"a\"\n", "  p      = ")
	e.ok("infra fmt " + cfg + " check recursive")

	init := e.ok("infra init " + cfg).text
	mustContain(t, "init", init, "- m in m", "- registry.terraform.io/hashicorp/local is built in to cairn", "cairn has been successfully initialized!")

	e.ok("infra apply " + cfg + " auto-approve")
	show := e.ok("infra show workspace=cli").text
	mustContain(t, "show", show, "# local_file.a:", `resource "local_file" "a" {`, `    content              = "a"`, `# module.m.local_file.f:`)

	e.ok("infra state mv local_file.a local_file.b workspace=cli")
	e.ok("infra state show local_file.b workspace=cli")
	e.ok("infra state rm module.m workspace=cli")
	if n := len(e.ok("infra state list workspace=cli").rows); n != 1 {
		t.Fatalf("%d objects after state rm, want 1", n)
	}
	if _, err := os.Stat(filepath.Join(root, "m")); err != nil {
		t.Fatalf("state rm destroyed the file: %v", err)
	}
	if a := e.run("infra state rm module.nope workspace=cli"); a.err == nil {
		t.Fatal("state rm of nothing succeeded")
	}
}

// refresh-only shows what changed outside cairn and, applied, records it
// in state without changing anything.
func TestRefreshOnly(t *testing.T) {
	e := newEnv(t)
	root := publicDir(t)
	cfg := filepath.Join(root, "ro")
	writeConfig(t, cfg, map[string]string{"main.tf": `
resource "file" "f" {
  path    = "` + root + `/f"
  content = "a"
}`})
	e.ok("infra apply " + cfg + " auto-approve")
	if err := os.WriteFile(filepath.Join(root, "f"), []byte("by hand"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := e.ok("infra plan " + cfg + " refresh-only").text
	mustContain(t, "refresh-only plan", out, "# file.f has changed", `~ content = "a" -> "by hand"`, "This is a refresh-only plan")
	e.ok("infra apply " + cfg + " refresh-only auto-approve")
	if readFile(t, filepath.Join(root, "f")) != "by hand" {
		t.Fatal("refresh-only changed the file")
	}
	if got := e.stateAttrs("ro", "file.f")["content"]; got != "by hand" {
		t.Fatalf("state content %v", got)
	}
	mustContain(t, "plan", e.ok("infra plan "+cfg).text, `~ content = "by hand" -> "a"`)
}
