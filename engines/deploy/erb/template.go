// Package erb renders BOSH job templates: the part of ERB and Ruby that
// BOSH jobs use (docs/deploy.md lists it), evaluated in Go. p("a.b"),
// p("a.b", default), if_p("a") do |v| … end, spec.*, link("db") with
// .instances, .address, .p("k"), if/elsif/else/unless/end, each and
// each_with_index over arrays and hashes, local assignments, literals,
// comparisons and a few methods (to_s, to_i, to_json, join, size, …).
// Anything else is an error naming template:line, never a guess.
package erb

import (
	"fmt"
	"strings"
)

// Error is a template's error at a line.
type Error struct {
	Template string
	Line     int
	Msg      string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %s", e.Template, e.Line, e.Msg) }

// Template is a parsed template, ready to render many times.
type Template struct {
	name string
	body []node
}

// segment is a piece of the template source: text, or the code of a tag.
type segment struct {
	text   string
	code   bool
	output bool // <%= %>
	line   int
}

// split cuts the source into text and tags, applying ERB's "-" trim mode:
// "<%-" drops the indentation before the tag, "-%>" the newline after it.
func split(name, src string) ([]segment, error) {
	var segs []segment
	line := 1
	for len(src) > 0 {
		i := strings.Index(src, "<%")
		if i < 0 {
			segs = append(segs, segment{text: src, line: line})
			break
		}
		if strings.HasPrefix(src[i:], "<%%") { // a literal "<%"
			segs = append(segs, segment{text: src[:i] + "<%", line: line})
			line += strings.Count(src[:i], "\n")
			src = src[i+3:]
			continue
		}
		text := src[:i]
		rest := src[i+2:]
		trimLeft := strings.HasPrefix(rest, "-")
		if trimLeft {
			rest = rest[1:]
			// Drop the spaces between the line's start and the tag.
			j := strings.LastIndexByte(text, '\n')
			if strings.TrimLeft(text[j+1:], " \t") == "" {
				text = text[:j+1]
			}
		}
		segs = append(segs, segment{text: text, line: line})
		line += strings.Count(src[:i], "\n")
		end := strings.Index(rest, "%>")
		if end < 0 {
			return nil, &Error{name, line, "a tag opened with <% is never closed with %>"}
		}
		code := rest[:end]
		after := rest[end+2:]
		trimRight := strings.HasSuffix(code, "-")
		if trimRight {
			code = code[:len(code)-1]
			if strings.HasPrefix(after, "\n") {
				after = after[1:]
				line++
			} else if strings.HasPrefix(after, "\r\n") {
				after = after[2:]
				line++
			}
		}
		seg := segment{code: true, line: line}
		switch {
		case strings.HasPrefix(code, "="):
			seg.output, seg.text = true, code[1:]
		case strings.HasPrefix(code, "#"):
			seg.code, seg.text = false, ""
		default:
			seg.text = code
		}
		segs = append(segs, seg)
		line += strings.Count(code, "\n")
		src = after
	}
	return segs, nil
}

// Parse parses a template's source; name is how errors call it
// (the job's template path).
func Parse(name, src string) (*Template, error) {
	segs, err := split(name, src)
	if err != nil {
		return nil, err
	}
	p := &builder{name: name}
	body, err := p.build(segs)
	if err != nil {
		return nil, err
	}
	return &Template{name: name, body: body}, nil
}

// Render evaluates the template against ctx.
func (t *Template) Render(ctx *Context) (string, error) {
	var b strings.Builder
	ev := &evaluator{name: t.name, ctx: ctx, vars: []map[string]any{{}}}
	if err := ev.run(t.body, &b); err != nil {
		return "", err
	}
	return b.String(), nil
}

// Render parses and renders a template in one call.
func Render(name, src string, ctx *Context) (string, error) {
	t, err := Parse(name, src)
	if err != nil {
		return "", err
	}
	return t.Render(ctx)
}
