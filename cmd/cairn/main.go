// Command cairn runs the cairn daemon (`cairn daemon`) and is its command-line
// client: it sends a statement to the daemon over its unix socket and prints
// the answers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/cairnhq/cairn/client"
)

// Exit codes of the CLI contract.
const (
	exitOK          = 0
	exitDaemonError = 1
	exitUsage       = 2
	exitUnreachable = 3
	// exitInterrupted is used when a second interrupt abandons a statement
	// whose cancel the daemon did not answer.
	exitInterrupted = 130
)

const usageText = `usage:
  cairn [--socket PATH] [-o table|json] STATEMENT…   run one statement
  cairn [--socket PATH] [-o table|json] -f FILE      run a file's statements (- for stdin), stop at the first error
  cairn [--socket PATH] [-o table|json] shell        interactive prompt
  cairn [-o table|json] read FILE [salvage] [FILTERS…] [| chisel NAME ARGS…]
                                                     read a capture file, no daemon needed
  cairn daemon [FLAGS…]                              run the daemon

'cairn help' lists the statements the daemon understands.

flags:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is the whole CLI, returning the process exit code.
func run(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	if code, handed := handOff(args); handed {
		return code
	}

	fs := flag.NewFlagSet("cairn", flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("socket", "", "daemon socket `path` (default $CAIRN_SOCKET, else "+client.DefaultSocket()+")")
	output := fs.String("o", "table", "output `format`: table or json (NDJSON)")
	file := fs.String("f", "", "run the statements in `file`, one request per line (- reads stdin)")
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	// Parse stops at the first word that is not a flag: everything from
	// there on is the statement, flags included.
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *output != "table" && *output != "json" {
		fmt.Fprintf(stderr, "cairn: -o %s: the output format is table or json\n", *output)
		return exitUsage
	}
	words := fs.Args()

	s := &session{socket: *socket, json: *output == "json", stdout: stdout, stderr: stderr}
	if s.socket == "" {
		s.socket = client.DefaultSocket()
	}
	defer s.close()

	// An interrupt cancels the running statement instead of killing us:
	// tail and kv watch are meant to be stopped with ^C.
	interrupts := make(chan os.Signal, 1)
	signal.Notify(interrupts, os.Interrupt)
	defer signal.Stop(interrupts)
	s.interrupts = interrupts

	switch {
	case *file != "":
		if len(words) > 0 {
			fmt.Fprintln(stderr, "cairn: -f takes no statement words")
			return exitUsage
		}
		return s.runFile(*file, stdin)
	case len(words) == 0:
		fs.Usage()
		return exitUsage
	case words[0] == "shell":
		if len(words) > 1 {
			fmt.Fprintln(stderr, "cairn: shell takes no arguments")
			return exitUsage
		}
		return s.runShell(stdin)
	}
	_, err := s.dispatch(statement(words))
	return s.report(err)
}

// session holds what the modes share: one connection, dialled on first
// use and again after it is lost, and the output settings.
type session struct {
	socket     string
	json       bool
	stdout     io.Writer
	stderr     io.Writer
	interrupts <-chan os.Signal
	c          *client.Client
}

// client returns the session's connection, dialling it if needed.
func (s *session) client() (*client.Client, error) {
	if s.c != nil {
		return s.c, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, s.socket)
	if err != nil {
		return nil, err
	}
	s.c = c
	return c, nil
}

// close drops the connection; the next statement dials again.
func (s *session) close() {
	if s.c != nil {
		s.c.Close()
		s.c = nil
	}
}

// errInterrupted reports a statement abandoned on a second interrupt.
var errInterrupted = errors.New("interrupted")

// rowFlushDelay is how long rows may wait for the end of their statement
// before the table is printed and later rows follow as they come.
const rowFlushDelay = 500 * time.Millisecond

// exec runs one statement and prints its answers. An interrupt cancels it;
// if the daemon then ends it (done or canceled), exec returns interrupted
// and no error. A second interrupt gives up on the daemon and returns
// errInterrupted.
func (s *session) exec(stmt string) (interrupted bool, err error) {
	c, err := s.client()
	if err != nil {
		return false, err
	}
	// Interrupts that came in while no statement ran are not for this one.
	for len(s.interrupts) > 0 {
		<-s.interrupts
	}
	st, err := c.Stream(context.Background(), stmt)
	if err != nil {
		s.forgetIfLost(err)
		return false, err
	}

	type item struct {
		a   client.Answer
		err error
	}
	answers := make(chan item)
	quit := make(chan struct{})
	defer close(quit)
	go func() {
		for {
			a, err := st.Next()
			select {
			case answers <- item{a, err}:
			case <-quit:
				return
			}
			if err != nil {
				return
			}
		}
	}()

	out := newPrinter(s.stdout, s.json).withLines(s.stderr).withProcess(s.stderr)
	var flush <-chan time.Time
	for {
		select {
		case it := <-answers:
			switch {
			case it.err == io.EOF:
				if err := out.finish(); err != nil {
					return interrupted, err
				}
				if out.exit != nil && *out.exit != exitOK {
					// The process's status is the CLI's, as docker run's.
					return interrupted, &exitError{*out.exit}
				}
				return interrupted, nil
			case it.err != nil:
				_ = out.finish()
				if interrupted && client.IsCanceled(it.err) {
					return true, nil
				}
				s.forgetIfLost(it.err)
				return interrupted, it.err
			}
			if err := out.add(it.a); err != nil {
				return interrupted, fmt.Errorf("write output: %w", err)
			}
			if flush == nil && out.pending() {
				flush = time.After(rowFlushDelay)
			}
		case <-flush:
			if err := out.streamRows(); err != nil {
				return interrupted, fmt.Errorf("write output: %w", err)
			}
		case <-s.interrupts:
			if interrupted {
				// The daemon did not answer the cancel; the connection
				// may be stuck, so do not reuse it.
				_ = out.finish()
				s.close()
				return true, errInterrupted
			}
			interrupted = true
			if err := st.Cancel(); err != nil {
				s.forgetIfLost(err)
				return true, err
			}
		}
	}
}

// forgetIfLost drops a connection that can no longer be used.
func (s *session) forgetIfLost(err error) {
	var ue *client.UnreachableError
	if errors.As(err, &ue) || errors.Is(err, client.ErrClosed) {
		s.close()
	}
}

// report prints err, if any, as the CLI does and returns its exit code.
func (s *session) report(err error) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code // printed by the verb itself
	}
	fmt.Fprintf(s.stderr, "cairn: %v\n", err)
	var ue *client.UnreachableError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintln(s.stderr, "cairn: is the daemon running? start it with `cairn daemon` (or `make run` in a checkout), or point --socket or $CAIRN_SOCKET at its socket")
		return exitUnreachable
	case errors.Is(err, errInterrupted):
		return exitInterrupted
	}
	var use *usageError
	if errors.As(err, &use) {
		return exitUsage
	}
	return client.ExitCode(err)
}

// exitError carries the exit code of a statement the CLI ran itself, whose
// error it has printed already.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// usageError is a statement the CLI refused before sending it.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }
