//go:build !thin

package main

import (
	"fmt"
	"os"

	"github.com/cairnhq/cairn/daemon"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/internal/peercred"
	"github.com/cairnhq/cairn/journal"
)

// runRepair runs `journal repair [data=DIR]` here, on the data directory
// of a stopped daemon: one row per stream, and exit code 1 when a stream
// has damage repair cannot mend.
func (s *session) runRepair(st *dsl.Statement) int {
	dir := defaultDataDir()
	if w := st.Options["data"]; len(w) > 0 {
		dir = w[len(w)-1].Text
	}
	actor := journal.Actor{UID: os.Getuid(), GID: os.Getgid(), PID: os.Getpid(), User: peercred.UserName(os.Getuid()), Via: "cli"}
	reps, err := daemon.RepairJournal(dir, actor, engines.New(), nil)
	for _, r := range reps {
		if code := s.printRow(r); code != exitOK {
			return code
		}
	}
	if err != nil {
		return s.failed("journal repair %s: %v", dir, err)
	}
	for _, r := range reps {
		if r.Status == journal.RepairUnrepairable {
			return s.failed("stream %s: %s; not a write-ahead log: a damaged table is read around (data_loss names it), restore the stream from another node's capture file to mend it", r.Stream, r.Detail)
		}
		if r.Status == journal.RepairRepaired {
			fmt.Fprintf(s.stderr, "cairn: stream %s: kept %d whole batches of %s; what followed is in %s. Start the daemon and run journal verify.\n", r.Stream, r.Kept, r.WAL, r.LostFound)
		}
	}
	return exitOK
}
