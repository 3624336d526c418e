package infra

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/journal"
)

// files is a configuration of the file provider rooted at root.
func files(root string, n int, content string) map[string]string {
	return map[string]string{
		"main.hcl": fmt.Sprintf(`
variable "root" {
  default = %q
}
variable "n" {
  type    = number
  default = %d
}
locals {
  names = [for i in range(var.n) : "f${i}"]
}
resource "directory" "root" {
  path = var.root
}
resource "file" "f" {
  count   = var.n
  path    = "${directory.root.path}/${local.names[count.index]}"
  content = "%s ${count.index}"
}
output "paths" {
  value = file.f[*].path
}
`, root, n, content),
	}
}

func TestPlanApplyThenNoChanges(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "web")
	root := filepath.Join(t.TempDir(), "out")
	writeConfig(t, cfg, files(root, 2, "hello"))

	a := e.ok("infra plan " + cfg)
	mustContain(t, "first plan", a.text, "Plan: 3 to add, 0 to change, 0 to destroy.", `+ resource "file" "f"`, `# file.f[1] will be created`, "(known after apply)")
	var row planRow
	if err := json.Unmarshal(a.rows[0], &row); err != nil || row.Add != 3 || row.Workspace != "web" || len(row.Changes) != 3 {
		t.Fatalf("plan row %s: %v", a.rows[0], err)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Fatalf("plan touched reality: %v", err)
	}

	a = e.ok(fmt.Sprintf("infra apply plan=%d", row.ID))
	mustContain(t, "apply", a.text, "Apply complete! Resources: 3 added, 0 changed, 0 destroyed.")
	if got := readFile(t, filepath.Join(root, "f1")); got != "hello 1" {
		t.Fatalf("f1 = %q", got)
	}
	a = e.ok("infra plan " + cfg)
	mustContain(t, "second plan", a.text, "No changes.")

	out := e.ok("infra output paths")
	mustContain(t, "output", string(out.rows[0]), filepath.Join(root, "f0"), filepath.Join(root, "f1"))

	// The journal holds the intent before the creates, and the apply after.
	var kinds []string
	for _, ev := range e.events() {
		kinds = append(kinds, ev.Kind)
	}
	got := strings.Join(kinds, " ")
	want := "infra.plan infra.intent infra.create infra.create infra.create infra.apply infra.plan"
	if got != want {
		t.Fatalf("events: %s\nwant %s", got, want)
	}
}

func TestEditsGiveTheRightSymbols(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := filepath.Join(t.TempDir(), "out")
	writeConfig(t, cfg, files(root, 3, "v1"))
	e.ok("infra apply " + cfg + " auto-approve")

	// Content changes in place, one file goes away, the directory's mode
	// changes: ~ and -.
	writeConfig(t, cfg, files(root, 2, "v2"))
	a := e.ok("infra plan " + cfg)
	mustContain(t, "plan", a.text,
		"# file.f[0] will be updated in-place", `~ content = "v1 0" -> "v2 0"`,
		"# file.f[2] will be destroyed", `- content = "v1 2" -> null`,
		"Plan: 0 to add, 2 to change, 1 to destroy.")
	a = e.ok("infra apply " + cfg + " auto-approve")
	mustContain(t, "apply", a.text, "Resources: 0 added, 2 changed, 1 destroyed.")
	if _, err := os.Stat(filepath.Join(root, "f2")); !os.IsNotExist(err) {
		t.Fatalf("f2 still exists: %v", err)
	}
	if got := readFile(t, filepath.Join(root, "f0")); got != "v2 0" {
		t.Fatalf("f0 = %q", got)
	}
	mustContain(t, "third plan", e.ok("infra plan "+cfg).text, "No changes.")

	// A path is ForceNew: -/+.
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
	a = e.ok("infra plan " + cfg)
	mustContain(t, "replace plan", a.text, "-/+ resource \"file\" \"g\"", "# forces replacement", "Plan: 1 to add, 0 to change, 1 to destroy.")
	e.ok("infra apply " + cfg + " auto-approve")
	if readFile(t, filepath.Join(root, "g2")) != "g" {
		t.Fatal("g2 not written")
	}
	if _, err := os.Stat(filepath.Join(root, "g")); !os.IsNotExist(err) {
		t.Fatalf("g still exists: %v", err)
	}
}

