package engines

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/journal"
)

func TestErrorCode(t *testing.T) {
	for _, c := range []struct {
		err  error
		want wire.Code
	}{
		{nil, ""},
		{wire.Errorf(wire.NotFound, "no key %q", "a"), wire.NotFound},
		{fmt.Errorf("wrap: %w", wire.Errorf(wire.InvalidArgument, "x")), wire.InvalidArgument},
		{&PosError{Code: wire.OutOfRange, Msg: "far"}, wire.OutOfRange},
		{fmt.Errorf("append: %w", journal.ErrResourceExhausted), wire.ResourceExhausted},
		{fmt.Errorf("x: %w", journal.ErrClosed), wire.Unavailable},
		{fmt.Errorf("x: %w", journal.ErrInvalid), wire.InvalidArgument},
		{fmt.Errorf("x: %w", journal.ErrNotContinuous), wire.FailedPrecondition},
		{&journal.DataLossError{Stream: "audit", AfterSeq: 9, Cause: errors.New("crc mismatch")}, wire.DataLoss},
		{context.Canceled, wire.Canceled},
		{context.DeadlineExceeded, wire.DeadlineExceeded},
		{errors.New("boom"), wire.Internal},
	} {
		if got := ErrorCode(c.err); got != c.want {
			t.Errorf("ErrorCode(%v) = %q, want %q", c.err, got, c.want)
		}
	}
	if h := ErrorHint(fmt.Errorf("x: %w", journal.ErrResourceExhausted)); h != "free disk space or lower --reserve-mb" {
		t.Errorf("reserve hint %q", h)
	}
}
