package daemon

import (
	"context"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
)

// serverVerb is one of the daemon's own verbs: its spec and the Server
// method that runs it. The lists are plain data, so the table the CLI and
// the docs read is built without a Server.
type serverVerb struct {
	dsl.Spec
	run func(*Server, context.Context, engines.Request) error
}

// daemonVerbs is the one list of the daemon's own verbs (the modules add
// theirs): the server registers it, and VerbTable reads it for the CLI,
// help and docs/dsl.md. Each part is kept sorted by verb.
func daemonVerbs() [][]serverVerb {
	return [][]serverVerb{coreVerbs(), chiselVerbs(), archiveVerbs(), clientVerbs()}
}

// bind returns v with its handler on s, as the table holds it.
func (v serverVerb) bind(s *Server) Verb {
	run := v.run
	return Verb{Spec: v.Spec, Run: func(ctx context.Context, r engines.Request) error { return run(s, ctx, r) }}
}

// clientVerbs are verbs the CLI runs itself and the daemon only lists:
// `read` opens a capture file on the client's side, `journal repair` a
// stopped daemon's data directory.
func clientVerbs() []serverVerb {
	return []serverVerb{
		{Spec: dsl.Spec{
			Verb:    "journal repair",
			Access:  dsl.AccessHost,
			Client:  true,
			Summary: "make a journal whose write-ahead log is damaged open again (daemon stopped)",
			Help: "journal repair runs in the CLI on the data directory of a stopped daemon (it refuses while\n" +
				"one runs). A stream whose WAL is damaged in its middle keeps every whole batch before the\n" +
				"damage; the damaged log, as it was, and every later log go to <data>/lost+found/, and a\n" +
				"journal.repair event records the cut. A torn tail after power loss needs no repair (the\n" +
				"daemon recovers it at start); damage elsewhere is reported, not repaired (reads that reach\n" +
				"a damaged table fail with data_loss). One row per stream: intact, repaired or unrepairable.\n" +
				"Run journal verify once the daemon is up again.\n\n" +
				"  cairn journal repair\n  cairn journal repair data=/var/lib/cairn",
			Options: []dsl.Option{{Name: "data", Meta: "DIR", Help: "the daemon's data directory (default: the daemon's, $CAIRN_DATA)"}},
		}, run: (*Server).runClientOnly},
		{Spec: dsl.Spec{
			Verb:    "read",
			Access:  dsl.AccessRead,
			Client:  true,
			Summary: "read a capture file with no daemon, like sysdig -r",
			Help: "read FILE [salvage] [FILTERS…] [| chisel NAME ARGS…] reads a capture file written by\n" +
				"journal export, verifying its chain, and prints the events that match the filters events\n" +
				"takes. salvage prints the events before a damaged part instead of refusing the file.\n" +
				"It runs in the CLI: cairn read FILE …\n\n" +
				"  cairn read audit.cairn kind=kv.* where 'actor.uid != 0'\n  cairn read audit.cairn '|' chisel topkinds",
			Args:    []dsl.Arg{{Name: "FILE", Required: true, Help: "a capture file (client side)"}},
			Flags:   []dsl.Flag{{Name: "salvage", Help: "read the events before a damaged part"}, {Name: "count", Help: "answer only the number of matches"}, {Name: "reverse", Help: "newest first"}},
			Options: eventOptions(true),
			Where:   true,
			Pipe:    true,
		}, run: (*Server).runClientOnly},
	}
}

// runClientOnly answers a client-side verb that reached the daemon.
func (s *Server) runClientOnly(ctx context.Context, r engines.Request) error {
	v := r.Statement().Spec.Verb
	return wire.Errorf(wire.FailedPrecondition, "%s runs in the CLI, on the client's files: run `cairn %s …`", v, v)
}

