package engines

import (
	"errors"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/filter"
)

// ErrorCode maps an error from an engine or the journal to its wire code:
// the code of a *wire.Error or *PosError in its chain, the journal's typed
// errors by kind, context errors as canceled and deadline_exceeded, and
// internal for anything else.
func ErrorCode(err error) wire.Code {
	var pe *PosError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &pe):
		return pe.Code
	case errors.Is(err, journal.ErrResourceExhausted):
		return wire.ResourceExhausted
	case errors.Is(err, journal.ErrClosed):
		return wire.Unavailable
	case errors.Is(err, journal.ErrInvalid):
		return wire.InvalidArgument
	case errors.Is(err, journal.ErrNotContinuous):
		return wire.FailedPrecondition
	case journal.IsDataLoss(err):
		return wire.DataLoss
	case errors.Is(err, filter.ErrCostLimit):
		return wire.ResourceExhausted
	}
	return wire.CodeOf(err)
}

// ErrorHint is what the daemon adds to an error's message to say what to
// do next, when the layer that made the error cannot know (the journal does
// not know the daemon's flags); "" when the message says enough.
func ErrorHint(err error) string {
	if errors.Is(err, journal.ErrResourceExhausted) {
		return "free disk space or lower --reserve-mb"
	}
	return ""
}
