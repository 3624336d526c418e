// Package sysdig reads sysdig's (falco's) filter language and translates
// it to the CEL expression cairn's filters compile: one filter engine,
// two front ends. `evt.type=open and fd.name contains /etc` becomes
// `evt.type == "open" && fd.name.contains("/etc")`.
//
// The grammar is libsinsp's: checks `FIELD OP VALUE`, `FIELD exists`,
// joined by `and` and `or` and negated by `not`, with parentheses; `not`
// binds tighter than `and`, which binds tighter than `or`. Operators: =
// == != < <= > >= contains icontains startswith endswith glob pmatch in
// intersects exists. A value is a bare word (up to a space or a
// parenthesis) or a quoted string ('…' or "…", with backslash escapes);
// in, intersects and pmatch take a parenthesized list, separated by
// commas or spaces.
//
// A field cairn does not capture yet is an error that names it; nothing
// is translated to a guess.
package sysdig

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/cairnhq/cairn/journal/filter"
)

// Error is a filter that does not parse or names an unknown field, with
// the 1-based column of the place.
type Error struct {
	Col int
	Msg string
}

func (e *Error) Error() string { return fmt.Sprintf("col %d: %s", e.Col, e.Msg) }

// fieldType says how a field's values are written in CEL.
type fieldType int

const (
	fStr fieldType = iota
	fInt
	fBool
	fDouble
)

// field is a sysdig field as cairn's filter reads it.
type field struct {
	cel string // the CEL expression of its value
	typ fieldType
}

// lookupField finds a field by its sysdig name: journal/filter's fields
// carry sysdig's names (evt.type, fd.name, evt.is_io, thread.tid, …).
func lookupField(name string) (field, bool) {
	switch t, ok := filter.FieldType(name); {
	case !ok:
		return field{}, false
	case t == "int":
		return field{name, fInt}, true
	case t == "bool":
		return field{name, fBool}, true
	case t == "string":
		return field{name, fStr}, true
	case t == "double":
		return field{name, fDouble}, true
	}
	return field{}, false // time, data: not compared as sysdig compares
}

// Translate returns the CEL expression of a sysdig filter.
func Translate(src string) (string, error) {
	p := &parser{src: src}
	p.next()
	out, err := p.or()
	if err != nil {
		return "", err
	}
	if p.tok.kind != tEOF {
		return "", p.errf(p.tok.col, "unexpected %q: join checks with and/or", p.tok.text)
	}
	return out, nil
}

type tokKind int

const (
	tEOF tokKind = iota
	tWord
	tString
	tLParen
	tRParen
	tComma
	tOp // = == != < <= > >=
)

type token struct {
	kind tokKind
	text string
	col  int
}

type parser struct {
	src string
	off int
	tok token
	err error
}

func (p *parser) errf(col int, format string, args ...any) error {
	return &Error{Col: col, Msg: fmt.Sprintf(format, args...)}
}

// next reads the next token into p.tok; a lexing error is kept in p.err.
func (p *parser) next() {
	for p.off < len(p.src) && strings.IndexByte(" \t\r\n", p.src[p.off]) >= 0 {
		p.off++
	}
	col := p.off + 1
	if p.off >= len(p.src) {
		p.tok = token{kind: tEOF, col: col}
		return
	}
	c := p.src[p.off]
	switch {
	case c == '(':
		p.off++
		p.tok = token{tLParen, "(", col}
	case c == ')':
		p.off++
		p.tok = token{tRParen, ")", col}
	case c == ',':
		p.off++
		p.tok = token{tComma, ",", col}
	case c == '\'' || c == '"':
		s, err := p.quoted(c)
		if err != nil {
			p.err = err
			p.tok = token{kind: tEOF, col: col}
			return
		}
		p.tok = token{tString, s, col}
	case p.tok.kind == tOp && (c == '<' || c == '>'):
		// A value after an operator: evt.dir = < (sysdig's exit events).
		start := p.off
		for p.off < len(p.src) && strings.IndexByte(" \t\r\n(),", p.src[p.off]) < 0 {
			p.off++
		}
		p.tok = token{tWord, p.src[start:p.off], col}
	case strings.IndexByte("=!<>", c) >= 0:
		end := p.off + 1
		if end < len(p.src) && p.src[end] == '=' {
			end++
		}
		op := p.src[p.off:end]
		p.off = end
		if op == "!" {
			p.err = p.errf(col, `"!" alone is no operator: write != or not`)
		}
		p.tok = token{tOp, op, col}
	default:
		start := p.off
		for p.off < len(p.src) && strings.IndexByte(" \t\r\n(),=!<>'\"", p.src[p.off]) < 0 {
			p.off++
		}
		// A field argument: proc.aname[2], evt.arg[0].
		if p.off < len(p.src) && p.src[p.off] == '[' {
			if j := strings.IndexByte(p.src[p.off:], ']'); j >= 0 {
				p.off += j + 1
			}
		}
		p.tok = token{tWord, p.src[start:p.off], col}
	}
}

