package dsl

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Statement is one parsed statement bound to its Spec.
type Statement struct {
	Spec     *Spec
	Pos      Pos               // position of the first word
	Text     string            // the source text of the statement, trimmed
	Args     map[string]Word   // positionals by Arg.Name; a variadic one is in Rest
	Rest     []Word            // words of a variadic last positional
	Flags    map[string]bool   // flag words given
	Options  map[string][]Word // declared options; a repeatable one may have several
	Bag      []BagItem         // undeclared key=value pairs in order (Spec.Bag)
	Where    *Word             // the CEL text; Pos is its first character inside the quotes
	Filter   *Word             // a sysdig filter (filter 'evt.type=open'), where a Where may be
	Raw      []string          // the words after --
	Sections map[string][]Word // section keyword -> the words that followed it
	Pipe     *Pipe             // `| chisel NAME ARGS…`
	// Words are the texts of the statement's words after the verb, in
	// order and unquoted ("|" for the pipe), as a shell would pass them:
	// for the verbs the CLI runs itself.
	Words []string
}

// BagItem is one key=value pair of a verb that takes a bag.
type BagItem struct {
	Key   string
	Value Word
	Pos   Pos // position of the key
}

// Pipe is the `| chisel NAME ARGS…` stage of a statement.
type Pipe struct {
	Chisel Word   // the chisel's name
	Args   []Word // its arguments as written; "limit=5" stays one word
	Pos    Pos    // position of the "|"
}

// Opt returns the last value of an option and whether it was given.
func (s *Statement) Opt(name string) (Word, bool) {
	ws := s.Options[name]
	if len(ws) == 0 {
		return Word{}, false
	}
	return ws[len(ws)-1], true
}

// Parse splits src into statements and binds each to the table. Newlines and
// ';' separate statements, and '#' starts a comment to the end of the line when
// it begins a word outside quotes; empty statements are skipped. The first
// error is returned as an *Error, with no statements.
func Parse(src string, t *Table) ([]*Statement, error) {
	if t == nil {
		t = NewTable()
	}
	l := newLexer(src)
	var out []*Statement
	// The tokens of a statement live only until it is bound: one buffer,
	// from a pool, serves every statement (the daemon parses every request).
	bp := tokenBufs.Get().(*[]token)
	defer func() {
		clear((*bp)[:cap(*bp)]) // keep no reference to src
		*bp = (*bp)[:0]
		tokenBufs.Put(bp)
	}()
	for {
		toks, more, err := l.statement((*bp)[:0])
		*bp = toks
		if err != nil {
			return nil, err
		}
		if len(toks) > 0 {
			st, err := bind(src, toks, t)
			if err != nil {
				return nil, err
			}
			out = append(out, st)
		}
		if !more {
			return out, nil
		}
	}
}

var tokenBufs = sync.Pool{New: func() any { b := make([]token, 0, 16); return &b }}

// binder binds the tokens after the verb to a statement.
type binder struct {
	st   *Statement
	spec *Spec
	toks []token
	end  Pos // just after the statement's last token
	next int // the next positional to fill
}

func bind(src string, toks []token, t *Table) (*Statement, error) {
	last := toks[len(toks)-1]
	text := strings.TrimSpace(src[toks[0].start:last.stop])
	spec, n, err := t.resolve(toks, text, last.end)
	if err != nil {
		return nil, err
	}
	words := make([]string, 0, len(toks)-n)
	for _, tk := range toks[n:] {
		if tk.kind == tokPipe {
			words = append(words, "|")
		} else {
			words = append(words, tk.text)
		}
	}
	b := &binder{
		st:   &Statement{Spec: spec, Pos: toks[0].pos, Text: text, Words: words},
		spec: spec,
		toks: toks[n:],
		end:  last.end,
	}
	if err := b.bind(); err != nil {
		return nil, err
	}
	return b.st, nil
}

