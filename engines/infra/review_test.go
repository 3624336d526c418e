package infra

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runWithin runs stmt and fails the test if it takes longer than d (a hung
// apply holds the workspace forever).
func (e *env) runWithin(d time.Duration, stmt string) answer {
	e.t.Helper()
	done := make(chan answer, 1)
	go func() { done <- e.run(stmt) }()
	select {
	case a := <-done:
		return a
	case <-time.After(d):
		e.t.Fatalf("%s did not return within %v", stmt, d)
	}
	return answer{}
}

func TestCreateBeforeDestroyDependentOfAReplacedDependency(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := t.TempDir()
	writeConfig(t, cfg, map[string]string{"main.hcl": fmt.Sprintf(`
variable "d" {
  default = "a"
}
resource "directory" "d" {
  path = "%s/${var.d}"
}
resource "file" "f" {
  path    = "${directory.d.path}/x"
  content = "x"
  lifecycle {
    create_before_destroy = true
  }
}`, root)})
	e.ok("infra apply " + cfg + " auto-approve")
	a := e.runWithin(20*time.Second, "infra apply "+cfg+" auto-approve var.d=b")
	if a.err != nil {
		t.Fatalf("%v\n%s", a.err, a.text)
	}
	mustContain(t, "apply", a.text, "+/- resource \"directory\" \"d\"", "Resources: 2 added, 0 changed, 2 destroyed.")
	if readFile(t, filepath.Join(root, "b", "x")) != "x" {
		t.Fatal("b/x missing")
	}
	if _, err := os.Stat(filepath.Join(root, "a")); !os.IsNotExist(err) {
		t.Fatal("a is still there")
	}
	mustContain(t, "plan", e.ok("infra plan "+cfg+" var.d=b").text, "No changes.")
}

func TestCountAddedAndRemovedMovesState(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := t.TempDir()
	conf := func(count string) map[string]string {
		return map[string]string{"main.hcl": fmt.Sprintf(`
resource "file" "b" {
  %s
  path    = "%s/b"
  content = "b"
}`, count, root)}
	}
	writeConfig(t, cfg, conf(""))
	e.ok("infra apply " + cfg + " auto-approve")
	writeConfig(t, cfg, conf("count = 1"))
	a := e.ok("infra plan " + cfg)
	mustContain(t, "plan", a.text, "# file.b has moved to file.b[0]", "Plan: 0 to add, 0 to change, 0 to destroy.")
	e.ok("infra apply " + cfg + " auto-approve")
	if readFile(t, filepath.Join(root, "b")) != "b" {
		t.Fatal("the file was lost")
	}
	mustContain(t, "plan after the move", e.ok("infra plan "+cfg).text, "No changes.")
	mustContain(t, "state", string(e.ok("infra state show file.b[0]").rows[0]), `"id":"`+filepath.Join(root, "b"))
	writeConfig(t, cfg, conf(""))
	mustContain(t, "plan back", e.ok("infra plan "+cfg).text, "# file.b[0] has moved to file.b")
	e.ok("infra apply " + cfg + " auto-approve")
	mustContain(t, "plan after moving back", e.ok("infra plan "+cfg).text, "No changes.")
	before := e.projection()
	if err := e.j.Stream("audit").Rebuild(t.Context()); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(before) != fmt.Sprint(e.projection()) {
		t.Fatal("rebuild after moves differs")
	}
}

func TestDestroyTargetTakesDependentsNotDependencies(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := filepath.Join(t.TempDir(), "out")
	writeConfig(t, cfg, files(root, 2, "t"))
	e.ok("infra apply " + cfg + " auto-approve")
	a := e.ok("infra destroy " + cfg + " auto-approve target=file.f[0]")
	mustContain(t, "destroy", a.text, "Resources: 1 destroyed.")
	if _, err := os.Stat(filepath.Join(root, "f1")); err != nil {
		t.Fatalf("f1: %v", err)
	}
	a = e.ok("infra plan " + cfg + " destroy target=directory.root")
	mustContain(t, "destroy plan of the directory", a.text, "# file.f[1] will be destroyed", "# directory.root will be destroyed", "Plan: 0 to add, 0 to change, 2 to destroy.")
}

func TestBadCountAndForEachAreErrorsNotPanics(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := t.TempDir()
	for _, c := range []struct{ meta, want string }{
		{`for_each = toset(["a", null])`, "must not contain null"},
		{`count = 1e18`, "count must be a whole number from 0 to"},
		{`count = -1`, "count must be a whole number from 0 to"},
		{`for_each = ["a", "b"]`, "for_each must be a map, or a set of strings"},
		{`for_each = var.secret`, "Sensitive values"},
	} {
		writeConfig(t, cfg, map[string]string{"main.hcl": fmt.Sprintf(`
variable "secret" {
  sensitive = true
  default   = { a = "hunter2" }
}
resource "file" "x" {
  %s
  path = "%s/x"
}`, c.meta, root)})
		a := e.run("infra plan " + cfg)
		if a.err == nil || !strings.Contains(a.err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.meta, a.err, c.want)
		}
		for _, ev := range e.events() {
			if strings.Contains(fmt.Sprint(ev.Data), "hunter2") {
				t.Fatalf("the secret reached event %d", ev.Seq)
			}
		}
	}
	writeConfig(t, cfg, map[string]string{"main.hcl": fmt.Sprintf(`
resource "file" "x" {
  count = "2"
  path  = "%s/${count.index}"
}`, root)})
	mustContain(t, "count as a string", e.ok("infra plan "+cfg).text, "Plan: 2 to add")
}

