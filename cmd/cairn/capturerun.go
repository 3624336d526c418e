package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/cairnhq/cairn/engines/capture"
	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/filter"
)

// ingestEvery is how long traced events may wait in the CLI before they
// are sent, when fewer than a batch have come.
const ingestEvery = 200 * time.Millisecond

// captureRun is a parsed `capture run [where 'CEL'] -- CMD ARGS…`.
type captureRun struct {
	where string
	args  []string
}

// parseCaptureRun recognises `capture run …` among the CLI's words. It
// runs in the CLI, not the daemon: the command is traced as the caller.
func parseCaptureRun(words []string) (cr captureRun, ok bool, err error) {
	if len(words) < 2 || words[0] != "capture" || words[1] != "run" {
		return cr, false, nil
	}
	rest := words[2:]
	for len(rest) > 0 && rest[0] != "--" {
		if rest[0] == "where" && len(rest) > 1 {
			if cr.where != "" {
				return cr, true, errors.New("capture run: where given twice")
			}
			cr.where, rest = rest[1], rest[2:]
			continue
		}
		return cr, true, fmt.Errorf("capture run: unexpected %q; usage: capture run [where 'CEL'] -- CMD ARGS…", rest[0])
	}
	if len(rest) < 2 {
		return cr, true, errors.New("capture run: no command; usage: capture run [where 'CEL'] -- CMD ARGS…")
	}
	cr.args = rest[1:]
	return cr, true, nil
}

// runCaptureRun traces the command and streams its events to the daemon
// (capture ingest). It returns the command's exit code, or the CLI's own
// code when tracing or storing failed.
func (s *session) runCaptureRun(words []string) (int, bool) {
	cr, ok, err := parseCaptureRun(words)
	if !ok {
		return 0, false
	}
	if err != nil {
		fmt.Fprintln(s.stderr, "cairn:", err)
		return exitUsage, true
	}
	var f *filter.Filter
	if cr.where != "" {
		if f, err = filter.Compile(cr.where); err != nil {
			fmt.Fprintf(s.stderr, "cairn: capture run: where: %v\n", err)
			return exitUsage, true
		}
	}
	// Reach the daemon before starting anything: a command whose events
	// cannot be stored is not run.
	c, err := s.client()
	if err != nil {
		return s.report(err), true
	}

	u := &journal.User{UID: int64(os.Getuid())}
	if cu, err := user.Current(); err == nil {
		u.Name = cu.Username
	}
	dec := capture.NewDecoder(nil)
	dec.User = u

	events := make(chan *journal.Body, 4096)
	sent := make(chan error, 1)
	go func() {
		sent <- sendTraced(context.Background(), events, func(stmt string) error { _, err := c.Do(context.Background(), stmt); return err })
	}()

	code, terr := capture.Trace(capture.TraceOptions{
		Args: cr.args, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Decoder: dec,
		Emit: func(b *journal.Body) {
			if f != nil && !f.MatchEvent(&journal.Event{Stream: journal.Capture, Time: b.Evt.Time, Body: *b}) {
				return
			}
			events <- b
		},
	})
	close(events)
	serr := <-sent
	if terr != nil {
		fmt.Fprintf(s.stderr, "cairn: capture run: %v\n", terr)
		if errors.Is(terr, capture.ErrTraceDenied) {
			fmt.Fprintln(s.stderr, "cairn: ptrace is refused here (see /proc/sys/kernel/yama/ptrace_scope, or the container's seccomp policy and CAP_SYS_PTRACE)")
		}
		return exitDaemonError, true
	}
	if serr != nil {
		fmt.Fprintf(s.stderr, "cairn: capture run: storing the traced events: %v\n", serr)
		return s.report(serr), true
	}
	return code, true
}

// sendTraced batches events into `capture ingest` statements of at most
// capture.MaxIngestBatch encoded bytes, sent at least every ingestEvery.
// After a failed send it keeps draining, so the traced command is never
// blocked by a lost daemon, and returns the first error.
func sendTraced(ctx context.Context, events <-chan *journal.Body, do func(stmt string) error) error {
	var raw []byte
	var first error
	flush := func() {
		if len(raw) == 0 {
			return
		}
		if first == nil {
			first = do("capture ingest events=" + base64.StdEncoding.EncodeToString(raw))
		}
		raw = raw[:0]
	}
	tick := time.NewTicker(ingestEvery)
	defer tick.Stop()
	for {
		select {
		case b, ok := <-events:
			if !ok {
				flush()
				return first
			}
			next, err := capture.AppendTraceEvent(raw, b)
			if err != nil {
				continue
			}
			if len(next) > capture.MaxIngestBatch && len(raw) > 0 {
				flush()
				next, _ = capture.AppendTraceEvent(raw, b)
			}
			raw = next
			if len(raw) >= capture.MaxIngestBatch {
				flush()
			}
		case <-tick.C:
			flush()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