func TestSavedPlanIsRefusedOnceRealityMoved(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := filepath.Join(t.TempDir(), "out")
	writeConfig(t, cfg, files(root, 1, "v1"))
	e.ok("infra apply " + cfg + " auto-approve")

	writeConfig(t, cfg, files(root, 1, "v2"))
	var row planRow
	json.Unmarshal(e.ok("infra plan " + cfg).rows[0], &row)
	if err := os.WriteFile(filepath.Join(root, "f0"), []byte("by hand"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := e.run(fmt.Sprintf("infra apply plan=%d", row.ID))
	if a.err == nil || !strings.Contains(a.err.Error(), "stale") {
		t.Fatalf("stale plan applied: %v\n%s", a.err, a.text)
	}
	if readFile(t, filepath.Join(root, "f0")) != "by hand" {
		t.Fatal("a refused plan touched reality")
	}
	// The next plan says what changed outside, and repairs it.
	a = e.ok("infra plan " + cfg)
	mustContain(t, "plan after a change by hand", a.text, "Objects have changed outside of cairn", `~ content = "v1 0" -> "by hand"`, `~ content = "by hand" -> "v2 0"`)
	json.Unmarshal(a.rows[0], &row)
	e.ok(fmt.Sprintf("infra apply plan=%d", row.ID))
	if readFile(t, filepath.Join(root, "f0")) != "v2 0" {
		t.Fatal("not repaired")
	}
	// A plan is applied once.
	if a := e.run(fmt.Sprintf("infra apply plan=%d", row.ID)); a.err == nil {
		t.Fatal("a plan applied twice")
	}
	// Without auto-approve nothing happens.
	writeConfig(t, cfg, files(root, 1, "v3"))
	if a := e.run("infra apply " + cfg); a.err == nil || !strings.Contains(a.err.Error(), "auto-approve") {
		t.Fatalf("apply without auto-approve: %v", a.err)
	}
	if readFile(t, filepath.Join(root, "f0")) != "v2 0" {
		t.Fatal("applied without approval")
	}
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

func TestStateShowAtAnswersFromHistory(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := filepath.Join(t.TempDir(), "out")
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
	mustContain(t, "plan", e.ok("infra plan "+cfg).text, "No changes.")
}

func TestSensitiveValuesNeverReachTheJournal(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := t.TempDir()
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
	mustContain(t, "plan", a.text, "content = (sensitive value)")
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
	mustContain(t, "same secret", e.ok("infra plan "+cfg+" var.password=hunter2").text, "No changes.")
	mustContain(t, "new secret", e.ok("infra plan "+cfg+" var.password=other").text, "~ content = (sensitive value) -> (sensitive value)", "1 to change")
}

func TestImportThenNoChanges(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := t.TempDir()
	p := filepath.Join(root, "existing")
	if err := os.WriteFile(p, []byte("was here"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, cfg, map[string]string{"main.hcl": fmt.Sprintf(`
resource "file" "existing" {
  path    = %q
  content = "was here"
  mode    = "0600"
}`, p)})
	mustContain(t, "plan before import", e.ok("infra plan "+cfg).text, "1 to add")
	e.ok(fmt.Sprintf("infra import file.existing %s %s", p, cfg))
	mustContain(t, "plan after import", e.ok("infra plan "+cfg).text, "No changes.")
	if a := e.run(fmt.Sprintf("infra import file.existing %s %s", p, cfg)); a.err == nil {
		t.Fatal("imported twice")
	}
	if a := e.run(fmt.Sprintf("infra import file.nope %s %s", p, cfg)); a.err == nil || !strings.Contains(a.err.Error(), "not declared") {
		t.Fatalf("import of an undeclared address: %v", a.err)
	}
}

func TestBadConfigurationsNameThePlace(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	cases := []struct{ src, want string }{
		{"resource \"file\" \"a\" {\n  path = \n}", "main.hcl:2:"},
		{"resource \"file\" \"a\" {\n  path = \"/x\"\n  contnet = \"y\"\n}", `main.hcl:3:3: error: Unsupported argument; An argument named "contnet" is not expected here. Did you mean "content"?`},
		{"resource \"nope\" \"a\" {}", `main.hcl:1:10: error: Invalid resource type; There is no resource type "nope"`},
		{"resource \"file\" \"a\" {\n  path = file.b.path\n}\nresource \"file\" \"b\" {\n  path = file.a.path\n}", "Cycle"},
		{"resource \"file\" \"a\" {\n  path = var.nope\n}", "main.hcl:2:10: error: Reference to undeclared input variable"},
		{"variable \"v\" {}\nresource \"file\" \"a\" {\n  path = var.v\n}", "give var.v=VALUE"},
	}
	for _, c := range cases {
		writeConfig(t, cfg, map[string]string{"main.hcl": c.src})
		for _, verb := range []string{"validate", "plan"} {
			if verb == "validate" && strings.Contains(c.want, "VALUE") {
				continue // as terraform validate, values are not needed
			}
			a := e.run("infra " + verb + " " + cfg)
			if a.err == nil || !strings.Contains(a.err.Error(), c.want) {
				t.Errorf("infra %s of\n%s\n: %v\nwant %q", verb, c.src, a.err, c.want)
			}
		}
	}
	if a := e.run("infra plan " + filepath.Join(cfg, "nowhere")); a.err == nil {
		t.Error("plan of a missing directory")
	}
}

func TestRebuildReproducesState(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := filepath.Join(t.TempDir(), "out")
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

func TestConfigurationsAreReadOnlyWhereTheCallerMay(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret.tfvars")
	if err := os.WriteFile(secret, []byte(`token = "x"`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(secret, 0, 0); err != nil {
		t.Skip("needs root to make a file owned by root")
	}
	alice := journal.Actor{UID: 1000, GID: 1000, PID: -1, Via: "socket"}
	if err := checkReadable(alice, "", []string{secret}); err == nil || !strings.Contains(err.Error(), "not readable by uid 1000") {
		t.Fatalf("uid 1000 may read a root 0600 var-file: %v", err)
	}
	if err := checkReadable(journal.Actor{UID: 0}, "", []string{secret}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(secret, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkReadable(alice, "", []string{secret}); err != nil {
		t.Fatal(err)
	}
}
