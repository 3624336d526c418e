package capture

import (
	"context"
	"errors"
	"flag"
	"time"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

// Name is the module's name.
const Name = "capture"

func init() {
	engines.Register(Name, func() engines.Module { return &module{} })
}

// module is the capture engine as the daemon runs it. It folds nothing:
// it appends observations to the capture stream.
type module struct {
	buffer int
	pipe   *Pipeline
}

var (
	_ engines.Module     = (*module)(nil)
	_ engines.KindLister = (*module)(nil)
	_ engines.Provider   = (*module)(nil)
)

// SourcesService is the name the module provides its sources' counters
// under (a value with SourceCounters() map[string]engines.SourceCounters):
// the metrics engine exports them.
const SourcesService = "capture.sources"

// Provides names the module's services.
func (m *module) Provides() []string { return []string{SourcesService} }

// sourceCounters gives the pipeline's counters by source.
type sourceCounters struct{ p *Pipeline }

// SourceCounters returns each source's totals, of its current or last run.
func (s sourceCounters) SourceCounters() map[string]engines.SourceCounters {
	out := map[string]engines.SourceCounters{}
	for _, st := range s.p.Status() {
		out[st.Source] = engines.SourceCounters{Events: st.Events, Drops: st.Drops, Errors: st.Errors}
	}
	return out
}

func (m *module) Name() string { return Name }

// KindPrefixes are the kinds only this engine writes (emit refuses them).
func (m *module) KindPrefixes() []string { return []string{"capture."} }

// Kinds are every kind the capture engine writes (docs/events.md): the
// sources' observations and its own drop counts.
func (m *module) Kinds() []string {
	return []string{
		TraceExecKind, TraceCloneKind, TraceExitKind, TraceSyscallKind, // proc, trace
		ConnConnectKind, ConnCloseKind, // conn
		"capture.link", "capture.addr", "capture.route", "capture.neigh", // net
		ResSampleKind, ResCgroupSampleKind, // res
		"capture.synthetic", // synthetic
		DropKind,
	}
}

func (m *module) Flags(fs *flag.FlagSet) {
	fs.IntVar(&m.buffer, "capture-buffer", DefaultBuffer, "events held between capture sources and the journal before they are dropped (tests make it small)")
}

func (m *module) Engines() map[string][]journal.Engine { return nil }

func (m *module) Start(ctx context.Context, h engines.Host) error {
	log := h.Logger
	if log != nil {
		log = log.With("component", "capture")
	}
	m.pipe = NewPipeline(h.Journal.Stream(journal.Capture), PipelineOptions{Buffer: m.buffer, Logger: log})
	if h.Services != nil {
		h.Services.Provide(SourcesService, sourceCounters{m.pipe})
	}
	go func() {
		<-ctx.Done()
		m.pipe.Close()
	}()
	return nil
}

func (m *module) Stop() error {
	if m.pipe == nil {
		return nil
	}
	return m.pipe.Close()
}

func (m *module) Verbs() []engines.Verb {
	return []engines.Verb{
		{Spec: dsl.Spec{
			Verb:    "capture ingest",
			Access:  dsl.AccessWrite,
			Summary: "store capture events a client observed (capture run sends them)",
			Help: "capture ingest events=BATCH appends the events of BATCH to the capture stream, with the\n" +
				"connection's peer as their actor, and answers once they are stored. BATCH is what\n" +
				"`cairn capture run` sends: base64 of length-prefixed CBOR event bodies, at most 2 MiB.",
			Options: []dsl.Option{{Name: "events", Meta: "BATCH", Help: "the encoded events"}},
		}, Run: m.runIngest},
		{Spec: dsl.Spec{
			Verb:    "capture run",
			Access:  dsl.AccessHost,
			Summary: "trace a command's syscalls into the capture stream, like strace -f",
			Help: "capture run [where 'CEL'] -- CMD ARGS… runs CMD under ptrace in the CLI, as your user, and\n" +
				"stores its syscalls (open, read, write, copy_file_range, close, execve, …) with evt.type,\n" +
				"evt.res, evt.latency, fd.name, fd.type, data.bytes and the first snaplen= bytes of each\n" +
				"buffer read or written (data.data). Only matching events are sent.\n" +
				"The CLI answers when the command has exited, with its exit code.\n\n" +
				"  cairn capture run -- make -j2 test\n  cairn capture run where 'fd.type == \"file\"' -- sh -c 'cat a > b'",
			Options: []dsl.Option{{Name: "snaplen", Kind: dsl.Int, Meta: "N",
				Help: "bytes of each read or write buffer kept as data.data (sysdig's evt.buffer; default 80, as sysdig's; 0 keeps none)"}},
			Raw:    true,
			Where:  true,
			Client: true,
		}, Run: m.runRun},
		{Spec: dsl.Spec{
			Verb:    "capture sources",
			Access:  dsl.AccessRead,
			Summary: "list the capture sources",
			Help:    "capture sources answers a row {source, description, running} per source this cairn knows.",
		}, Run: m.runSources},
		{Spec: dsl.Spec{
			Verb:    "capture start",
			Access:  dsl.AccessHost,
			Summary: "start observing the host into the capture stream",
			Help: "capture start SOURCE… starts each source and answers once each is receiving; a source that\n" +
				"cannot run here answers failed_precondition with its reason while the others keep running.\n" +
				"where 'CEL' keeps only the matching events; interval= is the period of polling sources;\n" +
				"ns=NAME observes the named network namespace (net); include-self keeps cairn's own activity.\n\n" +
				"  capture start net\n  capture start net ns=blue\n  capture start proc where 'proc.name != \"sshd\"'",
			Args:    []dsl.Arg{{Name: "SOURCE", Required: true, Variadic: true, Help: "source names (capture sources)"}},
			Flags:   []dsl.Flag{{Name: "include-self", Help: "keep events about the cairn daemon itself"}},
			Options: []dsl.Option{{Name: "interval", Kind: dsl.Duration, Help: "sampling period of polling sources (default 1s)"}, {Name: "ns", Meta: "NAME", Help: "named network namespace (ip netns) to observe"}, {Name: "rate", Kind: dsl.Int, Meta: "N", Help: "synthetic: N events a second (default: full speed)"}, {Name: "snaplen", Kind: dsl.Int, Meta: "N", Help: "synthetic: an N-byte I/O buffer in each event, as a traced read carries (default none)"}},
			Where:   true,
		}, Run: m.runStart},
		{Spec: dsl.Spec{
			Verb:    "capture status",
			Access:  dsl.AccessRead,
			Summary: "counters of each capture source",
			Help:    "capture status answers a row {source, running, events_per_s, events, drops, errors} per source.",
		}, Run: m.runStatus},
		{Spec: dsl.Spec{
			Verb:    "capture stop",
			Access:  dsl.AccessHost,
			Summary: "stop capture sources, after their events are stored",
			Help:    "capture stop [SOURCE…] stops the named sources (all running ones without a name) and answers\nonce everything they emitted is in the capture stream.\n\n  capture stop\n  capture stop net",
			Args:    []dsl.Arg{{Name: "SOURCE", Variadic: true, Help: "source names"}},
		}, Run: m.runStop},
	}
}

func (m *module) pipeline() (*Pipeline, error) {
	if m.pipe == nil {
		return nil, wire.Errorf(wire.Unavailable, "the capture engine has not started")
	}
	return m.pipe, nil
}

func (m *module) runSources(ctx context.Context, r engines.Request) error {
	p, err := m.pipeline()
	if err != nil {
		return err
	}
	for _, n := range SourceNames() {
		desc := ""
		if s, ok := newSource(n); ok {
			if d, ok := s.(Describer); ok {
				desc = d.Description()
			}
		}
		if err := r.Row(map[string]any{"source": n, "description": desc, "running": p.Running(n)}); err != nil {
			return err
		}
	}
	return nil
}

func (m *module) runStart(ctx context.Context, r engines.Request) error {
	p, err := m.pipeline()
	if err != nil {
		return err
	}
	st := r.Statement()
	f, err := engines.Where(st)
	if err != nil {
		return err
	}
	o := RunOptions{Filter: f, IncludeSelf: st.Flags["include-self"], Config: SourceConfig{Interval: time.Second}}
	if w, ok := st.Opt("interval"); ok {
		d, err := w.Duration()
		if err != nil || d <= 0 {
			return engines.Errorf(wire.InvalidArgument, w, "interval=%s: want a positive duration such as 1s", w.Text)
		}
		o.Config.Interval = d
	}
	if w, ok := st.Opt("ns"); ok {
		o.Config.Namespace = w.Text
	}
	if w, ok := st.Opt("rate"); ok {
		n, err := w.Int()
		if err != nil || n <= 0 || n > maxSyntheticRate {
			return engines.Errorf(wire.InvalidArgument, w, "rate=%s: want events a second, 1 to %d, such as 100000", w.Text, maxSyntheticRate)
		}
		o.Config.Rate = n
	}
	if w, ok := st.Opt("snaplen"); ok {
		n, err := w.Int()
		if err != nil || n < 0 || n > MaxSnaplen {
			return engines.Errorf(wire.InvalidArgument, w, "snaplen=%s: want a number of bytes, 0 to %d", w.Text, MaxSnaplen)
		}
		o.Config.Snaplen = int(n)
	}
	words := append([]dsl.Word(nil), st.Rest...)
	if w, ok := st.Args["SOURCE"]; ok && w.Text != "" && (len(words) == 0 || words[0].Pos != w.Pos) {
		words = append([]dsl.Word{w}, words...)
	}
	// Check every name first, so a typo starts nothing.
	known := map[string]bool{}
	for _, n := range SourceNames() {
		known[n] = true
	}
	seen := map[string]bool{}
	for _, w := range words {
		if !known[w.Text] {
			return engines.Errorf(wire.InvalidArgument, w, "unknown capture source %q (capture sources lists them)", w.Text)
		}
		if seen[w.Text] {
			return engines.Errorf(wire.InvalidArgument, w, "capture source %s named twice", w.Text)
		}
		seen[w.Text] = true
		if rw, ok := st.Opt("rate"); ok && w.Text != "synthetic" {
			return engines.Errorf(wire.InvalidArgument, rw, "rate= paces the synthetic source only, not %s", w.Text)
		}
		if p.Running(w.Text) {
			return engines.Errorf(wire.FailedPrecondition, w, "capture source %s is already running; capture stop %s first", w.Text, w.Text)
		}
	}
	var errs []error
	for _, w := range words {
		if err := p.Start(w.Text, o); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := r.Row(map[string]any{"source": w.Text, "running": true}); err != nil {
			return err
		}
	}
	if len(errs) == 1 {
		return errs[0]
	}
	if len(errs) > 1 {
		return wire.Errorf(wire.FailedPrecondition, "%v", errors.Join(errs...))
	}
	return nil
}

func (m *module) runStop(ctx context.Context, r engines.Request) error {
	p, err := m.pipeline()
	if err != nil {
		return err
	}
	st := r.Statement()
	var names []string
	if w, ok := st.Args["SOURCE"]; ok && w.Text != "" && (len(st.Rest) == 0 || st.Rest[0].Pos != w.Pos) {
		names = append(names, w.Text)
	}
	for _, w := range st.Rest {
		names = append(names, w.Text)
	}
	stopped, err := p.Stop(names...)
	for _, n := range stopped {
		if rerr := r.Row(map[string]any{"source": n, "running": false}); rerr != nil {
			return rerr
		}
	}
	return err
}

func (m *module) runStatus(ctx context.Context, r engines.Request) error {
	p, err := m.pipeline()
	if err != nil {
		return err
	}
	for _, s := range p.Status() {
		if err := r.Row(s); err != nil {
			return err
		}
	}
	return nil
}

func (m *module) runIngest(ctx context.Context, r engines.Request) error {
	p, err := m.pipeline()
	if err != nil {
		return err
	}
	st := r.Statement()
	w, ok := st.Opt("events")
	if !ok {
		return wire.Errorf(wire.InvalidArgument, "capture ingest needs events=BATCH")
	}
	bodies, err := DecodeTraceBatch(w.Text)
	if err != nil {
		return engines.Errorf(wire.InvalidArgument, w, "%v", err)
	}
	if err := p.Ingest(ctx, r.Actor(), bodies); err != nil {
		return err
	}
	return r.Row(map[string]any{"events": len(bodies)})
}

// runRun answers a `capture run` that reached the daemon: tracing happens
// in the CLI, as the caller's user, never in the daemon.
func (m *module) runRun(ctx context.Context, r engines.Request) error {
	return wire.Errorf(wire.FailedPrecondition, "capture run traces in the CLI, as your user: run it as `cairn capture run [where 'CEL'] -- CMD ARGS…`")
}
