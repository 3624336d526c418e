package kv

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
)

// innerPos returns the position of rune i of a word's text: inside the
// quotes when it was quoted (exact unless escapes precede it).
func innerPos(w dsl.Word, i int) dsl.Pos {
	p := w.Pos
	if w.Quoted {
		p.Col++
	}
	p.Col += i
	return p
}

func posErr(w dsl.Word, i int, format string, args ...any) error {
	return &engines.PosError{Code: wire.InvalidArgument, Pos: innerPos(w, i), Msg: fmt.Sprintf(format, args...)}
}

// cmpLexer reads one compare in etcdctl's syntax, such as
// value("k") = "v", over runes so that positions are in code points.
type cmpLexer struct {
	w   dsl.Word
	src []rune
	i   int
}

func (l *cmpLexer) skip() {
	for l.i < len(l.src) && (l.src[l.i] == ' ' || l.src[l.i] == '\t') {
		l.i++
	}
}

func (l *cmpLexer) ident() string {
	l.skip()
	start := l.i
	for l.i < len(l.src) && (l.src[l.i] >= 'a' && l.src[l.i] <= 'z' || l.src[l.i] >= 'A' && l.src[l.i] <= 'Z') {
		l.i++
	}
	return strings.ToLower(string(l.src[start:l.i]))
}

func (l *cmpLexer) expect(c rune) error {
	l.skip()
	if l.i >= len(l.src) || l.src[l.i] != c {
		return posErr(l.w, l.i, "compare: want %q here in %q", c, l.w.Text)
	}
	l.i++
	return nil
}

// str reads a quoted string ("…" with \ escapes, or '…'), or a bare word
// when bare is allowed.
func (l *cmpLexer) str(bare bool) (string, error) {
	l.skip()
	if l.i >= len(l.src) {
		return "", posErr(l.w, l.i, "compare: missing value in %q", l.w.Text)
	}
	q := l.src[l.i]
	if q != '"' && q != '\'' {
		if !bare {
			return "", posErr(l.w, l.i, "compare: want a quoted key such as \"app/lock\" in %q", l.w.Text)
		}
		start := l.i
		for l.i < len(l.src) && l.src[l.i] != ' ' && l.src[l.i] != ')' {
			l.i++
		}
		return string(l.src[start:l.i]), nil
	}
	start := l.i
	l.i++
	var b strings.Builder
	for l.i < len(l.src) {
		c := l.src[l.i]
		switch {
		case c == q:
			l.i++
			return b.String(), nil
		case c == '\\' && q == '"' && l.i+1 < len(l.src):
			l.i++
			switch e := l.src[l.i]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			default:
				b.WriteRune(e)
			}
		default:
			b.WriteRune(c)
		}
		l.i++
	}
	return "", posErr(l.w, start, "compare: unterminated string in %q", l.w.Text)
}

// ParseCompare reads one txn guard in etcdctl's syntax: TARGET("KEY") OP
// VALUE, TARGET one of value, version, create, mod, lease (or etcdctl's
// short forms val, ver, c, m), OP one of = != > <. Errors carry positions
// inside w.
func ParseCompare(w dsl.Word) (Compare, error) {
	l := &cmpLexer{w: w, src: []rune(w.Text)}
	var c Compare
	l.skip()
	tpos := l.i
	switch name := l.ident(); name {
	case "value", "val":
		c.Target = CompareValue
	case "version", "ver":
		c.Target = CompareVersion
	case "create", "c", "createrev":
		c.Target = CompareCreate
	case "mod", "m", "modrev":
		c.Target = CompareMod
	case "lease":
		c.Target = CompareLease
	default:
		msg := fmt.Sprintf("compare: unknown target %q in %q; targets are value, version, create, mod, lease", name, w.Text)
		if s := dsl.Nearest(name, []string{"value", "version", "create", "mod", "lease"}); s != "" && name != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		return c, posErr(w, tpos, "%s", msg)
	}
	if err := l.expect('('); err != nil {
		return c, err
	}
	key, err := l.str(false)
	if err != nil {
		return c, err
	}
	c.Key = []byte(key)
	if err := l.expect(')'); err != nil {
		return c, err
	}
	l.skip()
	opos := l.i
	rest := string(l.src[l.i:])
	switch {
	case strings.HasPrefix(rest, "!="):
		c.Result, l.i = NotEqual, l.i+2
	case strings.HasPrefix(rest, "=="):
		c.Result, l.i = Equal, l.i+2
	case strings.HasPrefix(rest, "="):
		c.Result, l.i = Equal, l.i+1
	case strings.HasPrefix(rest, ">"):
		c.Result, l.i = Greater, l.i+1
	case strings.HasPrefix(rest, "<"):
		c.Result, l.i = Less, l.i+1
	default:
		return c, posErr(w, opos, "compare: want one of = != > < in %q", w.Text)
	}
	l.skip()
	vpos := l.i
	val, err := l.str(true)
	if err != nil {
		return c, err
	}
	l.skip()
	if l.i != len(l.src) {
		return c, posErr(w, l.i, "compare: unexpected %q after the value in %q", string(l.src[l.i:]), w.Text)
	}
	switch c.Target {
	case CompareValue:
		c.Value = []byte(val)
	case CompareLease:
		if c.Int, err = ParseLeaseID(val); err != nil {
			return c, posErr(w, vpos, "compare: %v", err)
		}
	default:
		if c.Int, err = strconv.ParseInt(val, 10, 64); err != nil {
			return c, posErr(w, vpos, "compare: want an integer, got %q", val)
		}
	}
	return c, nil
}

