package infra

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// env is the infra module on a real journal in a temporary directory.
type env struct {
	t      testing.TB
	dir    string // data directory
	j      *journal.Journal
	m      *module
	table  *dsl.Table
	cancel context.CancelFunc
	drift  bool // watch for drift (newEnv does not)
}

func newEnv(t testing.TB) *env {
	e := &env{t: t, dir: t.TempDir()}
	e.open()
	t.Cleanup(e.close)
	return e
}

func (e *env) open() {
	e.t.Helper()
	e.m = newModule()
	e.m.noDrift = !e.drift
	j, err := journal.Open(journal.Options{Dir: e.dir, Node: "test", Logger: quietLog, Engines: e.m.Engines()})
	if err != nil {
		e.t.Fatal(err)
	}
	e.j = j
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	if err := e.m.Start(ctx, engines.Host{Journal: j, Logger: quietLog, Node: "test", DataDir: e.dir, Services: &engines.Services{}}); err != nil {
		e.t.Fatal(err)
	}
	e.table = dsl.NewTable()
	for _, v := range e.m.Verbs() {
		e.table.Register(v.Spec)
	}
}

func (e *env) close() {
	if e.j == nil {
		return
	}
	e.cancel()
	_ = e.m.Stop()
	if err := e.j.Close(); err != nil {
		e.t.Error(err)
	}
	e.j = nil
}

// request is the engines.Request a handler sees, recording answers.
type request struct {
	st    *dsl.Statement
	mu    sync.Mutex
	lines []string
	rows  []json.RawMessage
}

func (r *request) Statement() *dsl.Statement { return r.st }
func (r *request) Actor() journal.Actor {
	return journal.Actor{UID: 0, GID: 0, PID: os.Getpid(), User: "root", Via: "socket"}
}
func (r *request) Row(v any) error {
	b, err := json.Marshal(v)
	r.mu.Lock()
	r.rows = append(r.rows, b)
	r.mu.Unlock()
	return err
}
func (r *request) Event(v any) error { return r.Row(v) }
func (r *request) Line(s string) error {
	r.mu.Lock()
	r.lines = append(r.lines, s)
	r.mu.Unlock()
	return nil
}

// answer is what one statement answered.
type answer struct {
	text string // the lines, joined
	rows []json.RawMessage
	err  error
}

func (e *env) run(stmt string) answer {
	e.t.Helper()
	sts, err := dsl.Parse(stmt, e.table)
	if err != nil {
		e.t.Fatalf("%s: %v", stmt, err)
	}
	r := &request{st: sts[0]}
	var run engines.Handler
	for _, v := range e.m.Verbs() {
		if v.Verb == sts[0].Spec.Verb {
			run = v.Run
		}
	}
	err = run(context.Background(), r)
	return answer{text: strings.Join(r.lines, "\n"), rows: r.rows, err: err}
}

func (e *env) ok(stmt string) answer {
	e.t.Helper()
	a := e.run(stmt)
	if a.err != nil {
		e.t.Fatalf("%s: %v\n%s", stmt, a.err, a.text)
	}
	return a
}

// events returns the infra events, in order, as kind subject pairs.
func (e *env) events(kinds ...string) []*journal.Event {
	e.t.Helper()
	it := e.j.Stream(journal.Audit).Scan(journal.Query{Kind: "infra.*"})
	defer it.Close()
	var out []*journal.Event
	for it.Next() {
		ev, err := it.Raw().Decode()
		if err != nil {
			e.t.Fatal(err)
		}
		if len(kinds) == 0 || contains(kinds, ev.Kind) {
			out = append(out, ev)
		}
	}
	if err := it.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// writeConfig writes files into dir (created), replacing what was there.
func writeConfig(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	old, _ := filepath.Glob(filepath.Join(dir, "*.hcl"))
	for _, f := range old {
		os.Remove(f)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func mustContain(t testing.TB, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Fatalf("%s lacks %q:\n%s", what, w, text)
		}
	}
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

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

// planRow runs a plan statement and answers its plan row.
func (e *env) planRow(stmt string) planRow {
	e.t.Helper()
	var row planRow
	if err := json.Unmarshal(e.ok(stmt).rows[0], &row); err != nil {
		e.t.Fatal(err)
	}
	return row
}

// noChanges runs a plan statement and fails the test unless it plans no
// change: what an apply left is what the configuration asks.
func (e *env) noChanges(stmt string) {
	e.t.Helper()
	a := e.ok(stmt)
	var row planRow
	if err := json.Unmarshal(a.rows[0], &row); err != nil || len(row.Changes) != 0 || !strings.Contains(a.text, "No changes.") {
		e.t.Fatalf("%s: changes: %s\n%s", stmt, a.rows[0], a.text)
	}
}

// publicDir is a temporary directory every user may search, as /etc or
// /srv are: files the tests make in it with mode 0644 are world-readable,
// so their content is journaled as is (files in t.TempDir's 0700
// directories are private, and journaled as a digest).
func publicDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
