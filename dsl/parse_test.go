package dsl

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestDataDriven runs testdata/*: `parse` prints each statement's binding or the
// error, `usage` the synopsis of the verb in the input, `help` the whole help or
// (with input) the help of one verb.
func TestDataDriven(t *testing.T) {
	tab := testTable()
	// Only the files at the top of testdata: testdata/fuzz holds Go's corpus.
	paths, err := filepath.Glob("testdata/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range paths {
		if fi, err := os.Stat(path); err != nil || fi.IsDir() {
			continue
		}
		t.Run(filepath.Base(path), func(t *testing.T) { runDataDriven(t, tab, path) })
	}
}

func runDataDriven(t *testing.T, tab *Table, path string) {
	datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
		switch td.Cmd {
		case "parse":
			sts, err := Parse(td.Input, tab)
			if err != nil {
				return errString(t, err)
			}
			var b strings.Builder
			for _, st := range sts {
				dump(&b, st)
			}
			return b.String()
		case "usage":
			s, ok := tab.Lookup(td.Input)
			if !ok {
				return "unknown verb"
			}
			return tab.Usage(s) + "\n"
		case "help":
			if td.Input == "" {
				return tab.Help()
			}
			h, err := tab.HelpVerb(td.Input)
			if err != nil {
				return errString(t, err)
			}
			return h
		}
		t.Fatalf("unknown command %q", td.Cmd)
		return ""
	})
}

func errString(t *testing.T, err error) string {
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error is %T, not *Error: %v", err, err)
	}
	return "error: " + e.Error() + "\n"
}

func word(w Word) string {
	q := ""
	if w.Quoted {
		q = " quoted"
	}
	return fmt.Sprintf("%q%s @%s", w.Text, q, w.Pos)
}

// dump writes a statement's binding in a stable text form.
func dump(b *strings.Builder, st *Statement) {
	fmt.Fprintf(b, "%s @%s %q\n", st.Spec.Verb, st.Pos, st.Text)
	for _, a := range st.Spec.Args {
		if w, ok := st.Args[a.Name]; ok {
			fmt.Fprintf(b, "  arg %s = %s\n", a.Name, word(w))
		}
	}
	for _, w := range st.Rest {
		fmt.Fprintf(b, "  rest %s\n", word(w))
	}
	for _, f := range slices.Sorted(maps.Keys(st.Flags)) {
		fmt.Fprintf(b, "  flag %s\n", f)
	}
	for _, o := range slices.Sorted(maps.Keys(st.Options)) {
		for _, w := range st.Options[o] {
			fmt.Fprintf(b, "  option %s = %s\n", o, word(w))
		}
	}
	for _, it := range st.Bag {
		fmt.Fprintf(b, "  bag %s @%s = %s -> %#v\n", it.Key, it.Pos, word(it.Value), it.Value.Scalar())
	}
	for _, kw := range st.Spec.Sections {
		ws, ok := st.Sections[kw]
		if !ok {
			continue
		}
		fmt.Fprintf(b, "  section %s\n", kw)
		for _, w := range ws {
			fmt.Fprintf(b, "    %s\n", word(w))
		}
	}
	if st.Where != nil {
		fmt.Fprintf(b, "  where %s\n", word(*st.Where))
	}
	if st.Raw != nil {
		fmt.Fprintf(b, "  raw %q\n", st.Raw)
	}
	if p := st.Pipe; p != nil {
		fmt.Fprintf(b, "  pipe @%s chisel %s\n", p.Pos, word(p.Chisel))
		for _, w := range p.Args {
			fmt.Fprintf(b, "    %s\n", word(w))
		}
	}
}

func TestOpt(t *testing.T) {
	sts, err := Parse("events kind=kv.* kind=lease.*", testTable())
	if err != nil {
		t.Fatal(err)
	}
	if w, ok := sts[0].Opt("kind"); !ok || w.Text != "lease.*" {
		t.Errorf(`Opt("kind") = %v, %v; want the last value`, w, ok)
	}
	if _, ok := sts[0].Opt("limit"); ok {
		t.Error(`Opt("limit") reported an option not given`)
	}
}

func BenchmarkParse(b *testing.B) {
	tab := testTable()
	const src = `events since=10m kind=kv.* where 'actor.uid != 0' limit=50 | chisel topkeys n=10`
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := Parse(src, tab); err != nil {
			b.Fatal(err)
		}
	}
}