func TestCreateBeforeDestroyWithTheSameIDReplacesDeleteFirst(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := t.TempDir()
	writeConfig(t, cfg, map[string]string{"main.hcl": fmt.Sprintf(`
resource "file" "same" {
  path    = "%s/same"
  content = "v"
  lifecycle {
    create_before_destroy = true
  }
}`, root)})
	e.ok("infra apply " + cfg + " auto-approve")
	a := e.ok("infra apply " + cfg + " auto-approve replace=file.same")
	mustContain(t, "replace", a.text, "-/+ resource \"file\" \"same\"", "create_before_destroy cannot apply")
	if readFile(t, filepath.Join(root, "same")) != "v" {
		t.Fatal("the object is gone")
	}
	mustContain(t, "plan", e.ok("infra plan "+cfg).text, "No changes.")
}

func TestDestroyWithADataSourceOfAManagedResource(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := t.TempDir()
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

func TestCreateBeforeDestroyPropagationEnds(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := t.TempDir()
	writeConfig(t, cfg, map[string]string{"main.hcl": fmt.Sprintf(`
variable "v" {
  default = "a"
}
resource "directory" "y" {
  path = "%s/y"
}
resource "directory" "x" {
  path = "${directory.y.path}/${var.v}"
}
resource "file" "c0" {
  path    = "${directory.x.path}/f"
  content = "c"
  lifecycle {
    create_before_destroy = true
  }
}`, root)})
	e.ok("infra apply " + cfg + " auto-approve")
	a := e.runWithin(20*time.Second, "infra apply "+cfg+" auto-approve var.v=b replace=directory.y")
	if a.err != nil {
		t.Fatalf("%v\n%s", a.err, a.text)
	}
	mustContain(t, "apply", a.text, "create_before_destroy cannot apply")
	if readFile(t, filepath.Join(root, "y", "b", "f")) != "c" {
		t.Fatal("y/b/f missing")
	}
	mustContain(t, "plan", e.ok("infra plan "+cfg+" var.v=b").text, "No changes.")
}

func TestCreateBeforeDestroySwappedIDsReplaceDeleteFirst(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := t.TempDir()
	conf := func(pa, pb string) map[string]string {
		return map[string]string{"main.hcl": fmt.Sprintf(`
resource "file" "a" {
  path    = "%s/%s"
  content = "a"
  lifecycle {
    create_before_destroy = true
  }
}
resource "file" "b" {
  path    = "%s/%s"
  content = "b"
  lifecycle {
    create_before_destroy = true
  }
}`, root, pa, root, pb)}
	}
	writeConfig(t, cfg, conf("p", "q"))
	e.ok("infra apply " + cfg + " auto-approve")
	writeConfig(t, cfg, conf("q", "p"))
	a := e.ok("infra apply " + cfg + " auto-approve")
	mustContain(t, "swap", a.text, "Resources: 2 added, 0 changed, 2 destroyed.")
	if readFile(t, filepath.Join(root, "p")) != "b" || readFile(t, filepath.Join(root, "q")) != "a" {
		t.Fatal("not swapped")
	}
	mustContain(t, "plan", e.ok("infra plan "+cfg).text, "No changes.")
}

func TestGoneObjectsLeaveState(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := filepath.Join(t.TempDir(), "out")
	writeConfig(t, cfg, files(root, 2, "g"))
	e.ok("infra apply " + cfg + " auto-approve")

	// An orphan that is gone already.
	os.Remove(filepath.Join(root, "f1"))
	writeConfig(t, cfg, files(root, 1, "g"))
	a := e.ok("infra apply " + cfg + " auto-approve")
	mustContain(t, "apply", a.text, "file.f[1] is gone already and leaves the state")
	mustContain(t, "plan", e.ok("infra plan "+cfg).text, "No changes.")
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

func TestStateShowAtFollowsMoves(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := t.TempDir()
	conf := func(count string) map[string]string {
		return map[string]string{"main.hcl": fmt.Sprintf(`
resource "file" "b" {
  %s
  path    = "%s/b"
  content = "b"
}`, count, root)}
	}
	writeConfig(t, cfg, conf(""))
	e.ok("infra apply " + cfg + " auto-approve")
	before := e.j.Stream("audit").DurableSeq()
	writeConfig(t, cfg, conf("count = 1"))
	e.ok("infra apply " + cfg + " auto-approve")
	last := e.j.Stream("audit").DurableSeq()
	mustContain(t, "new address", string(e.ok(fmt.Sprintf("infra state show file.b[0] at=%d", last)).rows[0]), `"addr":"file.b[0]"`)
	if a := e.run(fmt.Sprintf("infra state show file.b at=%d", last)); a.err == nil || !strings.Contains(a.err.Error(), "had moved to file.b[0]") {
		t.Fatalf("old address after the move: %v", a.err)
	}
	mustContain(t, "old address before the move", string(e.ok(fmt.Sprintf("infra state show file.b at=%d", before)).rows[0]), `"addr":"file.b"`)
}
