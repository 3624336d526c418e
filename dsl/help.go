package dsl

import (
	"fmt"
	"strings"
)

// Usage returns the one-line synopsis of a verb, such as
// `kv put KEY VALUE [lease=ID] [prev]`.
func (t *Table) Usage(s *Spec) string { return usage(s) }

func usage(s *Spec) string {
	parts := []string{s.Verb}
	for _, a := range s.Args {
		p := a.Name
		if a.Variadic {
			p += "…"
		}
		if !a.Required {
			p = "[" + p + "]"
		}
		parts = append(parts, p)
	}
	for _, o := range s.Options {
		p := "[" + o.Name + "=" + optMeta(o) + "]"
		if o.Repeatable {
			p += "…"
		}
		parts = append(parts, p)
	}
	if s.Bag {
		parts = append(parts, "["+s.BagPrefix+"KEY=VALUE…]")
	}
	for _, f := range s.Flags {
		parts = append(parts, "["+f.Name+"]")
	}
	for _, kw := range s.Sections {
		parts = append(parts, "["+kw+" 'X'…]")
	}
	if s.Where {
		parts = append(parts, "[where 'CEL']", "[filter 'SYSDIG']")
	}
	if s.Raw {
		parts = append(parts, "[-- ARGS…]")
	}
	return strings.Join(parts, " ")
}

func optMeta(o Option) string {
	if o.Meta != "" {
		return o.Meta
	}
	return o.Kind.meta()
}

// Help returns the help of every verb, grouped by first word, generated from
// the table.
func (t *Table) Help() string {
	var b strings.Builder
	b.WriteString("Verbs (\"help VERB\" for details; \"VERB … | chisel NAME ARGS…\" feeds a verb's output to a chisel):\n")
	group := "\x00"
	for _, s := range t.specs {
		first, _, _ := strings.Cut(s.Verb, " ")
		if first != group {
			b.WriteByte('\n')
			group = first
		}
		fmt.Fprintf(&b, "  %s\n", usage(s))
		if s.Summary != "" {
			fmt.Fprintf(&b, "      %s\n", s.Summary)
		}
	}
	return b.String()
}

// HelpVerb returns the help of one verb, or the list of a verb group's verbs
// ("kv"). An unknown verb is an *Error with the nearest verb suggested; its
// position is within the verb string.
func (t *Table) HelpVerb(verb string) (string, error) {
	toks, _, err := newLexer(verb).statement(nil)
	if err != nil {
		return "", err
	}
	if len(toks) == 0 {
		return t.Help(), nil
	}
	words := make([]string, len(toks))
	for i, tk := range toks {
		words[i] = tk.text
	}
	path := strings.Join(words, " ")
	if s, ok := t.verbs[path]; ok {
		return verbHelp(s), nil
	}
	if subs, ok := t.groups[path]; ok {
		var b strings.Builder
		fmt.Fprintf(&b, "%s verbs:\n", path)
		for _, sub := range subs {
			for _, s := range t.specs {
				if s.Verb == path+" "+sub || strings.HasPrefix(s.Verb, path+" "+sub+" ") {
					fmt.Fprintf(&b, "  %s\n", usage(s))
					if s.Summary != "" {
						fmt.Fprintf(&b, "      %s\n", s.Summary)
					}
				}
			}
		}
		return b.String(), nil
	}
	last := toks[len(toks)-1]
	_, n, err := t.resolve(toks, strings.TrimSpace(verb), last.end)
	if err != nil {
		return "", err
	}
	return "", errorf(toks[n].pos, "", "unknown verb %q", path)
}

func verbHelp(s *Spec) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s\n", usage(s))
	if s.Summary != "" {
		fmt.Fprintf(&b, "\n%s\n", s.Summary)
	}
	if s.Help != "" {
		fmt.Fprintf(&b, "\n%s\n", strings.TrimRight(s.Help, "\n"))
	}
	fmt.Fprintf(&b, "\naccess: %s%s\n", s.Access, accessNote(s))
	var rows [][2]string
	section := func(title string) {
		if len(rows) == 0 {
			return
		}
		w := 0
		for _, r := range rows {
			w = max(w, len([]rune(r[0])))
		}
		fmt.Fprintf(&b, "\n%s:\n", title)
		for _, r := range rows {
			if r[1] == "" {
				fmt.Fprintf(&b, "  %s\n", r[0])
				continue
			}
			fmt.Fprintf(&b, "  %s%s  %s\n", r[0], strings.Repeat(" ", w-len([]rune(r[0]))), r[1])
		}
		rows = rows[:0]
	}
	for _, a := range s.Args {
		rows = append(rows, [2]string{a.Name, a.Help})
	}
	section("arguments")
	for _, o := range s.Options {
		h := o.Help
		if o.Repeatable {
			h = strings.TrimSpace(h + " (repeatable)")
		}
		rows = append(rows, [2]string{o.Name + "=" + optMeta(o), h})
	}
	if s.Bag {
		rows = append(rows, [2]string{s.BagPrefix + "KEY=VALUE", "any other key=value pair"})
	}
	section("options")
	for _, f := range s.Flags {
		rows = append(rows, [2]string{f.Name, f.Help})
	}
	section("flags")
	if s.Where {
		rows = append(rows, [2]string{"where 'CEL'", "keep what the CEL expression matches; only options, flags and a pipe may follow"},
			[2]string{"filter 'SYSDIG'", "keep what a sysdig (falco) filter matches, such as 'evt.type=open and fd.name contains /etc'; with where, both must match"})
	}
	if s.Raw {
		rows = append(rows, [2]string{"-- ARGS…", "everything after -- is passed verbatim"})
	}
	for _, kw := range s.Sections {
		rows = append(rows, [2]string{kw + " 'X'…", "the words up to the next " + strings.Join(s.Sections, "/")})
	}
	section("clauses")
	return b.String()
}

// accessNote says where the verb runs and what its access class means for
// a caller who is not root (docs/security.md).
func accessNote(s *Spec) string {
	note := ""
	switch s.Access {
	case AccessRead, AccessWrite:
		note = " (allowed to the socket's group by default)"
	case AccessHost:
		note = " (root, or a grant in the daemon's --policy file)"
	}
	if s.Client {
		note += "; runs in the CLI"
	}
	return note
}