// posAt returns the position of token i, or the end of the statement.
func (b *binder) posAt(i int) Pos {
	if i < len(b.toks) {
		return b.toks[i].pos
	}
	return b.end
}

// needRequired reports whether a required positional is still unfilled.
func (b *binder) needRequired() bool {
	if b.next >= len(b.spec.Args) {
		return false
	}
	a := b.spec.Args[b.next]
	return a.Required && !(a.Variadic && len(b.st.Rest) > 0)
}

func (b *binder) fill(tk token) {
	a := b.spec.Args[b.next]
	if a.Variadic {
		b.st.Rest = append(b.st.Rest, tk.word())
		return
	}
	if b.st.Args == nil {
		b.st.Args = map[string]Word{}
	}
	b.st.Args[a.Name] = tk.word()
	b.next++
}

func (b *binder) bind() error {
	spec, st := b.spec, b.st
	section := ""
	for i := 0; i < len(b.toks); i++ {
		tk := b.toks[i]
		switch {
		case tk.kind == tokPipe:
			return b.pipe(i)
		case tk.bare("--"):
			if !spec.Raw {
				return errorf(tk.pos, "", `%q takes no raw arguments after "--"; usage: %s`, spec.Verb, usage(spec))
			}
			st.Raw = []string{}
			for _, r := range b.toks[i+1:] {
				st.Raw = append(st.Raw, r.text)
			}
			return b.finish()
		case b.needRequired():
			b.fill(tk)
		case !tk.quoted && tk.key == "" && slices.Contains(spec.Sections, tk.text):
			if _, dup := st.Sections[tk.text]; dup {
				return errorf(tk.pos, "", "section %q given twice", tk.text)
			}
			if st.Sections == nil {
				st.Sections = map[string][]Word{}
			}
			section = tk.text
			st.Sections[section] = []Word{}
		case spec.Where && tk.bare("where"):
			if st.Where != nil {
				return errorf(tk.pos, "", "where given twice; join the expressions with &&")
			}
			if i+1 == len(b.toks) || b.toks[i+1].kind == tokPipe {
				return errorf(b.posAt(i+1), "", "missing the expression after where; write where 'CEL'")
			}
			e := b.toks[i+1]
			w := e.word()
			if e.lead {
				w.Pos = e.inner
			}
			st.Where = &w
			i++
		case spec.Where && tk.bare("filter"):
			if st.Filter != nil {
				return errorf(tk.pos, "", "filter given twice; join the checks with and")
			}
			if i+1 == len(b.toks) || b.toks[i+1].kind == tokPipe {
				return errorf(b.posAt(i+1), "", "missing the filter after filter; write filter 'evt.type=open' (sysdig's filter language)")
			}
			e := b.toks[i+1]
			w := e.word()
			if e.lead {
				w.Pos = e.inner
			}
			st.Filter = &w
			i++
		case (st.Where != nil || st.Filter != nil) && tk.key == "" && (tk.quoted || !spec.flag(tk.text)):
			// DESIGN.md's own example puts limit=50 after the where clause, so
			// options and flags may follow it; any other word is most likely an
			// unquoted expression going on.
			return errorf(tk.pos, "", `unexpected word %q after where 'CEL': quote the whole expression; only options, flags and "| chisel" may follow it`, tk.text)
		case section != "":
			st.Sections[section] = append(st.Sections[section], tk.word())
		case tk.key != "":
			if err := b.option(tk); err != nil {
				return err
			}
		case !tk.quoted && spec.flag(tk.text):
			if st.Flags == nil {
				st.Flags = map[string]bool{}
			}
			st.Flags[tk.text] = true
		case b.next < len(spec.Args):
			b.fill(tk)
		default:
			return b.unexpected(tk)
		}
	}
	return b.finish()
}

