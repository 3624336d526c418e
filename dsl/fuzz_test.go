package dsl

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks that Parse never panics, that every error is an *Error
// positioned within the input, and that statements' positions are too.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"status",
		`kv put app/db/url "postgres://db:5432/app"`,
		"kv txn if 'value(\"app/lock\") = \"\"' then 'put app/lock me'",
		"events since=10m kind=kv.* where 'actor.uid != 0' limit=50",
		"capture run -- make -j2 test",
		"events since=1h | chisel topkeys",
	} {
		f.Add(s)
	}
	tab := testTable()
	f.Fuzz(func(t *testing.T, src string) {
		sts, err := Parse(src, tab)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse(%q) error is %T, not *Error: %v", src, err, err)
			}
			if !within(src, e.Pos) {
				t.Fatalf("Parse(%q) error position %s is outside the input: %v", src, e.Pos, err)
			}
			if e.Msg == "" {
				t.Fatalf("Parse(%q) error has no message", src)
			}
			return
		}
		for _, st := range sts {
			if st.Spec == nil || st.Text == "" || !within(src, st.Pos) {
				t.Fatalf("Parse(%q) gave a bad statement %+v", src, st)
			}
			if st.Where != nil && !within(src, st.Where.Pos) {
				t.Fatalf("Parse(%q) where position %s is outside the input", src, st.Where.Pos)
			}
		}
	})
}

// within reports whether p is a position of src, or just after the end of one
// of its lines.
func within(src string, p Pos) bool {
	lines := strings.Split(src, "\n")
	if p.Line < 1 || p.Line > len(lines) || p.Col < 1 {
		return false
	}
	return p.Col <= utf8.RuneCountInString(lines[p.Line-1])+1
}

// FuzzQuote checks that Quote's output reads back as one word with the same
// text (in a required positional, which takes any word).
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "a b", `it's "x"`, "#", "a;b|c", "x=y", "\\", "\xff"} {
		f.Add(s)
	}
	tab := testTable()
	f.Fuzz(func(t *testing.T, s string) {
		if s == "--" {
			return // left bare on purpose: the CLI passes `--` through to capture run
		}
		src := "emit k.x " + Quote(s)
		sts, err := Parse(src, tab)
		if err != nil {
			t.Fatalf("Parse(%q): %v", src, err)
		}
		st := sts[0]
		if got := st.Args["SUBJECT"].Text; got != s || len(st.Bag) != 0 {
			t.Fatalf("Quote(%q) = %s reads back as %q (bag %v)", s, Quote(s), got, st.Bag)
		}
	})
}
