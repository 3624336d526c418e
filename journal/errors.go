package journal

import (
	"errors"
	"fmt"
)

// The journal's errors are typed: callers branch on them with errors.Is,
// and the daemon (engines.ErrorCode) turns them into wire codes and hints.
// The journal itself knows nothing of the wire.
var (
	// ErrClosed reports that the journal (or the subscription) was closed.
	ErrClosed = errors.New("journal closed")

	// ErrResourceExhausted is matched by the error an append returns when
	// the free disk space is below the reserve.
	ErrResourceExhausted = errors.New("resource exhausted")

	// ErrInvalid is matched by an error about input the journal refuses: an
	// event body that does not encode, an import whose events do not chain.
	ErrInvalid = errors.New("invalid input")

	// ErrNotContinuous is matched by an import that does not continue the
	// stream where it ends.
	ErrNotContinuous = errors.New("import does not continue the stream")
)

// reserveError says how far below the reserve the free space is. It matches
// ErrResourceExhausted.
type reserveError struct {
	dir           string
	free, reserve uint64
}

func (e *reserveError) Error() string {
	return fmt.Sprintf("free space on %s (%d MiB) is below the reserve (%d MiB)",
		e.dir, e.free>>20, e.reserve>>20)
}

func (e *reserveError) Is(target error) bool { return target == ErrResourceExhausted }

// kindError is a message that matches one of the sentinel errors above.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }
func invalidf(format string, args ...any) error {
	return &kindError{kind: ErrInvalid, msg: fmt.Sprintf(format, args...)}
}
func discontinuousf(format string, args ...any) error {
	return &kindError{kind: ErrNotContinuous, msg: fmt.Sprintf(format, args...)}
}
