package infra

import (
	"fmt"
	"path/filepath"
	"testing"
)

func TestCountAddedAndRemovedMovesState(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := publicDir(t)
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
	// The plans of the moves: testdata/plan/moves.
	e.ok("infra apply " + cfg + " auto-approve")
	if readFile(t, filepath.Join(root, "b")) != "b" {
		t.Fatal("the file was lost")
	}
	e.noChanges("infra plan " + cfg)
	mustContain(t, "state", string(e.ok("infra state show file.b[0]").rows[0]), `"id":"`+filepath.Join(root, "b"))
	writeConfig(t, cfg, conf(""))
	e.ok("infra apply " + cfg + " auto-approve")
	e.noChanges("infra plan " + cfg)
	mustContain(t, "state", string(e.ok("infra state show file.b").rows[0]), `"id":"`+filepath.Join(root, "b"))
	before := e.projection()
	if err := e.j.Stream("audit").Rebuild(t.Context()); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(before) != fmt.Sprint(e.projection()) {
		t.Fatal("rebuild after moves differs")
	}
}
