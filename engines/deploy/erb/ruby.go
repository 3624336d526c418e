package erb

import (
	"fmt"
	"strconv"
	"strings"
)

// tokKind is the kind of a Ruby token.
type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString // double-quoted: may interpolate
	tRawString
	tNumber
	tPunct
	tSep // newline or ;
)

type tok struct {
	kind tokKind
	text string
	line int
}

// lex cuts Ruby code into tokens; line is the line the code starts on.
func lex(name, src string, line int) ([]tok, error) {
	var out []tok
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n' || c == ';':
			out = append(out, tok{tSep, string(c), line})
			if c == '\n' {
				line++
			}
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(src) && isIdentChar(src[j]) {
				j++
			}
			if j < len(src) && (src[j] == '?' || src[j] == '!') && (j+1 >= len(src) || src[j+1] != '=') {
				j++
			}
			out = append(out, tok{tIdent, src[i:j], line})
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(src) && (src[j] >= '0' && src[j] <= '9' || src[j] == '.' && j+1 < len(src) && src[j+1] >= '0' && src[j+1] <= '9' || src[j] == '_') {
				j++
			}
			out = append(out, tok{tNumber, strings.ReplaceAll(src[i:j], "_", ""), line})
			i = j
		case c == '"' || c == '\'':
			j := i + 1
			var b strings.Builder
			for ; j < len(src) && src[j] != c; j++ {
				if src[j] == '\\' && j+1 < len(src) {
					j++
					if c == '\'' {
						if src[j] != '\'' && src[j] != '\\' {
							b.WriteByte('\\')
						}
						b.WriteByte(src[j])
						continue
					}
					switch src[j] {
					case 'n':
						b.WriteByte('\n')
					case 't':
						b.WriteByte('\t')
					case '#':
						b.WriteString(`\#`) // not an interpolation
					default:
						b.WriteByte(src[j])
					}
					continue
				}
				if src[j] == '\n' {
					line++
				}
				b.WriteByte(src[j])
			}
			if j >= len(src) {
				return nil, &Error{name, line, "a string is never closed"}
			}
			k := tString
			if c == '\'' {
				k = tRawString
			}
			out = append(out, tok{k, b.String(), line})
			i = j + 1
		default:
			for _, op := range []string{"==", "!=", "&&", "||", "<=", ">=", "=>", "::", "..", "=~"} {
				if strings.HasPrefix(src[i:], op) {
					out = append(out, tok{tPunct, op, line})
					i += len(op)
					goto next
				}
			}
			if strings.ContainsRune("()[]{},.=!<>+-*/%|?:&", rune(c)) {
				out = append(out, tok{tPunct, string(c), line})
				i++
				continue
			}
			return nil, &Error{name, line, fmt.Sprintf("unexpected character %q: not in cairn's Ruby subset", c)}
		next:
		}
	}
	return out, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || c == '@' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

// expr is a Ruby expression of the subset.
type expr interface{}

type (
	litExpr    struct{ v any }
	interpExpr struct{ parts []expr } // strings and expressions, joined by to_s
	identExpr  struct {
		name string
		line int
	}
	callExpr struct {
		recv  expr // nil: a function (p, link, …)
		name  string
		args  []expr
		block *blockExpr // { |x| … } or (&:name)
		line  int
	}
	// blockExpr is a one-expression block: { |x| x.address }.
	blockExpr struct {
		params []string
		body   expr
	}
	indexExpr struct {
		recv, idx expr
		line      int
	}
	unaryExpr struct {
		op string
		x  expr
	}
	binaryExpr struct {
		op   string
		l, r expr
		line int
	}
	condExpr  struct{ c, a, b expr }
	arrayExpr struct{ elems []expr }
	// symProc is &:name, only as a method's last argument.
	symProc  string
	hashExpr struct{ keys, vals []expr }
)

// parser parses the tokens of one statement.
type parser struct {
	name string
	toks []tok
	pos  int
}

func (p *parser) peek() tok {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	line := 0
	if len(p.toks) > 0 {
		line = p.toks[len(p.toks)-1].line
	}
	return tok{kind: tEOF, line: line}
}

func (p *parser) next() tok {
	t := p.peek()
	if p.pos < len(p.toks) {
		p.pos++
	}
	return t
}

func (p *parser) is(kind tokKind, text string) bool {
	t := p.peek()
	return t.kind == kind && t.text == text
}

func (p *parser) accept(kind tokKind, text string) bool {
	if p.is(kind, text) {
		p.pos++
		return true
	}
	return false
}

func (p *parser) errf(format string, args ...any) error {
	return &Error{p.name, p.peek().line, fmt.Sprintf(format, args...)}
}

func (p *parser) expect(text string) error {
	if !p.accept(tPunct, text) {
		t := p.peek()
		if t.kind == tEOF {
			return p.errf("expected %q, found the end of the code", text)
		}
		return p.errf("expected %q, found %q", text, t.text)
	}
	return nil
}