// opTable is the language of txn operations: kv statements without "kv".
var opTable = func() *dsl.Table {
	t := dsl.NewTable()
	for _, s := range []dsl.Spec{putSpec("put"), getSpec("get"), delSpec("del")} {
		s.Options = withoutOption(s.Options, "at")
		t.Register(s)
	}
	return t
}()

func withoutOption(opts []dsl.Option, name string) []dsl.Option {
	var out []dsl.Option
	for _, o := range opts {
		if o.Name != name {
			out = append(out, o)
		}
	}
	return out
}

// ParseOp reads one txn operation (put k v, get k, del k, with their
// flags and options) from w; errors carry positions inside w.
func ParseOp(w dsl.Word) (Op, error) {
	stmts, err := dsl.Parse(w.Text, opTable)
	if err != nil {
		if de, ok := err.(*dsl.Error); ok {
			msg := de.Msg
			if de.Suggest != "" {
				msg += fmt.Sprintf("; did you mean %q?", de.Suggest)
			}
			return Op{}, &engines.PosError{Code: wire.InvalidArgument, Pos: shiftPos(w, de.Pos), Msg: "txn operation: " + msg}
		}
		return Op{}, err
	}
	if len(stmts) != 1 {
		return Op{}, posErr(w, 0, "txn operation: want one statement such as 'put k v', got %d", len(stmts))
	}
	st := stmts[0]
	shiftStatement(w, st)
	switch st.Spec.Verb {
	case "put":
		p, err := buildPut(st)
		return Op{Put: &p}, err
	case "get":
		r, _, err := buildGet(st)
		return Op{Range: &r}, err
	default:
		d, err := buildDel(st)
		return Op{Delete: &d}, err
	}
}

// shiftPos maps a position inside w's text onto the statement w is in.
func shiftPos(w dsl.Word, p dsl.Pos) dsl.Pos {
	if p.Line > 1 {
		return p
	}
	return innerPos(w, p.Col-1)
}

func shiftStatement(w dsl.Word, st *dsl.Statement) {
	for k, a := range st.Args {
		a.Pos = shiftPos(w, a.Pos)
		st.Args[k] = a
	}
	for _, ws := range st.Options {
		for i := range ws {
			ws[i].Pos = shiftPos(w, ws[i].Pos)
		}
	}
}

// ParseTxn builds a TxnRequest from kv txn's if/then/else sections.
func ParseTxn(sections map[string][]dsl.Word) (TxnRequest, error) {
	var t TxnRequest
	for _, w := range sections["if"] {
		c, err := ParseCompare(w)
		if err != nil {
			return t, err
		}
		t.Compare = append(t.Compare, c)
	}
	for _, sec := range []struct {
		name string
		dst  *[]Op
	}{{"then", &t.Success}, {"else", &t.Failure}} {
		name, dst := sec.name, sec.dst
		for _, w := range sections[name] {
			o, err := ParseOp(w)
			if err != nil {
				return t, err
			}
			*dst = append(*dst, o)
		}
	}
	return t, nil
}