// coreVerbs is the daemon's own core verbs, kept sorted by verb
// (TestDaemonVerbsSorted). Engines add theirs beside it.
func coreVerbs() []serverVerb {
	return []serverVerb{
		auditSummaryVerb(),
		auditWhoVerb(),
		{Spec: dsl.Spec{
			Verb:    "emit",
			Access:  dsl.AccessWrite,
			Summary: "record an event by hand in the audit stream",
			Help: "emit KIND SUBJECT [key=value…] appends one event. Values that read as numbers or\n" +
				"booleans are stored as such; quoted values stay strings. The kinds an engine or the daemon\n" +
				"writes (kv., lease., infra., capture., daemon., journal., auth., event., deploy., container., …) are refused.\n\n" +
				"  emit release_notes.rollback web/frontend version=42 note=\"rolled back\"",
			Args: []dsl.Arg{{Name: "KIND", Required: true, Help: "dotted kind, e.g. app.note"}, {Name: "SUBJECT", Required: true, Help: "what it is about"}},
			Bag:  true,
		}, run: (*Server).runEmit},
		{Spec: dsl.Spec{
			Verb:    "events",
			Access:  dsl.AccessRead,
			Summary: "read events from the journal",
			Help: "events streams every matching event (all of them unless limit= is given).\n\n" +
				"  events since=10m kind=kv.* where 'actor.uid != 0' limit=50\n" +
				"  events stream=capture from=100 to=200 reverse\n" +
				"  events where 'kind == \"daemon.start\"' count",
			Options: eventOptions(true),
			Flags:   []dsl.Flag{{Name: "reverse", Help: "newest first"}, {Name: "count", Help: "answer only the number of matches"}},
			Where:   true,
			Pipe:    true,
		}, run: (*Server).runEvents},
		{Spec: dsl.Spec{
			Verb:    "help",
			Access:  dsl.AccessRead,
			Summary: "list the verbs, or explain one",
			Help:    "help lists every verb; help VERB explains one.\n\n  help\n  help events",
			Args:    []dsl.Arg{{Name: "VERB", Variadic: true, Help: "a verb, e.g. journal verify"}},
		}, run: (*Server).runHelp},
		{Spec: dsl.Spec{
			Verb:    "journal rebuild",
			Access:  dsl.AccessHost,
			Summary: "drop every engine projection and refold it from the journal",
			Help: "journal rebuild refolds the engines' state from the events; the result is identical. Each\n" +
				"stream's row has the projection's digest before (folded live) and after (refolded), and\n" +
				"same: whether they are equal, as they must be.",
		}, run: (*Server).runJournalRebuild},
		{Spec: dsl.Spec{
			Verb:    "journal stats",
			Access:  dsl.AccessRead,
			Summary: "show each stream's seqs, event count and size",
			Options: []dsl.Option{{Name: "stream", Help: "audit or capture (default: both)"}},
		}, run: (*Server).runJournalStats},
		{Spec: dsl.Spec{
			Verb:    "journal verify",
			Access:  dsl.AccessRead,
			Summary: "recompute the hash chain and report the first bad seq",
			Help:    "journal verify checks every stored event against its hash and its predecessor.\n\n  journal verify\n  journal verify stream=capture",
			Options: []dsl.Option{{Name: "stream", Help: "audit or capture (default: both)"}},
		}, run: (*Server).runJournalVerify},
		{Spec: dsl.Spec{
			Verb:    "status",
			Access:  dsl.AccessRead,
			Summary: "show the daemon's node, version, uptime, NATS URL and streams",
		}, run: (*Server).runStatus},
		{Spec: dsl.Spec{
			Verb:    "tail",
			Access:  dsl.AccessRead,
			Summary: "follow new events as they are committed",
			Help: "tail streams events live. from=SEQ (or since=TIME) catches up from the journal first,\n" +
				"with no gap and no duplicate. It runs until canceled.\n\n" +
				"  tail kind=kv.*\n  tail from=1 where 'actor.uid == 1000'",
			Options: eventOptions(false),
			Where:   true,
			Stream:  true,
			Pipe:    true,
		}, run: (*Server).runTail},
	}
}

// eventOptions are the filters events and tail share.
func eventOptions(history bool) []dsl.Option {
	opts := []dsl.Option{
		{Name: "stream", Help: "audit (default), capture, or * for both merged by time"},
		{Name: "since", Kind: dsl.Time, Help: "events at or after TIME (RFC 3339, or a duration ago such as 10m)"},
		{Name: "from", Kind: dsl.Int, Help: "events from seq SEQ"},
		{Name: "kind", Help: "kind glob, e.g. kv.*"},
		{Name: "subject", Help: "subject glob, e.g. app/*"},
		{Name: "limit", Kind: dsl.Int, Help: "stop after N events"},
	}
	if history {
		opts = append(opts,
			dsl.Option{Name: "until", Kind: dsl.Time, Help: "events at or before TIME"},
			dsl.Option{Name: "to", Kind: dsl.Int, Help: "events up to seq SEQ"},
		)
	}
	return opts
}

// pipeVerbs lists the daemon's verbs that may feed `| chisel`, as their
// specs say (read feeds one too, in the CLI).
func (s *Server) pipeVerbs() []string {
	var out []string
	for _, sp := range s.verbs.Specs() {
		if sp.Pipe && !sp.Client {
			out = append(out, sp.Verb)
		}
	}
	return out
}