// Precedence, lowest first: not; and/or; ?:; ||; &&; ==/!=; < >; + -; * / %; unary; postfix.
func (p *parser) expr() (expr, error) {
	if p.is(tIdent, "not") {
		p.next()
		x, err := p.expr()
		return unaryExpr{"!", x}, err
	}
	l, err := p.ternary()
	if err != nil {
		return nil, err
	}
	for p.is(tIdent, "and") || p.is(tIdent, "or") {
		op := "&&"
		if p.next().text == "or" {
			op = "||"
		}
		r, err := p.ternary()
		if err != nil {
			return nil, err
		}
		l = binaryExpr{op: op, l: l, r: r}
	}
	return l, nil
}

func (p *parser) ternary() (expr, error) {
	c, err := p.binary(0)
	if err != nil {
		return nil, err
	}
	if !p.accept(tPunct, "?") {
		return c, nil
	}
	a, err := p.ternary()
	if err != nil {
		return nil, err
	}
	if err := p.expect(":"); err != nil {
		return nil, err
	}
	b, err := p.ternary()
	if err != nil {
		return nil, err
	}
	return condExpr{c, a, b}, nil
}

var levels = [][]string{{"||"}, {"&&"}, {"==", "!="}, {"<", ">", "<=", ">="}, {"+", "-"}, {"*", "/", "%"}}

func (p *parser) binary(level int) (expr, error) {
	if level == len(levels) {
		return p.unary()
	}
	l, err := p.binary(level + 1)
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		found := false
		if t.kind == tPunct {
			for _, op := range levels[level] {
				if t.text == op {
					found = true
				}
			}
		}
		if !found {
			if t.kind == tPunct && t.text == "=~" {
				return nil, p.errf("regular expressions (=~) are not in cairn's Ruby subset")
			}
			return l, nil
		}
		p.next()
		r, err := p.binary(level + 1)
		if err != nil {
			return nil, err
		}
		l = binaryExpr{op: t.text, l: l, r: r, line: t.line}
	}
}

func (p *parser) unary() (expr, error) {
	if p.accept(tPunct, "!") {
		x, err := p.unary()
		return unaryExpr{"!", x}, err
	}
	if p.accept(tPunct, "-") {
		x, err := p.unary()
		return unaryExpr{"-", x}, err
	}
	if p.is(tPunct, "&") {
		p.next()
		if err := p.expect(":"); err != nil {
			return nil, err
		}
		t := p.next()
		if t.kind != tIdent {
			return nil, &Error{p.name, t.line, "expected a method name after &:"}
		}
		return symProc(t.text), nil
	}
	return p.postfix()
}

func (p *parser) postfix() (expr, error) {
	x, err := p.primary()
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case p.is(tPunct, "."):
			p.next()
			t := p.next()
			if t.kind != tIdent {
				return nil, &Error{p.name, t.line, fmt.Sprintf("expected a method name after \".\", found %q", t.text)}
			}
			c := callExpr{recv: x, name: t.text, line: t.line}
			if p.is(tPunct, "(") {
				if c.args, err = p.args(); err != nil {
					return nil, err
				}
				// (&:name) is the block { |x| x.name }.
				if n := len(c.args); n > 0 {
					if sym, ok := c.args[n-1].(symProc); ok {
						c.args = c.args[:n-1]
						c.block = &blockExpr{params: []string{"\x00it"}, body: callExpr{recv: identExpr{name: "\x00it", line: t.line}, name: string(sym), line: t.line}}
					}
				}
			}
			if p.is(tPunct, "{") && p.pos+1 < len(p.toks) && p.toks[p.pos+1].text == "|" {
				p.next()
				b := &blockExpr{}
				p.next() // |
				for !p.accept(tPunct, "|") {
					pt := p.next()
					if pt.kind != tIdent {
						return nil, &Error{p.name, pt.line, fmt.Sprintf("expected a block parameter, found %q", pt.text)}
					}
					b.params = append(b.params, pt.text)
					p.accept(tPunct, ",")
				}
				if b.body, err = p.expr(); err != nil {
					return nil, err
				}
				if err := p.expect("}"); err != nil {
					return nil, err
				}
				c.block = b
			}
			x = c
		case p.is(tPunct, "["):
			t := p.next()
			idx, err := p.expr()
			if err != nil {
				return nil, err
			}
			if err := p.expect("]"); err != nil {
				return nil, err
			}
			x = indexExpr{recv: x, idx: idx, line: t.line}
		case p.is(tPunct, "::"):
			return nil, p.errf("constants and modules (::) are not in cairn's Ruby subset")
		default:
			return x, nil
		}
	}
}

func (p *parser) args() ([]expr, error) {
	if err := p.expect("("); err != nil {
		return nil, err
	}
	var args []expr
	for !p.accept(tPunct, ")") {
		a, err := p.expr()
		if err != nil {
			return nil, err
		}
		args = append(args, a)
		if !p.accept(tPunct, ",") {
			if err := p.expect(")"); err != nil {
				return nil, err
			}
			break
		}
	}
	return args, nil
}

