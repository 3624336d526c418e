package infra

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// What an apply does to reality, state and the journal (the file
// provider on a real journal). What plans show is pinned in
// testdata/plan.

func TestApplyUpdatesDestroysAndReplaces(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := filepath.Join(publicDir(t), "out")
	writeConfig(t, cfg, files(root, 3, "v1"))
	e.ok("infra apply " + cfg + " auto-approve")

	// Content changes in place, one file goes away (the plan is
	// testdata/plan/update_destroy).
	writeConfig(t, cfg, files(root, 2, "v2"))
	a := e.ok("infra apply " + cfg + " auto-approve")
	mustContain(t, "apply", a.text, "Resources: 0 added, 2 changed, 1 destroyed.")
	if _, err := os.Stat(filepath.Join(root, "f2")); !os.IsNotExist(err) {
		t.Fatalf("f2 still exists: %v", err)
	}
	if got := readFile(t, filepath.Join(root, "f0")); got != "v2 0" {
		t.Fatalf("f0 = %q", got)
	}
	e.noChanges("infra plan " + cfg)

	// A path is ForceNew: the file is replaced (testdata/plan/replace).
	writeConfig(t, cfg, map[string]string{"main.hcl": fmt.Sprintf(`
resource "directory" "root" {
  path = %q
}
resource "file" "g" {
  path    = "${directory.root.path}/g"
  content = "g"
}`, root)})
	e.ok("infra apply " + cfg + " auto-approve")
	writeConfig(t, cfg, map[string]string{"main.hcl": fmt.Sprintf(`
resource "directory" "root" {
  path = %q
}
resource "file" "g" {
  path    = "${directory.root.path}/g2"
  content = "g"
}`, root)})
	a = e.ok("infra apply " + cfg + " auto-approve")
	mustContain(t, "replace", a.text, "Resources: 1 added, 0 changed, 1 destroyed.")
	if readFile(t, filepath.Join(root, "g2")) != "g" {
		t.Fatal("g2 not written")
	}
	if _, err := os.Stat(filepath.Join(root, "g")); !os.IsNotExist(err) {
		t.Fatalf("g still exists: %v", err)
	}
}

func TestFailureMidApplyIsRecordedAndReapplyConverges(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	base := t.TempDir()
	missing := filepath.Join(base, "missing")
	writeConfig(t, cfg, map[string]string{"main.hcl": fmt.Sprintf(`
resource "file" "good" {
  path    = "%s/good"
  content = "ok"
}
resource "file" "bad" {
  path    = "%s/bad"
  content = "x"
}
resource "file" "after_bad" {
  path    = "%s/after"
  content = file.bad.sha256
}`, base, missing, base)})
	a := e.run("infra apply " + cfg + " auto-approve")
	if a.err == nil {
		t.Fatal("apply into a missing directory succeeded")
	}
	mustContain(t, "error", a.err.Error(), "file.bad", "does not exist")
	mustContain(t, "output", a.text, "Error: file.bad")
	if readFile(t, filepath.Join(base, "good")) != "ok" {
		t.Fatal("the independent resource was not applied")
	}
	if _, err := os.Stat(filepath.Join(base, "after")); !os.IsNotExist(err) {
		t.Fatal("a resource depending on the failed one was applied")
	}
	creates := e.events("infra.create")
	if len(creates) != 1 || creates[0].Subject != "ws/file.good" {
		t.Fatalf("creates: %v", creates)
	}
	applies := e.events("infra.apply")
	if len(applies) != 1 || !strings.Contains(fmt.Sprint(applies[0].Data["error"]), "file.bad") {
		t.Fatalf("apply event: %v", applies)
	}
	if err := os.Mkdir(missing, 0o755); err != nil {
		t.Fatal(err)
	}
	a = e.ok("infra apply " + cfg + " auto-approve")
	mustContain(t, "re-apply", a.text, "Resources: 2 added, 0 changed, 0 destroyed.")
	e.noChanges("infra plan " + cfg)
}

func TestGoneObjectsLeaveState(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := filepath.Join(publicDir(t), "out")
	writeConfig(t, cfg, files(root, 2, "g"))
	e.ok("infra apply " + cfg + " auto-approve")

	// An orphan that is gone already.
	os.Remove(filepath.Join(root, "f1"))
	writeConfig(t, cfg, files(root, 1, "g"))
	a := e.ok("infra apply " + cfg + " auto-approve")
	mustContain(t, "apply", a.text, "file.f[1] is gone already and leaves the state")
	e.noChanges("infra plan " + cfg)
	if strings.Contains(e.ok("infra plan "+cfg).text, "deleted") {
		t.Fatal("the gone orphan is still reported")
	}

	// A destroy of something gone already.
	os.Remove(filepath.Join(root, "f0"))
	e.ok("infra destroy " + cfg + " auto-approve")
	for _, r := range e.ok("infra state list").rows {
		if strings.Contains(string(r), "file.f") {
			t.Fatalf("still in state after destroy: %s", r)
		}
	}
}

func TestDestroyTargetTakesDependentsNotDependencies(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := filepath.Join(publicDir(t), "out")
	writeConfig(t, cfg, files(root, 2, "t"))
	e.ok("infra apply " + cfg + " auto-approve")
	a := e.ok("infra destroy " + cfg + " auto-approve target=file.f[0]")
	mustContain(t, "destroy", a.text, "Resources: 1 destroyed.")
	if _, err := os.Stat(filepath.Join(root, "f1")); err != nil {
		t.Fatalf("f1: %v", err)
	}
	// What a destroy of the directory then plans: testdata/plan/targets.
	a = e.ok("infra plan " + cfg + " destroy target=directory.root")
	var row planRow
	json.Unmarshal(a.rows[0], &row)
	if row.Destroy != 2 || len(row.Changes) != 2 {
		t.Fatalf("destroy plan of the directory: %+v", row)
	}
}

func TestDestroyWithADataSourceOfAManagedResource(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := publicDir(t)
	writeConfig(t, cfg, map[string]string{"main.hcl": fmt.Sprintf(`
resource "file" "r" {
  path    = "%s/r"
  content = "r"
}
data "file" "r" {
  path = file.r.path
}
output "content" {
  value = data.file.r.content
}`, root)})
	e.ok("infra apply " + cfg + " auto-approve")
	mustContain(t, "output", string(e.ok("infra output content").rows[0]), `"value":"r"`)
	a := e.ok("infra destroy " + cfg + " auto-approve")
	mustContain(t, "destroy", a.text, "Resources: 1 destroyed.")
	if rows := e.ok("infra output").rows; len(rows) != 0 {
		t.Fatalf("outputs after destroy: %s", rows)
	}
}

func TestRebuildReproducesState(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := filepath.Join(publicDir(t), "out")
	writeConfig(t, cfg, files(root, 3, "a"))
	e.ok("infra apply " + cfg + " auto-approve")
	writeConfig(t, cfg, files(root, 2, "b"))
	e.ok("infra apply " + cfg + " auto-approve")
	before := e.projection()
	if err := e.j.Stream("audit").Rebuild(t.Context()); err != nil {
		t.Fatal(err)
	}
	after := e.projection()
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("rebuild changed the projection:\n%v\n%v", before, after)
	}
	if len(before) == 0 {
		t.Fatal("empty projection")
	}
}

func (e *env) projection() map[string]string {
	sn := e.j.Stream("audit").Snapshot()
	defer sn.Close()
	m := map[string]string{}
	if err := sn.Iter(Name, nil, nil, func(k, v []byte) error {
		m[string(k)] = string(v)
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return m
}
