package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cairnhq/cairn/client"
)

// runFile runs the statements of a file (stdin for "-") and stops at the
// first error, returning that error's exit code.
func (s *session) runFile(path string, stdin io.Reader) int {
	if path == "-" {
		return s.runLines("stdin", stdin, true)
	}
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(s.stderr, "cairn: %v\n", err)
		return exitUsage
	}
	defer f.Close()
	return s.runLines(path, f, true)
}

// runLines runs the statements read from r, one request per line: a line
// may hold several `;`-separated statements, which the daemon splits. Blank
// lines and comment lines are skipped. Errors are reported with the line
// number; with stopOnError the first one (or an interrupt) ends the run with
// its exit code, otherwise the run goes on, ends at "exit" or "quit", and
// returns the exit code of the last failure (0 if none failed).
func (s *session) runLines(name string, r io.Reader, stopOnError bool) int {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), client.MaxLine)
	code := exitOK
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !stopOnError && (line == "exit" || line == "quit") {
			return code
		}
		interrupted, err := s.dispatch(line)
		if err != nil {
			code = s.report(fmt.Errorf("%s:%d: %w", name, lineNo, err))
			if stopOnError {
				return code
			}
		}
		if interrupted && stopOnError {
			return code
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("line %d is longer than %d bytes", lineNo+1, client.MaxLine)
		}
		fmt.Fprintf(s.stderr, "cairn: read %s: %v\n", name, err)
		return exitUsage
	}
	return code
}