// keywords that end an expression or open a block: never a value.
var keywords = map[string]bool{"if": true, "unless": true, "elsif": true, "else": true, "end": true, "do": true,
	"then": true, "while": true, "until": true, "case": true, "when": true, "def": true, "class": true, "module": true,
	"begin": true, "rescue": true, "ensure": true, "yield": true, "return": true, "for": true, "in": true}

func (p *parser) primary() (expr, error) {
	t := p.next()
	switch t.kind {
	case tNumber:
		if strings.Contains(t.text, ".") {
			f, err := strconv.ParseFloat(t.text, 64)
			if err != nil {
				return nil, &Error{p.name, t.line, fmt.Sprintf("bad number %q", t.text)}
			}
			return litExpr{f}, nil
		}
		n, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil {
			return nil, &Error{p.name, t.line, fmt.Sprintf("bad number %q", t.text)}
		}
		return litExpr{n}, nil
	case tRawString:
		return litExpr{t.text}, nil
	case tString:
		return p.interpolate(t)
	case tIdent:
		switch t.text {
		case "nil":
			return litExpr{nil}, nil
		case "true":
			return litExpr{true}, nil
		case "false":
			return litExpr{false}, nil
		}
		if keywords[t.text] {
			return nil, &Error{p.name, t.line, fmt.Sprintf("%q here is not in cairn's Ruby subset", t.text)}
		}
		if t.text[0] == '@' || t.text[0] >= 'A' && t.text[0] <= 'Z' {
			return nil, &Error{p.name, t.line, fmt.Sprintf("%s: instance variables and constants are not in cairn's Ruby subset", t.text)}
		}
		if p.is(tPunct, "(") {
			args, err := p.args()
			if err != nil {
				return nil, err
			}
			return callExpr{name: t.text, args: args, line: t.line}, nil
		}
		return identExpr{name: t.text, line: t.line}, nil
	case tPunct:
		switch t.text {
		case "(":
			x, err := p.expr()
			if err != nil {
				return nil, err
			}
			return x, p.expect(")")
		case "[":
			var a arrayExpr
			for !p.accept(tPunct, "]") {
				x, err := p.expr()
				if err != nil {
					return nil, err
				}
				a.elems = append(a.elems, x)
				if !p.accept(tPunct, ",") {
					if err := p.expect("]"); err != nil {
						return nil, err
					}
					break
				}
			}
			return a, nil
		case "{":
			var h hashExpr
			for !p.accept(tPunct, "}") {
				k, err := p.expr()
				if err != nil {
					return nil, err
				}
				if err := p.expect("=>"); err != nil {
					return nil, err
				}
				v, err := p.expr()
				if err != nil {
					return nil, err
				}
				h.keys, h.vals = append(h.keys, k), append(h.vals, v)
				if !p.accept(tPunct, ",") {
					if err := p.expect("}"); err != nil {
						return nil, err
					}
					break
				}
			}
			return h, nil
		case ":":
			return nil, &Error{p.name, t.line, "symbols (:name) are not in cairn's Ruby subset"}
		}
	case tEOF:
		return nil, &Error{p.name, t.line, "expected an expression, found the end of the code"}
	}
	return nil, &Error{p.name, t.line, fmt.Sprintf("unexpected %q: not in cairn's Ruby subset", t.text)}
}

// interpolate parses a double-quoted string's #{…} parts.
func (p *parser) interpolate(t tok) (expr, error) {
	s := t.text
	var parts []expr
	for {
		i := strings.Index(s, "#{")
		if i > 0 && s[i-1] == '\\' {
			parts = append(parts, litExpr{s[:i-1] + "#{"})
			s = s[i+2:]
			continue
		}
		if i < 0 {
			parts = append(parts, litExpr{strings.ReplaceAll(s, `\#`, "#")})
			break
		}
		parts = append(parts, litExpr{strings.ReplaceAll(s[:i], `\#`, "#")})
		depth, j := 1, i+2
		for ; j < len(s) && depth > 0; j++ {
			switch s[j] {
			case '{':
				depth++
			case '}':
				depth--
			}
		}
		if depth > 0 {
			return nil, &Error{p.name, t.line, "#{ in a string is never closed"}
		}
		toks, err := lex(p.name, s[i+2:j-1], t.line)
		if err != nil {
			return nil, err
		}
		sub := &parser{name: p.name, toks: toks}
		x, err := sub.expr()
		if err != nil {
			return nil, err
		}
		if sub.peek().kind != tEOF {
			return nil, sub.errf("unexpected %q in #{…}", sub.peek().text)
		}
		parts = append(parts, x)
		s = s[j:]
	}
	if len(parts) == 1 {
		return parts[0], nil
	}
	return interpExpr{parts}, nil
}
