package dsl

import (
	"fmt"
	"strconv"
)

// Pos is a 1-based line and column; columns are counted in code points.
type Pos struct{ Line, Col int }

// String formats the position as "line:col".
func (p Pos) String() string {
	return strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Col)
}

// Error is a parse or bind error at a position, with an optional suggestion.
type Error struct {
	Pos     Pos
	Msg     string
	Suggest string // the nearest valid name, or "" when nothing is close
}

// Error formats the error as `line:col: msg; did you mean "x"?`.
func (e *Error) Error() string {
	s := e.Pos.String() + ": " + e.Msg
	if e.Suggest != "" {
		s += fmt.Sprintf("; did you mean %q?", e.Suggest)
	}
	return s
}

func errorf(p Pos, suggest, format string, args ...any) *Error {
	return &Error{Pos: p, Msg: fmt.Sprintf(format, args...), Suggest: suggest}
}
