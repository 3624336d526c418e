package daemon

import "github.com/cairnhq/cairn/dsl"

// coreVerbs is the daemon's own part of the verb table, kept sorted by verb
// (TestCoreVerbsSorted). Engines add theirs beside it.
func coreVerbs(s *Server) []Verb {
	return []Verb{
		auditSummaryVerb(s),
		auditWhoVerb(s),
		{Spec: dsl.Spec{
			Verb:    "emit",
			Summary: "record an event by hand in the audit stream",
			Help: "emit KIND SUBJECT [key=value…] appends one event. Values that read as numbers or\n" +
				"booleans are stored as such; quoted values stay strings.\n\n" +
				"  emit deploy.note web/frontend version=42 note=\"rolled back\"",
			Args: []dsl.Arg{{Name: "KIND", Required: true, Help: "dotted kind, e.g. app.note"}, {Name: "SUBJECT", Required: true, Help: "what it is about"}},
			Bag:  true,
		}, Run: s.runEmit},
		{Spec: dsl.Spec{
			Verb:    "events",
			Summary: "read events from the journal",
			Help: "events streams every matching event (all of them unless limit= is given).\n\n" +
				"  events since=10m kind=kv.* where 'actor.uid != 0' limit=50\n" +
				"  events stream=capture from=100 to=200 reverse\n" +
				"  events where 'kind == \"daemon.start\"' count",
			Options: eventOptions(true),
			Flags:   []dsl.Flag{{Name: "reverse", Help: "newest first"}, {Name: "count", Help: "answer only the number of matches"}},
			Where:   true,
		}, Run: s.runEvents},
		{Spec: dsl.Spec{
			Verb:    "help",
			Summary: "list the verbs, or explain one",
			Help:    "help lists every verb; help VERB explains one.\n\n  help\n  help events",
			Args:    []dsl.Arg{{Name: "VERB", Variadic: true, Help: "a verb, e.g. journal verify"}},
		}, Run: s.runHelp},
		{Spec: dsl.Spec{
			Verb:    "journal rebuild",
			Summary: "drop every engine projection and refold it from the journal",
			Help:    "journal rebuild refolds the engines' state from the events; the result is identical.",
		}, Run: s.runJournalRebuild},
		{Spec: dsl.Spec{
			Verb:    "journal stats",
			Summary: "show each stream's seqs, event count and size",
			Options: []dsl.Option{{Name: "stream", Help: "audit or capture (default: both)"}},
		}, Run: s.runJournalStats},
		{Spec: dsl.Spec{
			Verb:    "journal verify",
			Summary: "recompute the hash chain and report the first bad seq",
			Help:    "journal verify checks every stored event against its hash and its predecessor.\n\n  journal verify\n  journal verify stream=capture",
			Options: []dsl.Option{{Name: "stream", Help: "audit or capture (default: both)"}},
		}, Run: s.runJournalVerify},
		{Spec: dsl.Spec{
			Verb:    "status",
			Summary: "show the daemon's node, version, uptime, NATS URL and streams",
		}, Run: s.runStatus},
		{Spec: dsl.Spec{
			Verb:    "tail",
			Summary: "follow new events as they are committed",
			Help: "tail streams events live. from=SEQ (or since=TIME) catches up from the journal first,\n" +
				"with no gap and no duplicate. It runs until canceled.\n\n" +
				"  tail kind=kv.*\n  tail from=1 where 'actor.uid == 1000'",
			Options: eventOptions(false),
			Where:   true,
			Stream:  true,
		}, Run: s.runTail},
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
