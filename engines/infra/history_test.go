package infra

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStateShowAtAnswersFromHistory(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := filepath.Join(publicDir(t), "out")
	writeConfig(t, cfg, files(root, 1, "old"))
	e.ok("infra apply " + cfg + " auto-approve")
	seq := e.j.Stream("audit").DurableSeq()
	between := time.Now().UTC()
	time.Sleep(10 * time.Millisecond)
	writeConfig(t, cfg, files(root, 1, "new"))
	e.ok("infra apply " + cfg + " auto-approve")

	now := e.ok("infra state show file.f[0]")
	mustContain(t, "state now", string(now.rows[0]), `"content":"new 0"`)
	then := e.ok(fmt.Sprintf("infra state show file.f[0] at=%d", seq))
	mustContain(t, "state then", string(then.rows[0]), `"content":"old 0"`)
	byTime := e.ok("infra state show file.f[0] at=" + between.Format(time.RFC3339Nano))
	mustContain(t, "state at a time", string(byTime.rows[0]), `"content":"old 0"`)
	if a := e.run("infra state show file.f[0] at=1"); a.err == nil {
		t.Fatal("state before the first apply answered")
	}
	list := e.ok("infra state list")
	if len(list.rows) != 2 {
		t.Fatalf("state list: %s", list.rows)
	}
}

func TestStateShowAtFollowsMoves(t *testing.T) {
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