func (p *parser) quoted(q byte) (string, error) {
	col := p.off + 1
	p.off++
	var b strings.Builder
	for p.off < len(p.src) {
		c := p.src[p.off]
		p.off++
		switch {
		case c == q:
			return b.String(), nil
		case c == '\\' && p.off < len(p.src):
			d := p.src[p.off]
			p.off++
			switch d {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			default:
				b.WriteByte(d)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", p.errf(col, "unterminated string: close it with %c", q)
}

func (p *parser) advance() error {
	p.next()
	return p.err
}

func (p *parser) isWord(w string) bool {
	return p.tok.kind == tWord && strings.EqualFold(p.tok.text, w)
}

func (p *parser) or() (string, error) {
	if p.err != nil {
		return "", p.err
	}
	left, err := p.and()
	if err != nil {
		return "", err
	}
	for p.isWord("or") {
		if err := p.advance(); err != nil {
			return "", err
		}
		right, err := p.and()
		if err != nil {
			return "", err
		}
		left = "(" + left + " || " + right + ")"
	}
	return left, nil
}

func (p *parser) and() (string, error) {
	left, err := p.not()
	if err != nil {
		return "", err
	}
	for p.isWord("and") {
		if err := p.advance(); err != nil {
			return "", err
		}
		right, err := p.not()
		if err != nil {
			return "", err
		}
		left = "(" + left + " && " + right + ")"
	}
	return left, nil
}

func (p *parser) not() (string, error) {
	if p.isWord("not") {
		if err := p.advance(); err != nil {
			return "", err
		}
		inner, err := p.not()
		if err != nil {
			return "", err
		}
		return "!" + inner, nil
	}
	return p.primary()
}

func (p *parser) primary() (string, error) {
	switch p.tok.kind {
	case tLParen:
		col := p.tok.col
		if err := p.advance(); err != nil {
			return "", err
		}
		inner, err := p.or()
		if err != nil {
			return "", err
		}
		if p.tok.kind != tRParen {
			return "", p.errf(col, "unclosed parenthesis: add )")
		}
		if err := p.advance(); err != nil {
			return "", err
		}
		return "(" + inner + ")", nil
	case tWord:
		return p.check()
	case tEOF:
		return "", p.errf(p.tok.col, "missing a check: write FIELD OP VALUE, such as evt.type=open")
	}
	return "", p.errf(p.tok.col, "unexpected %q: a check starts with a field, such as proc.name", p.tok.text)
}

// check reads FIELD OP VALUE (or FIELD exists).
func (p *parser) check() (string, error) {
	name, col := p.tok.text, p.tok.col
	if err := p.advance(); err != nil {
		return "", err
	}
	var op string
	switch {
	case p.tok.kind == tOp:
		op = p.tok.text
	case p.tok.kind == tWord && isWordOp(strings.ToLower(p.tok.text)):
		op = strings.ToLower(p.tok.text)
	default:
		if f, ok := lookupField(name); ok && f.typ == fBool { // a boolean field alone: evt.failed
			return f.cel, nil
		}
		return "", p.errf(p.tok.col, "missing an operator after %s: one of = != < <= > >= contains icontains startswith endswith glob pmatch in exists", name)
	}
	opCol := p.tok.col
	if err := p.advance(); err != nil {
		return "", err
	}
	if name == "evt.type" && (op == "=" || op == "==" || op == "!=") && p.tok.text == "procinfo" {
		// sysdig's procinfo events are cairn's resource samples, which
		// carry no evt.type (they are no system calls).
		if err := p.advance(); err != nil {
			return "", err
		}
		if op == "!=" {
			return `(kind != "capture.sample")`, nil
		}
		return `(kind == "capture.sample")`, nil
	}
	if ends, ok := eitherEnd[name]; ok {
		return p.eitherCheck(name, ends, op, opCol)
	}
	f, ok := lookupField(name)
	if !ok {
		return "", p.errf(col, "field %s is not captured by cairn yet (docs/chisels.md lists the fields it has)", name)
	}
	if op == "exists" {
		return "has(" + f.cel + ")", nil
	}
	if f.typ == fBool {
		return boolCheck(p, f.cel, op, col)
	}
	if op == "in" || op == "intersects" || op == "pmatch" {
		vals, err := p.list(opCol, op)
		if err != nil {
			return "", err
		}
		var parts []string
		for _, v := range vals {
			if op == "pmatch" {
				q := strconv.Quote(strings.TrimSuffix(v, "/"))
				parts = append(parts, fmt.Sprintf("(%s == %s || %s.startsWith(%s + \"/\"))", f.cel, q, f.cel, q))
				continue
			}
			lit, err := literal(f, v, p, opCol)
			if err != nil {
				return "", err
			}
			parts = append(parts, lit)
		}
		if op == "pmatch" {
			return "(" + strings.Join(parts, " || ") + ")", nil
		}
		return fmt.Sprintf("(%s in [%s])", f.cel, strings.Join(parts, ", ")), nil
	}
	v, err := p.value(opCol, op)
	if err != nil {
		return "", err
	}
	switch op {
	case "=", "==", "!=", "<", "<=", ">", ">=":
		lit, err := literal(f, v, p, opCol)
		if err != nil {
			return "", err
		}
		if op == "=" {
			op = "=="
		}
		return fmt.Sprintf("(%s %s %s)", f.cel, op, lit), nil
	}
	if f.typ != fStr {
		return "", p.errf(opCol, "%s is a number: %s works on strings", name, op)
	}
	q := strconv.Quote(v)
	switch op {
	case "contains", "bcontains":
		return fmt.Sprintf("%s.contains(%s)", f.cel, q), nil
	case "icontains":
		return fmt.Sprintf("%s.matches(%s)", f.cel, strconv.Quote("(?i)"+regexp.QuoteMeta(v))), nil
	case "startswith", "bstartswith":
		return fmt.Sprintf("%s.startsWith(%s)", f.cel, q), nil
	case "endswith":
		return fmt.Sprintf("%s.endsWith(%s)", f.cel, q), nil
	case "glob":
		return fmt.Sprintf("%s.matches(%s)", f.cel, strconv.Quote(globRegexp(v))), nil
	}
	return "", p.errf(opCol, "operator %s is not supported", op)
}

// eitherEnd are sysdig's fields that match a socket's address at either
// end: fd.ip=127.0.0.1 is the server's or the client's.
var eitherEnd = map[string][2]string{
	"fd.ip":   {"fd.sip", "fd.cip"},
	"fd.port": {"fd.sport", "fd.cport"},
}

func (p *parser) eitherCheck(name string, ends [2]string, op string, opCol int) (string, error) {
	v, err := p.value(opCol, op)
	if err != nil {
		return "", err
	}
	var parts [2]string
	for i, end := range ends {
		f, _ := lookupField(end)
		lit, err := literal(f, v, p, opCol)
		if err != nil {
			return "", err
		}
		parts[i] = f.cel + " " + map[string]string{"=": "==", "==": "==", "!=": "!="}[op] + " " + lit
	}
	switch op {
	case "=", "==":
		return "(" + parts[0] + " || " + parts[1] + ")", nil
	case "!=":
		return "(" + parts[0] + " && " + parts[1] + ")", nil
	}
	return "", p.errf(opCol, "%s compares with = or != (it matches either end of a socket)", name)
}

func boolCheck(p *parser, d, op string, col int) (string, error) {
	v, err := p.value(col, op)
	if err != nil {
		return "", err
	}
	switch {
	case (op == "=" || op == "==") && v == "true", op == "!=" && v == "false":
		return d, nil
	case (op == "=" || op == "==") && v == "false", op == "!=" && v == "true":
		return "!" + d, nil
	}
	return "", p.errf(col, "a boolean field compares with = true or = false")
}

func isWordOp(w string) bool {
	switch w {
	case "contains", "icontains", "bcontains", "startswith", "bstartswith", "endswith", "glob", "pmatch", "in", "intersects", "exists":
		return true
	}
	return false
}

// value reads one value after an operator.
func (p *parser) value(opCol int, op string) (string, error) {
	switch p.tok.kind {
	case tWord, tString:
		v := p.tok.text
		return v, p.advance()
	}
	return "", p.errf(opCol, "missing the value after %s", op)
}

// list reads ( v, v … ).
func (p *parser) list(opCol int, op string) ([]string, error) {
	if p.tok.kind != tLParen {
		return nil, p.errf(opCol, "%s takes a list in parentheses, such as (a, b)", op)
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	var out []string
	for p.tok.kind != tRParen {
		switch p.tok.kind {
		case tWord, tString:
			out = append(out, p.tok.text)
		case tComma:
		default:
			return nil, p.errf(opCol, "unclosed list after %s: add )", op)
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, p.errf(opCol, "empty list after %s", op)
	}
	return out, p.advance()
}

// literal is v as a CEL literal of f's type.
func literal(f field, v string, p *parser, col int) (string, error) {
	if f.typ == fDouble {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return "", p.errf(col, "%q is not a number, and %s is one", v, f.cel)
		}
		lit := strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(lit, ".eEn") { // a CEL double literal needs a point
			lit += ".0"
		}
		return lit, nil
	}
	if f.typ == fInt {
		n, err := strconv.ParseInt(v, 0, 64)
		if err != nil {
			return "", p.errf(col, "%q is not a number, and %s is one", v, f.cel)
		}
		return strconv.FormatInt(n, 10), nil
	}
	return strconv.Quote(v), nil
}

// globRegexp is the RE2 of a shell glob (* ? [set]), anchored.
// globClass reads the set that opens at g[i] ('['), as fnmatch does: a
// leading '!' negates it, a ']' first in it is a member, '-' makes ranges.
// It returns the RE2 class and the index of the closing ']', or false for
// a '[' that opens no valid set (then it is a literal '[').
func globClass(g string, i int) (string, int, bool) {
	j := i + 1
	neg := j < len(g) && g[j] == '!'
	if neg {
		j++
	}
	start := j
	if j < len(g) && g[j] == ']' {
		j++
	}
	k := strings.IndexByte(g[j:], ']')
	if k < 0 {
		return "", 0, false
	}
	end := j + k
	var b strings.Builder
	b.WriteByte('[')
	if neg {
		b.WriteByte('^')
	}
	for _, c := range g[start:end] {
		if c == '-' {
			b.WriteByte('-')
		} else {
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteByte(']')
	if _, err := regexp.Compile(b.String()); err != nil {
		return "", 0, false // a reversed range (z-a)
	}
	return b.String(), end, true
}

func globRegexp(g string) string {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(g); i++ {
		switch c := g[i]; c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '[':
			if class, end, ok := globClass(g, i); ok {
				b.WriteString(class)
				i = end
				continue
			}
			b.WriteString(`\[`)
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return b.String()
}
