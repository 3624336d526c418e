package engines

import (
	"context"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/journal"
)

type fakeModule struct{ name string }

func (m fakeModule) Name() string                       { return m.name }
func (fakeModule) Flags(*flag.FlagSet)                  {}
func (fakeModule) Engines() map[string][]journal.Engine { return nil }
func (fakeModule) Verbs() []Verb                        { return nil }
func (fakeModule) Start(context.Context, Host) error    { return nil }
func (fakeModule) Stop() error                          { return nil }

func TestRegister(t *testing.T) {
	Register("zz_test", func() Module { return fakeModule{"zz_test"} })
	Register("aa_test", func() Module { return fakeModule{"aa_test"} })
	defer func() {
		delete(registry, "zz_test")
		delete(registry, "aa_test")
	}()
	mods := New()
	if len(mods) < 2 || mods[0].Name() != "aa_test" || mods[len(mods)-1].Name() != "zz_test" {
		t.Errorf("New() = %v, want modules sorted by name", mods)
	}
	defer func() {
		if recover() == nil {
			t.Error("a duplicate Register did not panic")
		}
	}()
	Register("aa_test", func() Module { return fakeModule{"aa_test"} })
}

func TestWherePosition(t *testing.T) {
	table := dsl.NewTable()
	table.Register(dsl.Spec{Verb: "events", Summary: "x", Where: true, Access: dsl.AccessRead})
	stmts, err := dsl.Parse(`events where 'proc.nmae == "x"'`, table)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Where(stmts[0])
	var pe *PosError
	if !errors.As(err, &pe) || pe.Code != "invalid_argument" || pe.Pos != (dsl.Pos{Line: 1, Col: 20}) {
		t.Fatalf("Where error = %#v, want invalid_argument at 1:20", err)
	}
	if f, err := Where(&dsl.Statement{}); f != nil || err != nil {
		t.Errorf("no where clause: %v, %v", f, err)
	}
}

// orderModule is a module that only names, provides and requires.
type orderModule struct {
	Module
	name     string
	provides []string
	requires []string
}

func (m orderModule) Name() string       { return m.name }
func (m orderModule) Provides() []string { return m.provides }
func (m orderModule) Requires() []string { return m.requires }

func TestStartOrder(t *testing.T) {
	names := func(ms []Module) string {
		var out []string
		for _, m := range ms {
			out = append(out, m.Name())
		}
		return strings.Join(out, " ")
	}
	kv := orderModule{name: "kv", provides: []string{"kv", "kv.store"}}
	etcd := orderModule{name: "etcd", requires: []string{"kv.store"}}
	infra := orderModule{name: "infra"}
	got, err := StartOrder([]Module{etcd, infra, kv})
	if err != nil || names(got) != "kv etcd infra" {
		t.Fatalf("order %q, %v; want kv before etcd, the rest by name", names(got), err)
	}
	if _, err := StartOrder([]Module{etcd, infra}); err == nil || !strings.Contains(err.Error(), `requires the "kv.store" service, which no linked module provides`) {
		t.Errorf("missing provider: %v", err)
	}
	a := orderModule{name: "a", provides: []string{"x"}, requires: []string{"y"}}
	b := orderModule{name: "b", provides: []string{"y"}, requires: []string{"x"}}
	if _, err := StartOrder([]Module{a, b}); err == nil || !strings.Contains(err.Error(), "cycle: a -> b -> a") {
		t.Errorf("cycle: %v", err)
	}
	if _, err := StartOrder([]Module{kv, orderModule{name: "kv2", provides: []string{"kv"}}}); err == nil || !strings.Contains(err.Error(), "both provide") {
		t.Errorf("two providers: %v", err)
	}
}

func TestLookup(t *testing.T) {
	var s Services
	s.Provide("n", 42)
	if v, err := Lookup[int](&s, "n"); err != nil || v != 42 {
		t.Fatalf("Lookup[int] = %v, %v", v, err)
	}
	if _, err := Lookup[string](&s, "n"); err == nil || !strings.Contains(err.Error(), "is a int") {
		t.Errorf("wrong type: %v", err)
	}
	if _, err := Lookup[int](&s, "none"); err == nil || !strings.Contains(err.Error(), "no module provides") {
		t.Errorf("missing: %v", err)
	}
}
