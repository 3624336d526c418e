package journal

import (
	"context"
	"errors"
	"fmt"
)

// ErrClosed reports that the journal (or the subscription) was closed.
var ErrClosed = errors.New("journal closed")

// ErrResourceExhausted is matched (with errors.Is) by the error an append
// returns when the free disk space is below the reserve.
var ErrResourceExhausted = errors.New("resource exhausted")

// reserveError says how far below the reserve the free space is and what to
// do about it. It matches ErrResourceExhausted.
type reserveError struct {
	dir           string
	free, reserve uint64
}

func (e *reserveError) Error() string {
	return fmt.Sprintf("free space on %s (%d MiB) is below the reserve (%d MiB): free disk space or lower --reserve",
		e.dir, e.free>>20, e.reserve>>20)
}

func (e *reserveError) Is(target error) bool { return target == ErrResourceExhausted }

// CodeError carries a wire error code (gRPC names in snake_case:
// invalid_argument, not_found, failed_precondition, resource_exhausted, …)
// from engines and the journal to the daemon.
type CodeError struct {
	Code, Msg string
}

func (e *CodeError) Error() string { return e.Msg }

// Errorf returns a *CodeError with the given code and formatted message.
func Errorf(code, format string, args ...any) error {
	return &CodeError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Code returns the wire code of err: the code of a *CodeError in its chain,
// "resource_exhausted" for ErrResourceExhausted, "unavailable" for
// ErrClosed, "canceled" and "deadline_exceeded" for context errors, "" for
// nil and "internal" for anything else.
func Code(err error) string {
	var ce *CodeError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ce):
		return ce.Code
	case errors.Is(err, ErrResourceExhausted):
		return "resource_exhausted"
	case errors.Is(err, ErrClosed):
		return "unavailable"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	}
	return "internal"
}
