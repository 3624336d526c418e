package infra

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The verbs infra plan and infra apply on a real journal and the file
// provider: saved plans, workspaces, what the plan row says. What plans
// show is pinned in testdata/plan.

func TestPlanApplyThenNoChanges(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "web")
	root := filepath.Join(publicDir(t), "out")
	writeConfig(t, cfg, files(root, 2, "hello"))

	// What the plan shows is pinned in testdata/plan/create.
	a := e.ok("infra plan " + cfg)
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
	e.noChanges("infra plan " + cfg)

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

func TestSavedPlanIsRefusedOnceRealityMoved(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := filepath.Join(publicDir(t), "out")
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
	// The next plan says what changed outside (as testdata/plan/outside
	// shows it), and repairs it.
	a = e.ok("infra plan " + cfg)
	row = planRow{}
	json.Unmarshal(a.rows[0], &row)
	if got := fmt.Sprint(row.Outside); got != "[{file.f[0] content v1 0 by hand}]" {
		t.Fatalf("changed outside: %s", got)
	}
	if len(row.Changes) != 1 || row.Changes[0].Addr != "file.f[0]" || row.Changes[0].Action != Update {
		t.Fatalf("repair: %+v", row.Changes)
	}
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

// TestPlanOfAMissingDirectory: a PATH that is not there is an error.
func TestPlanOfAMissingDirectory(t *testing.T) {
	e := newEnv(t)
	if a := e.run("infra plan " + filepath.Join(t.TempDir(), "nowhere")); a.err == nil {
		t.Error("plan of a missing directory")
	}
}
