package build

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Dockerfile is a Dockerfile parsed with BuildKit's parser and instruction
// packages: the grammar Docker itself reads (continuations, the escape
// directive, heredocs, exec and shell forms, ARG before FROM).
type Dockerfile struct {
	// Name is the file's name as errors show it.
	Name string
	// Digest is the sha256 of the file's bytes.
	Digest string
	// Stages are the FROM blocks in order; MetaArgs the ARGs before the
	// first FROM.
	Stages   []instructions.Stage
	MetaArgs []instructions.ArgCommand
	// Escape is the escape character (the escape directive, \ by default).
	Escape rune
	// Warnings are the parser's warnings, each with its line.
	Warnings []string
	lines    []string
}

// SyntaxError is a Dockerfile that does not parse: where, and the
// instruction's text.
type SyntaxError struct {
	File        string
	Line, Col   int
	Instruction string
	Msg         string
}

func (e *SyntaxError) Error() string {
	s := fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	if e.Instruction != "" {
		s += " (in " + e.Instruction + ")"
	}
	return s
}

// ParseDockerfile parses src, the Dockerfile called name. An error is a
// *SyntaxError.
func ParseDockerfile(name string, src []byte) (*Dockerfile, error) {
	sum := sha256.Sum256(src)
	df := &Dockerfile{Name: name, Digest: "sha256:" + hex.EncodeToString(sum[:]), lines: strings.Split(string(src), "\n")}
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, df.syntaxError(err, 0)
	}
	df.Escape = res.EscapeToken
	for _, w := range res.Warnings {
		line := 0
		if w.Location != nil {
			line = w.Location.Start.Line
		}
		df.Warnings = append(df.Warnings, fmt.Sprintf("%s:%d: %s", name, line, w.Short))
	}
	stages, meta, err := instructions.Parse(res.AST, nil)
	if err != nil {
		line := 0
		for _, n := range res.AST.Children {
			// instructions.Parse names the failing node's line in its
			// message only; find the node by trying each.
			if _, perr := instructions.ParseInstruction(n); perr != nil {
				line = n.StartLine
				break
			}
		}
		return nil, df.syntaxError(err, line)
	}
	if len(stages) == 0 {
		return nil, &SyntaxError{File: name, Line: 1, Col: 1, Msg: "no FROM instruction: a Dockerfile starts with FROM (after ARGs and directives)"}
	}
	df.Stages, df.MetaArgs = stages, meta
	return df, nil
}

// syntaxError places err: at its location when the parser gave one, else
// at line (0: the first line).
func (df *Dockerfile) syntaxError(err error, line int) *SyntaxError {
	col := 1
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		r := le.Locations[0][0]
		line = r.Start.Line
		col = r.Start.Character + 1
	}
	if line <= 0 {
		line = 1
	}
	msg := err.Error()
	// instructions.Parse prefixes "dockerfile parse error on line N: ",
	// which the position already says.
	if i := strings.Index(msg, ": "); strings.HasPrefix(msg, "dockerfile parse error on line") && i > 0 {
		msg = msg[i+2:]
	}
	e := &SyntaxError{File: df.Name, Line: line, Col: col, Msg: msg}
	if line-1 < len(df.lines) {
		e.Instruction = strings.TrimSpace(df.lines[line-1])
	}
	return e
}
