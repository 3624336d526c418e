package erb

import "fmt"

// node is a piece of a parsed template.
type node interface{}

type (
	textNode struct{ s string }
	outNode  struct {
		x    expr
		line int
	}
	// ifNode is if/elsif/else (unless is an if of the negation).
	ifNode struct {
		conds  []expr
		bodies [][]node
		els    []node
		line   int
	}
	// eachNode is COLL.each do |a[, b]| … end (and each_with_index).
	eachNode struct {
		coll   expr
		method string
		params []string
		body   []node
		line   int
	}
	// ifpNode is if_p("a", …) do |a, …| … end[.else do … end].
	ifpNode struct {
		link   bool // if_link("name") do |l|
		names  []expr
		params []string
		body   []node
		els    []node
		line   int
	}
	assignNode struct {
		name string
		x    expr
		line int
	}
	// stmtNode is an expression evaluated for its effect (raise).
	stmtNode struct {
		x    expr
		line int
	}
)

// frame is an open block while the template is built.
type frame struct {
	kind string // if, each, if_p
	n    any
	line int
	// elsePart says statements now go to the else body.
	elsePart bool
}

type builder struct {
	name  string
	stack []*frame
	top   []node
}

func (b *builder) add(n node) {
	if len(b.stack) == 0 {
		b.top = append(b.top, n)
		return
	}
	f := b.stack[len(b.stack)-1]
	switch x := f.n.(type) {
	case *ifNode:
		if f.elsePart {
			x.els = append(x.els, n)
		} else {
			x.bodies[len(x.bodies)-1] = append(x.bodies[len(x.bodies)-1], n)
		}
	case *eachNode:
		x.body = append(x.body, n)
	case *ifpNode:
		if f.elsePart {
			x.els = append(x.els, n)
		} else {
			x.body = append(x.body, n)
		}
	}
}

func (b *builder) build(segs []segment) ([]node, error) {
	for _, s := range segs {
		switch {
		case !s.code:
			if s.text != "" {
				b.add(textNode{s.text})
			}
		case s.output:
			toks, err := lex(b.name, s.text, s.line)
			if err != nil {
				return nil, err
			}
			p := &parser{name: b.name, toks: toks}
			x, err := p.expr()
			if err != nil {
				return nil, err
			}
			if x, err = b.modifier(p, x); err != nil {
				return nil, err
			}
			b.add(outNode{x: x, line: s.line})
		default:
			toks, err := lex(b.name, s.text, s.line)
			if err != nil {
				return nil, err
			}
			// One tag may hold several statements, by line or ";".
			var stmt []tok
			for _, t := range append(toks, tok{kind: tSep}) {
				if t.kind != tSep {
					stmt = append(stmt, t)
					continue
				}
				if len(stmt) > 0 {
					if err := b.statement(stmt); err != nil {
						return nil, err
					}
				}
				stmt = nil
			}
		}
	}
	if len(b.stack) > 0 {
		f := b.stack[len(b.stack)-1]
		return nil, &Error{b.name, f.line, fmt.Sprintf("this %s is never closed with end", f.kind)}
	}
	return b.top, nil
}

// modifier reads a trailing "if COND" or "unless COND" after x.
func (b *builder) modifier(p *parser, x expr) (expr, error) {
	switch {
	case p.accept(tIdent, "if"):
		c, err := p.expr()
		if err != nil {
			return nil, err
		}
		x = condExpr{c, x, litExpr{nil}}
	case p.accept(tIdent, "unless"):
		c, err := p.expr()
		if err != nil {
			return nil, err
		}
		x = condExpr{c, litExpr{nil}, x}
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errf("unexpected %q: not in cairn's Ruby subset", t.text)
	}
	return x, nil
}

