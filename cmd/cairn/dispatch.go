//go:build !thin

package main

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/cairnhq/cairn/daemon"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
)

// clientVerb runs, in the CLI, a verb whose spec says Client, and returns
// the exit code; it prints its own errors.
type clientVerb func(s *session, st *dsl.Statement) int

// clientVerbs are the CLI's handlers of the verbs the table marks Client:
// the one place a client-side verb is dispatched from.
var clientVerbs = map[string]clientVerb{
	"capture run":    (*session).runCaptureRun,
	"journal export": func(s *session, st *dsl.Statement) int { return s.runExport(st.Words) },
	"journal import": func(s *session, st *dsl.Statement) int { return s.runImport(st.Words) },
	"journal repair": (*session).runRepair,
	"read":           func(s *session, st *dsl.Statement) int { return s.runRead(st.Words) },
}

// verbTable is the table of a daemon with every engine this binary links
// in: the same one the daemon serves.
var verbTable = sync.OnceValue(func() *dsl.Table { return daemon.VerbTable(engines.New()) })

// maxChiselSource is the largest local script the CLI sends: it travels in
// one request line of at most 4 MiB.
const maxChiselSource = 3 << 20

// dispatch runs one statement: a verb the table marks Client here, any
// other at the daemon (reading a ClientFile argument first). A statement
// that does not parse goes to the daemon too, which answers the same parse
// error with its position.
func (s *session) dispatch(text string) (interrupted bool, err error) {
	stmts, perr := dsl.Parse(text, verbTable())
	if perr == nil && len(stmts) == 1 {
		st := stmts[0]
		if st.Spec.Client {
			run, ok := clientVerbs[st.Spec.Verb]
			if !ok {
				return false, fmt.Errorf("%s: the table marks it client-side but this CLI has no handler for it", st.Spec.Verb)
			}
			if code := run(s, st); code != exitOK {
				return false, &exitError{code}
			}
			return false, nil
		}
		if text, err = withClientFile(text, st); err != nil {
			return false, err
		}
	}
	return s.exec(text)
}

// withClientFile adds to a statement the content of its ClientFile
// argument when that names a file on the client's disk (chisel ./my.lua):
// the daemon never opens a path a client names.
func withClientFile(text string, st *dsl.Statement) (string, error) {
	name := st.Spec.ClientFile
	if name == "" {
		return text, nil
	}
	path := st.Args[name].Text
	if !isLocalScript(path) {
		return text, nil
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return "", &usageError{fmt.Errorf("read %s: %w", strings.ToLower(name), err)}
	}
	if len(src) > maxChiselSource {
		return "", &usageError{fmt.Errorf("%s is %d bytes; the most a client can send is %d", path, len(src), maxChiselSource)}
	}
	return text + " source=" + quoteWord(string(src)), nil
}
