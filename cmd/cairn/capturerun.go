//go:build !thin

package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"time"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines/capture"
	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/filter"
	"github.com/cairnhq/cairn/journal/filter/sysdig"
)

// ingestEvery is how long traced events may wait in the CLI before they
// are sent, when fewer than a batch have come.
const ingestEvery = 200 * time.Millisecond

// captureRun is a `capture run [where 'CEL'] -- CMD ARGS…` as the verb
// table parsed it.
type captureRun struct {
	where   string
	args    []string
	snaplen int
}

// captureRunOf reads the statement. The grammar is the table's (the
// capture module's spec); only the command itself is checked here.
func captureRunOf(st *dsl.Statement) (captureRun, error) {
	cr := captureRun{snaplen: capture.DefaultSnaplen}
	if w, ok := st.Options["snaplen"]; ok && len(w) > 0 {
		n, err := strconv.Atoi(w[len(w)-1].Text)
		if err != nil || n < 0 || n > capture.MaxSnaplen {
			return cr, fmt.Errorf("capture run: snaplen=%s: give a number of bytes from 0 to %d", w[len(w)-1].Text, capture.MaxSnaplen)
		}
		cr.snaplen = n
	}
	if st.Where != nil {
		cr.where = st.Where.Text
	}
	if st.Filter != nil {
		cel, err := sysdig.Translate(st.Filter.Text)
		if err != nil {
			return cr, fmt.Errorf("capture run: filter: %w", err)
		}
		if cr.where != "" {
			cel = "(" + cel + ") && (" + cr.where + ")"
		}
		cr.where = cel
	}
	if len(st.Raw) == 0 {
		return cr, errors.New("capture run: no command; usage: capture run [where 'CEL'] -- CMD ARGS…")
	}
	cr.args = st.Raw
	return cr, nil
}

// runCaptureRun traces the command and streams its events to the daemon
// (capture ingest). It returns the command's exit code, or the CLI's own
// code when tracing or storing failed.
func (s *session) runCaptureRun(st *dsl.Statement) int {
	cr, err := captureRunOf(st)
	if err != nil {
		fmt.Fprintln(s.stderr, "cairn:", err)
		return exitUsage
	}
	var f *filter.Filter
	if cr.where != "" {
		if f, err = filter.Compile(cr.where); err != nil {
			fmt.Fprintf(s.stderr, "cairn: capture run: where: %v\n", err)
			return exitUsage
		}
	}
	// Reach the daemon before starting anything: a command whose events
	// cannot be stored is not run.
	c, err := s.client()
	if err != nil {
		return s.report(err)
	}

	u := &journal.User{UID: int64(os.Getuid())}
	if cu, err := user.Current(); err == nil {
		u.Name = cu.Username
	}
	dec := capture.NewDecoder(nil)
	dec.User = u
	dec.Snaplen = cr.snaplen

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
		return exitDaemonError
	}
	if serr != nil {
		fmt.Fprintf(s.stderr, "cairn: capture run: storing the traced events: %v\n", serr)
		return s.report(serr)
	}
	return code
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
