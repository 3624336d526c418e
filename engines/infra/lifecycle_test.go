package infra

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// lifecycle blocks carried out by apply: prevent_destroy, and the order
// of create_before_destroy replacements (their plans are in
// testdata/plan/create_before_destroy and prevent_destroy).

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

func TestPreventDestroyBlocksADestroyingPlan(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := filepath.Join(t.TempDir(), "keep")
	writeConfig(t, cfg, map[string]string{"main.hcl": fmt.Sprintf(`
resource "directory" "keep" {
  path = %q
  lifecycle {
    prevent_destroy = true
  }
}`, root)})
	e.ok("infra apply " + cfg + " auto-approve")
	for _, stmt := range []string{"infra plan " + cfg + " destroy", "infra destroy " + cfg + " auto-approve"} {
		a := e.run(stmt)
		if a.err == nil || !strings.Contains(a.err.Error(), "directory.keep has lifecycle.prevent_destroy set") {
			t.Fatalf("%s: %v", stmt, a.err)
		}
	}
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("destroyed: %v", err)
	}
}

func TestCreateBeforeDestroyDependentOfAReplacedDependency(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := publicDir(t)
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
	e.noChanges("infra plan " + cfg + " var.d=b")
}

func TestCreateBeforeDestroyWithTheSameIDReplacesDeleteFirst(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := publicDir(t)
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
	e.noChanges("infra plan " + cfg)
}

func TestCreateBeforeDestroyPropagationEnds(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := publicDir(t)
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
	e.noChanges("infra plan " + cfg + " var.v=b")
}

func TestCreateBeforeDestroySwappedIDsReplaceDeleteFirst(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := publicDir(t)
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
	e.noChanges("infra plan " + cfg)
}