// option binds a NAME=VALUE word: a declared option, a bag item, or an error.
func (b *binder) option(tk token) error {
	spec, st := b.spec, b.st
	val := Word{Text: tk.val, Quoted: tk.valQuoted, Pos: tk.valPos}
	o := spec.option(tk.key)
	if o == nil {
		if spec.Bag && strings.HasPrefix(tk.key, spec.BagPrefix) {
			st.Bag = append(st.Bag, BagItem{Key: tk.key, Value: val, Pos: tk.pos})
			return nil
		}
		names := make([]string, 0, len(spec.Options))
		for _, o := range spec.Options {
			names = append(names, o.Name)
		}
		msg := fmt.Sprintf("unknown option %q for %q", tk.key, spec.Verb)
		if spec.BagPrefix != "" {
			msg += fmt.Sprintf(" (free keys start with %q)", spec.BagPrefix)
		}
		s := Nearest(tk.key, names)
		if s == "" {
			msg += "; usage: " + usage(spec)
		}
		return &Error{Pos: tk.pos, Msg: msg, Suggest: s}
	}
	if len(st.Options[o.Name]) > 0 && !o.Repeatable {
		return errorf(tk.pos, "", "option %s= given twice", o.Name)
	}
	if err := checkKind(o.Kind, val); err != nil {
		return errorf(val.Pos, "", "bad value for %s=: %v", o.Name, err)
	}
	if st.Options == nil {
		st.Options = map[string][]Word{}
	}
	st.Options[o.Name] = append(st.Options[o.Name], val)
	return nil
}

// checkKind checks an option value against its kind. The clock does not matter
// here: only whether the word reads as a time.
func checkKind(k OptionKind, w Word) error {
	var err error
	switch k {
	case Int:
		_, err = w.Int()
	case Duration:
		_, err = w.Duration()
	case Time:
		_, err = w.Time(time.Time{})
	case SeqOrTime:
		if _, ierr := w.Int(); ierr != nil {
			_, err = w.Time(time.Time{})
		}
	}
	return err
}

func (b *binder) unexpected(tk token) error {
	spec := b.spec
	if tk.bare("where") {
		return errorf(tk.pos, "", "%q takes no where clause; usage: %s", spec.Verb, usage(spec))
	}
	var cands []string
	if !tk.quoted {
		for _, f := range spec.Flags {
			cands = append(cands, f.Name)
		}
		cands = append(cands, spec.Sections...)
		if spec.Where {
			cands = append(cands, "where")
		}
	}
	if s := Nearest(tk.text, cands); s != "" {
		return errorf(tk.pos, s, "unexpected word %q for %q", tk.text, spec.Verb)
	}
	return errorf(tk.pos, "", "unexpected word %q for %q; usage: %s", tk.text, spec.Verb, usage(spec))
}

// pipe binds `| chisel NAME ARGS…` starting at the pipe token i.
func (b *binder) pipe(i int) error {
	p := &Pipe{Pos: b.toks[i].pos}
	if i+1 == len(b.toks) || b.toks[i+1].kind == tokPipe {
		return errorf(b.posAt(i+1), "", `missing the stage after "|"; write | chisel NAME`)
	}
	if stage := b.toks[i+1]; !stage.bare("chisel") {
		return errorf(stage.pos, "chisel", "unknown pipe stage %q: the only stage is chisel", stage.text)
	}
	if i+2 == len(b.toks) || b.toks[i+2].kind == tokPipe {
		return errorf(b.posAt(i+2), "", `missing the chisel NAME after "| chisel"`)
	}
	p.Chisel = b.toks[i+2].word()
	for _, tk := range b.toks[i+3:] {
		if tk.kind == tokPipe {
			return errorf(tk.pos, "", "only one pipe stage is allowed")
		}
		p.Args = append(p.Args, tk.word())
	}
	b.st.Pipe = p
	return b.finish()
}

// finish checks that every required positional was given.
func (b *binder) finish() error {
	if b.needRequired() {
		return errorf(b.end, "", "missing %s for %q; usage: %s", b.spec.Args[b.next].Name, b.spec.Verb, usage(b.spec))
	}
	return nil
}
