package client

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cairnhq/cairn/client/wire"
)

// Error codes the daemon uses that callers commonly branch on. The full set is
// gRPC's code names in snake_case plus CodeParse.
const (
	// CodeParse marks a statement the DSL parser rejected; it arrives as a *ParseError.
	CodeParse = wire.Parse
	// CodeInvalidArgument marks a well-formed statement with a bad argument (bad CEL, bad HCL, …).
	CodeInvalidArgument = wire.InvalidArgument
	// CodeCanceled marks a request that ended because it was canceled.
	CodeCanceled = wire.Canceled
	// CodeNotFound marks a request about something that does not exist.
	CodeNotFound = wire.NotFound
)

// Pos is a 1-based position in a statement; Col counts code points.
type Pos = wire.Pos

// UnreachableError reports that the daemon could not be reached: the dial
// failed, or the connection was lost before the request's answer was complete.
type UnreachableError struct {
	Socket string // the socket path that was dialled
	Err    error  // the cause
}

// Error returns a message naming the socket and the cause.
func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the daemon at %s: %v", e.Socket, e.Err)
}

// Unwrap returns the cause.
func (e *UnreachableError) Unwrap() error { return e.Err }

// ParseError reports a statement the daemon's DSL parser rejected (code "parse").
type ParseError struct {
	Pos     Pos    // where the parser stopped
	Message string // the daemon's message, which normally starts with "line:col: "
}

// Error returns the daemon's message, prefixed with the position if the
// message does not already carry it.
func (e *ParseError) Error() string {
	prefix := fmt.Sprintf("%d:%d:", e.Pos.Line, e.Pos.Col)
	if e.Pos.Line == 0 || strings.HasPrefix(e.Message, prefix) {
		return e.Message
	}
	return prefix + " " + e.Message
}

// DaemonError reports any error answer other than a parse error.
type DaemonError struct {
	Code    wire.Code // gRPC code name in snake_case, e.g. "not_found"
	Message string    // the daemon's message
	Pos     *Pos      // set when the error points into the statement (e.g. a CEL error)
}

// Error returns the daemon's message followed by the code.
func (e *DaemonError) Error() string {
	if e.Code == "" {
		return e.Message
	}
	return fmt.Sprintf("%s (%s)", e.Message, e.Code)
}

// IsCanceled reports whether err is the daemon's answer to a canceled request.
func IsCanceled(err error) bool {
	var de *DaemonError
	return errors.As(err, &de) && de.Code == CodeCanceled
}

// ExitCode maps an error to the CLI's exit code: 0 for nil, 3 when the daemon
// cannot be reached, 2 for parse and invalid_argument errors, 1 otherwise.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ue *UnreachableError
	if errors.As(err, &ue) {
		return 3
	}
	var pe *ParseError
	if errors.As(err, &pe) {
		return 2
	}
	var de *DaemonError
	if errors.As(err, &de) && (de.Code == CodeInvalidArgument || de.Code == CodeParse) {
		return 2
	}
	return 1
}

// typed turns an error answer into *ParseError or *DaemonError.
func typedError(w *wire.Error) error {
	if w.Code == CodeParse {
		pe := &ParseError{Message: w.Message}
		if w.Pos != nil {
			pe.Pos = *w.Pos
		}
		return pe
	}
	return &DaemonError{Code: w.Code, Message: w.Message, Pos: w.Pos}
}
