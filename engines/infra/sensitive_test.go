package infra

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestSensitiveValuesNeverReachTheJournal(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := publicDir(t)
	writeConfig(t, cfg, map[string]string{"main.hcl": fmt.Sprintf(`
variable "password" {
  sensitive = true
}
resource "file" "pw" {
  path    = "%s/pw"
  content = "pw=${var.password}"
}`, root)})
	a := e.ok("infra apply " + cfg + " auto-approve var.password=hunter2")
	if strings.Contains(a.text, "hunter2") {
		t.Fatalf("plan shows the secret:\n%s", a.text)
	}
	mustContain(t, "plan", a.text, "content = (sensitive value)") // the whole plan: testdata/plan/sensitive
	if readFile(t, filepath.Join(root, "pw")) != "pw=hunter2" {
		t.Fatal("file not written")
	}
	for _, ev := range e.events() {
		b, _ := json.Marshal(ev)
		if strings.Contains(string(b), "hunter2") {
			t.Fatalf("event %d holds the secret: %s", ev.Seq, b)
		}
	}
	show := e.ok("infra state show file.pw")
	if strings.Contains(string(show.rows[0]), "hunter2") || !strings.Contains(string(show.rows[0]), "(sensitive value)") {
		t.Fatalf("state show: %s", show.rows[0])
	}
	e.noChanges("infra plan " + cfg + " var.password=hunter2")
	a = e.ok("infra plan " + cfg + " var.password=other")
	var row planRow
	json.Unmarshal(a.rows[0], &row)
	if row.Change != 1 || strings.Contains(a.text, "other") {
		t.Fatalf("new secret: %+v\n%s", row, a.text)
	}
}

// TestASecretInForEachReachesNoEvent: a plan refused because a secret
// would name instances records nothing that holds the secret (the error
// itself is pinned in testdata/plan/count_for_each).
func TestASecretInForEachReachesNoEvent(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	writeConfig(t, cfg, map[string]string{"main.hcl": fmt.Sprintf(`
variable "secret" {
  sensitive = true
  default   = { a = "hunter2" }
}
resource "file" "x" {
  for_each = var.secret
  path = "%s/x"
}`, t.TempDir())})
	if a := e.run("infra plan " + cfg); a.err == nil || !strings.Contains(a.err.Error(), "Sensitive values") {
		t.Fatalf("for_each over a secret: %v", a.err)
	}
	for _, ev := range e.events() {
		if strings.Contains(fmt.Sprint(ev.Data), "hunter2") {
			t.Fatalf("the secret reached event %d", ev.Seq)
		}
	}
}
