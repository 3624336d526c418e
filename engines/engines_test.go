package engines

import (
	"context"
	"errors"
	"flag"
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
