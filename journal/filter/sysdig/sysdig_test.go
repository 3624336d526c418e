package sysdig

import (
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/cairnhq/cairn/journal/filter"
)

// TestTranslate pins the translation of sysdig filters (the examples of
// sysdig's and falco's documentation, operator precedence, lists, quoting
// and the errors) in testdata/translate. Every translation must compile
// as cairn's CEL.
func TestTranslate(t *testing.T) {
	datadriven.RunTest(t, "testdata/translate", func(t *testing.T, d *datadriven.TestData) string {
		out, err := Translate(d.Input)
		if err != nil {
			return "error: " + err.Error() + "\n"
		}
		if _, err := filter.Compile(out); err != nil {
			t.Fatalf("%q translates to %q, which does not compile: %v", d.Input, out, err)
		}
		return out + "\n"
	})
}

// FuzzTranslate: any input translates to CEL that compiles, or is an
// error; nothing panics.
func FuzzTranslate(f *testing.F) {
	for _, s := range []string{"evt.type=open and fd.name contains /etc", "proc.name in (a, b) or not fd.sport > 1024",
		`fd.name glob '/tmp/*.log'`, "(evt.failed)", `proc.cmdline icontains "A\"b"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		out, err := Translate(src)
		if err != nil {
			return
		}
		if _, err := filter.Compile(out); err != nil {
			t.Fatalf("%q translates to %q, which does not compile: %v", src, out, err)
		}
	})
}
