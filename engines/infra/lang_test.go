package infra

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestForEachDataSourcesAndReadDuringApply(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := publicDir(t)
	seed := filepath.Join(root, "seed")
	if err := os.WriteFile(seed, []byte("from seed"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, cfg, map[string]string{
		"vars.hcl": `variable "hosts" {
  type    = map(string)
  default = { web = "10.0.0.0/24", db = "10.1.0.0/24" }
}`,
		"main.hcl": fmt.Sprintf(`
data "file" "seed" {
  path = %q
}
resource "file" "host" {
  for_each = var.hosts
  path     = "%s/${each.key}"
  content  = "${data.file.seed.content} ${each.key} ${cidrhost(each.value, 1)}"
}
data "file" "web" {
  path = file.host["web"].path
}
resource "file" "copy" {
  path    = "%s/copy"
  content = upper(data.file.web.content)
}
output "gateways" {
  value = { for k, v in var.hosts : k => cidrhost(v, 1) }
}`, seed, root, root)})
	// The plans themselves: testdata/plan/data_sources.
	row := e.planRow("infra plan " + cfg)
	if row.Add != 3 || len(row.Changes) != 4 || row.Changes[0].Addr != "data.file.web" || row.Changes[0].Action != Read ||
		fmt.Sprint(row.Outputs) != "map[gateways:map[db:10.1.0.1 web:10.0.0.1]]" {
		t.Fatalf("plan: %+v", row)
	}
	e.ok("infra apply " + cfg + " auto-approve")
	if got := readFile(t, filepath.Join(root, "copy")); got != "FROM SEED WEB 10.0.0.1" {
		t.Fatalf("copy = %q", got)
	}
	e.noChanges("infra plan " + cfg)
	// A key removed from the map destroys its instance only.
	row = e.planRow("infra plan " + cfg + ` var.hosts='{web="10.0.0.0/24"}'`)
	if row.Destroy != 1 || len(row.Changes) != 1 || row.Changes[0].Addr != `file.host["db"]` || row.Changes[0].Action != Delete {
		t.Fatalf("plan without db: %+v", row)
	}
}

func TestLifecycleIgnoreChangesAndCreateBeforeDestroy(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := publicDir(t)
	conf := func(content, name string) map[string]string {
		return map[string]string{"main.hcl": fmt.Sprintf(`
resource "file" "ignored" {
  path    = "%s/ignored"
  content = %q
  lifecycle {
    ignore_changes = [content]
  }
}
resource "file" "cbd" {
  path    = "%s/%s"
  content = "x"
  lifecycle {
    create_before_destroy = true
  }
}`, root, content, root, name)}
	}
	writeConfig(t, cfg, conf("first", "a"))
	e.ok("infra apply " + cfg + " auto-approve")
	writeConfig(t, cfg, conf("second", "b"))
	// ignore_changes holds, and cbd is replaced create first (+/-; the
	// plans: testdata/plan/ignore_changes and create_before_destroy).
	if row := e.planRow("infra plan " + cfg); len(row.Changes) != 1 || row.Changes[0].Addr != "file.cbd" || row.Changes[0].Action != ReplaceCBD {
		t.Fatalf("plan: %+v", row)
	}
	a := e.ok("infra apply " + cfg + " auto-approve")
	create := strings.Index(a.text, "file.cbd: Creation complete")
	destroy := strings.Index(a.text, "file.cbd: Destruction complete")
	if create < 0 || destroy < 0 || create > destroy {
		t.Fatalf("create_before_destroy order:\n%s", a.text)
	}
	if readFile(t, filepath.Join(root, "ignored")) != "first" {
		t.Fatal("an ignored change was applied")
	}
	// A change made by hand to an ignored attribute is no drift either.
	os.WriteFile(filepath.Join(root, "ignored"), []byte("by hand"), 0o644)
	e.noChanges("infra plan " + cfg)
}

func TestTargetReplaceWorkspaceAndGraph(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := filepath.Join(publicDir(t), "out")
	writeConfig(t, cfg, files(root, 3, "t"))
	a := e.ok("infra apply " + cfg + " auto-approve target=file.f[1]")
	mustContain(t, "targeted apply", a.text, "Resources: 2 added", "Resource targeting is in effect")
	if _, err := os.Stat(filepath.Join(root, "f0")); !os.IsNotExist(err) {
		t.Fatal("an untargeted resource was created")
	}
	if a := e.run("infra plan " + cfg + " target=file.nope"); a.err == nil {
		t.Fatal("target of nothing accepted")
	}
	e.ok("infra apply " + cfg + " auto-approve")
	row := e.planRow("infra plan " + cfg + " replace=file.f[2]")
	if len(row.Changes) != 1 || row.Changes[0].Addr != "file.f[2]" || row.Changes[0].Action != Replace || row.Changes[0].Reason != "replacement was requested (replace=)" {
		t.Fatalf("replace plan: %+v", row)
	}

	// The same directory under another workspace is another state.
	if row := e.planRow("infra plan " + cfg + " workspace=other"); row.Add != 4 || row.Workspace != "other" {
		t.Fatalf("other workspace: %+v", row)
	}
	if a := e.run("infra state list"); a.err != nil {
		t.Fatalf("one workspace with state: %v", a.err)
	}

	g := e.ok("infra graph " + cfg).text
	mustContain(t, "graph", g, "digraph {", `"file.f" -> "directory.root"`, `"file.f" -> "local.names"`, `"output.paths" -> "file.f"`)
}

func TestImportAndGraphWithoutPath(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := publicDir(t)
	writeConfig(t, cfg, map[string]string{"main.hcl": fmt.Sprintf(`
resource "file" "a" {
  path    = "%s/a"
  content = "a"
}
resource "file" "b" {
  path    = "%s/b"
  content = file.a.sha256
}`, root, root)})
	if a := e.run("infra graph"); a.err == nil {
		t.Fatal("graph without PATH and without any workspace answered")
	}
	e.ok("infra apply " + cfg + " auto-approve target=file.a")
	mustContain(t, "graph", e.ok("infra graph").text, `"file.b" -> "file.a"`)
	b := filepath.Join(root, "b")
	sum := sha256.Sum256([]byte("a"))
	if err := os.WriteFile(b, []byte(hex.EncodeToString(sum[:])), 0o644); err != nil {
		t.Fatal(err)
	}
	e.ok("infra import file.b " + b) // no PATH: the workspace's directory
	e.noChanges("infra plan " + cfg)
}
