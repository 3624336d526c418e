package journal

import (
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
)

// pebbleLogger adapts pebble's logger to slog.
type pebbleLogger struct {
	log *slog.Logger
}

var _ pebble.Logger = pebbleLogger{}

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Info(fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...))
}

// Fatalf must not return: pebble calls it on a failed commit and carries on
// as if the commit had succeeded when it does. Stopping the process is what
// DESIGN.md accepts ("a restart loses nothing acknowledged"); a panic rather
// than os.Exit keeps deferred cleanups and the stack trace.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg, "fatal", true)
	panic("journal: pebble: " + msg)
}