func (b *builder) statement(toks []tok) error {
	p := &parser{name: b.name, toks: toks}
	line := toks[0].line
	first := toks[0]
	cond := func() (expr, error) {
		p.next()
		c, err := p.expr()
		if err != nil {
			return nil, err
		}
		p.accept(tIdent, "then")
		if t := p.peek(); t.kind != tEOF {
			return nil, p.errf("unexpected %q after the condition", t.text)
		}
		return c, nil
	}
	if first.kind == tIdent {
		switch first.text {
		case "if", "unless":
			c, err := cond()
			if err != nil {
				return err
			}
			if first.text == "unless" {
				c = unaryExpr{"!", c}
			}
			n := &ifNode{conds: []expr{c}, bodies: [][]node{nil}, line: line}
			b.add(n)
			b.stack = append(b.stack, &frame{kind: "if", n: n, line: line})
			return nil
		case "elsif":
			f := b.open("if")
			if f == nil || f.elsePart {
				return &Error{b.name, line, "elsif without an open if"}
			}
			c, err := cond()
			if err != nil {
				return err
			}
			n := f.n.(*ifNode)
			n.conds = append(n.conds, c)
			n.bodies = append(n.bodies, nil)
			return nil
		case "else":
			f := b.open("if")
			if f == nil || f.elsePart || len(toks) > 1 {
				return &Error{b.name, line, "else without an open if"}
			}
			f.elsePart = true
			return nil
		case "end":
			if len(b.stack) == 0 {
				return &Error{b.name, line, "end without an open block"}
			}
			f := b.stack[len(b.stack)-1]
			b.stack = b.stack[:len(b.stack)-1]
			if len(toks) == 1 {
				return nil
			}
			// end.else do … end: the else of an if_p.
			p.next()
			if n, ok := f.n.(*ifpNode); ok && !f.elsePart && p.accept(tPunct, ".") && p.accept(tIdent, "else") && p.accept(tIdent, "do") && p.peek().kind == tEOF {
				b.stack = append(b.stack, &frame{kind: "if_p", n: n, line: line, elsePart: true})
				return nil
			}
			return &Error{b.name, line, "only end.else do (after if_p) may follow end"}
		}
	}
	// NAME = EXPR
	if first.kind == tIdent && len(toks) > 2 && toks[1].kind == tPunct && toks[1].text == "=" {
		p.pos = 2
		x, err := p.expr()
		if err != nil {
			return err
		}
		if x, err = b.modifier(p, x); err != nil {
			return err
		}
		b.add(assignNode{name: first.text, x: x, line: line})
		return nil
	}
	x, err := p.expr()
	if err != nil {
		return err
	}
	if p.accept(tIdent, "do") {
		params, err := blockParams(p)
		if err != nil {
			return err
		}
		c, ok := x.(callExpr)
		switch {
		case ok && c.recv == nil && (c.name == "if_p" || c.name == "if_link"):
			n := &ifpNode{link: c.name == "if_link", names: c.args, params: params, line: line}
			b.add(n)
			b.stack = append(b.stack, &frame{kind: "if_p", n: n, line: line})
			return nil
		case ok && c.recv != nil && (c.name == "each" || c.name == "each_with_index" || c.name == "each_pair") && len(c.args) == 0:
			n := &eachNode{coll: c.recv, method: c.name, params: params, line: line}
			b.add(n)
			b.stack = append(b.stack, &frame{kind: c.name, n: n, line: line})
			return nil
		}
		return &Error{b.name, line, "a do block is only supported after if_p(…), if_link(…), .each, .each_with_index or .each_pair"}
	}
	if x, err = b.modifier(p, x); err != nil {
		return err
	}
	b.add(stmtNode{x: x, line: line})
	return nil
}

// open returns the innermost open block if it is of kind.
func (b *builder) open(kind string) *frame {
	if len(b.stack) == 0 {
		return nil
	}
	if f := b.stack[len(b.stack)-1]; f.kind == kind {
		return f
	}
	return nil
}

func blockParams(p *parser) ([]string, error) {
	var params []string
	if p.accept(tPunct, "|") {
		for !p.accept(tPunct, "|") {
			t := p.next()
			if t.kind != tIdent {
				return nil, &Error{p.name, t.line, fmt.Sprintf("expected a block parameter, found %q", t.text)}
			}
			params = append(params, t.text)
			if !p.accept(tPunct, ",") {
				if err := p.expect("|"); err != nil {
					return nil, err
				}
				break
			}
		}
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errf("unexpected %q after do", t.text)
	}
	return params, nil
}
