// Package engines is how an engine plugs into cairn: the verbs it adds to
// the command language, the journal engines that decide on its requests and
// fold its events, and the registry the daemon reads at start.
//
// An engine lives in its own folder (engines/kv, engines/capture, …) and
// registers itself from init; cmd/cairn imports it with one line. Engines
// never import each other or the daemon: they meet in the journal.
package engines

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/filter"
	"github.com/cairnhq/cairn/journal/filter/sysdig"
)

// Request is one bound statement being served, as a verb handler sees it.
type Request interface {
	// Statement is the parsed statement.
	Statement() *dsl.Statement
	// Actor is who sent it: the peer credentials of its connection.
	Actor() journal.Actor
	// Row answers one result row, encoded as JSON.
	Row(v any) error
	// Event answers one event: a *journal.Event, or an engine's own event
	// object (a kv watch row), encoded as JSON.
	Event(ev any) error
	// Line answers one line of text.
	Line(s string) error
}

// Flusher is implemented by a Request whose answers are gathered before
// they are sent (the daemon's, for verbs that are not streams): Flush
// sends what was answered so far now, so a long verb (infra apply) shows
// its progress as it goes.
type Flusher interface {
	Flush() error
}

// ProcessAnswerer is implemented by a Request that can carry a process's
// output and exit status (the daemon's): a verb that runs a process for
// its caller (run, exec) answers with them, and the CLI writes the output
// to its own stdout and stderr and exits with the status.
type ProcessAnswerer interface {
	// Output answers a piece of output the process wrote to fd (1 or 2).
	Output(fd int, data string) error
	// Exit answers the process's exit status; it comes last, before done.
	Exit(code int) error
}

// Handler runs one statement, writing its answers through r. A nil return
// answers done; an error becomes the request's error answer (use
// wire.Errorf for a code, *PosError for a place in the statement).
type Handler func(ctx context.Context, r Request) error

// Verb is one entry of the verb table: the DSL spec and its handler.
type Verb struct {
	dsl.Spec
	Run Handler
}

// Host is what the daemon hands a module when it starts.
type Host struct {
	Journal *journal.Journal
	Logger  *slog.Logger
	Node    string
	DataDir string
	// Services are what modules offer each other: a module provides in
	// Start; a module that looks one up in Start declares it (Requirer)
	// and starts after its provider.
	Services *Services
	// Authorize asks the daemon's policy whether actor may do verb (a
	// request through a module's own listener, such as the etcd API),
	// journaling a denial; nil allows everything (tests).
	Authorize func(ctx context.Context, actor journal.Actor, verb string, args map[string]string, access dsl.Access) error
	// Publish puts msg on the daemon's embedded NATS under subject, a
	// literal subject under cairn. that is no stream's (cairn.alerts.NAME:
	// the metrics engine's notifications), returning once the server has
	// it; an error before the server started. Nil when NATS is off (and
	// in tests).
	Publish func(subject string, msg []byte) error
}

// Services is a registry of what modules offer each other by name, so that
// engines meet without importing each other: the kv module provides "kv",
// the infra engine's kv provider looks it up through an interface of its
// own. A module that needs a service in Start declares it (Requirer) and
// the daemon starts its provider first.
type Services struct {
	mu sync.RWMutex
	m  map[string]any
}

// Provide makes v known as name, replacing an earlier one.
func (s *Services) Provide(name string, v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]any{}
	}
	s.m[name] = v
}

// Lookup returns what was provided as name, or nil.
func (s *Services) Lookup(name string) any {
	if s == nil {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m[name]
}

// Lookup returns the service provided as name as a T, or an error saying
// that nothing provides it or that it is not a T.
func Lookup[T any](s *Services, name string) (T, error) {
	var zero T
	v := s.Lookup(name)
	if v == nil {
		return zero, fmt.Errorf("no module provides the %q service (is its engine linked into cmd/cairn/engines.go?)", name)
	}
	t, ok := v.(T)
	if !ok {
		return zero, fmt.Errorf("the %q service is a %T, not the %T asked for", name, v, zero)
	}
	return t, nil
}

// Provider is implemented by a module that provides services in Start.
type Provider interface {
	Provides() []string
}

// Requirer is implemented by a module that looks services up in Start: the
// daemon starts the modules that provide them first.
type Requirer interface {
	Requires() []string
}

// StartOrder sorts modules so that each starts after the modules providing
// the services it requires, otherwise by name. A required service nobody
// provides, two providers of one service, or a cycle, is an error.
func StartOrder(mods []Module) ([]Module, error) {
	byName := map[string]Module{}
	provider := map[string]string{} // service -> module
	for _, m := range mods {
		byName[m.Name()] = m
		if p, ok := m.(Provider); ok {
			for _, svc := range p.Provides() {
				if other, dup := provider[svc]; dup {
					return nil, fmt.Errorf("modules %s and %s both provide the %q service", other, m.Name(), svc)
				}
				provider[svc] = m.Name()
			}
		}
	}
	names := make([]string, 0, len(mods))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	const (
		visiting = iota + 1
		done
	)
	state := map[string]int{}
	var order []Module
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		switch state[name] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("modules require each other's services in a cycle: %s", strings.Join(append(path, name), " -> "))
		}
		state[name] = visiting
		if r, ok := byName[name].(Requirer); ok {
			reqs := append([]string(nil), r.Requires()...)
			sort.Strings(reqs)
			for _, svc := range reqs {
				p, ok := provider[svc]
				if !ok {
					return fmt.Errorf("module %s requires the %q service, which no linked module provides", name, svc)
				}
				if p == name {
					continue
				}
				if err := visit(p, append(path, name)); err != nil {
					return err
				}
			}
		}
		state[name] = done
		order = append(order, byName[name])
		return nil
	}
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// Module is an engine as the daemon sees it.
type Module interface {
	// Name is the engine's name, as in engines/NAME.
	Name() string
	// Flags adds the module's daemon flags (such as --etcd) to fs.
	Flags(fs *flag.FlagSet)
	// Engines returns the journal engines the module folds, by stream.
	Engines() map[string][]journal.Engine
	// Verbs returns the module's verbs.
	Verbs() []Verb
	// Start runs once the journal is open and before the socket or any
	// other listener opens. Goroutines it starts end when ctx ends.
	Start(ctx context.Context, h Host) error
	// Stop releases what Start took; the journal is still open.
	Stop() error
}

// KindLister is implemented by a module that writes events: every kind it
// writes, as docs/events.md lists them (a test holds the two together).
type KindLister interface {
	Kinds() []string
}

// Change is one subject's change an event records: its value before and
// after, nil where there is none (a create has no before, a delete no
// after). An event that does not carry the value it replaced names instead
// the seq of the event that had set it (BeforeSeq): the reader finds the
// before there, in that event's explanation (as a kv put records only its
// prev_rev).
type Change struct {
	Subject   string
	Before    *string
	After     *string
	BeforeSeq int64
	// JSON says Before and After are JSON documents (an infra state
	// record), not the subject's plain value (a key's).
	JSON bool
}

// Explanation is what an event means, as its engine reads it.
type Explanation struct {
	// Summary is one line for a person: "put app/db/url", "create
	// default/net_link.br0 (br0)".
	Summary string
	// Changes are the subjects the event changes, each before → after;
	// none for an event that changes no subject (a plan, a lease grant).
	Changes []Change
}

// Explainer is implemented by a module whose events readers such as
// `audit who` (and the UI) explain without decoding another engine's
// payloads.
type Explainer interface {
	KindLister
	// MultiSubjectKinds are the module's kinds whose events may change
	// subjects other than their own (a txn's subject is its first key).
	MultiSubjectKinds() []string
	// Explain explains an event of one of the module's kinds; false for
	// a kind it does not write.
	Explain(ev *journal.Event) (Explanation, bool)
}

// Explain asks the module that writes ev's kind to explain it; false when
// no module explains that kind.
func Explain(mods []Module, ev *journal.Event) (Explanation, bool) {
	for _, m := range mods {
		ex, ok := m.(Explainer)
		if !ok || !slices.Contains(ex.Kinds(), ev.Kind) {
			continue
		}
		return ex.Explain(ev)
	}
	return Explanation{}, false
}

// MultiSubjectKinds are the kinds, of every module that explains its
// events, whose events may change subjects other than their own.
func MultiSubjectKinds(mods []Module) []string {
	var kinds []string
	for _, m := range mods {
		if ex, ok := m.(Explainer); ok {
			kinds = append(kinds, ex.MultiSubjectKinds()...)
		}
	}
	return kinds
}

// KindOwner is implemented by a module whose events have kinds of its own,
// named by prefix ("kv.", "lease."). `emit` refuses them, so an engine's
// state is only ever the fold of the events the engine itself decided: the
// same live, after journal rebuild and after a restart.
type KindOwner interface {
	KindPrefixes() []string
}

// ReservedBy reports which module owns kind, if any.
func ReservedBy(mods []Module, kind string) (owner string, ok bool) {
	for _, m := range mods {
		if ko, isOwner := m.(KindOwner); isOwner {
			for _, p := range ko.KindPrefixes() {
				if strings.HasPrefix(kind, p) {
					return m.Name(), true
				}
			}
		}
	}
	return "", false
}

var (
	mu       sync.Mutex
	registry = map[string]func() Module{}
)

// Register makes a module known under name. It panics on a duplicate name,
// as a wiring mistake is a bug.
func Register(name string, newModule func() Module) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[name]; dup {
		panic(fmt.Sprintf("engines: module %q registered twice", name))
	}
	registry[name] = newModule
}

// New returns a fresh instance of every registered module, sorted by name.
func New() []Module {
	mu.Lock()
	defer mu.Unlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	mods := make([]Module, len(names))
	for i, n := range names {
		mods[i] = registry[n]()
	}
	return mods
}

// PosError is an error tied to a place in the statement; the daemon answers
// it with its code and position.
type PosError struct {
	Code wire.Code
	Pos  dsl.Pos
	Msg  string
}

func (e *PosError) Error() string { return fmt.Sprintf("%s: %s", e.Pos, e.Msg) }

// Errorf returns a *PosError at the word w.
func Errorf(code wire.Code, w dsl.Word, format string, args ...any) error {
	return &PosError{Code: code, Pos: w.Pos, Msg: fmt.Sprintf(format, args...)}
}

// Where compiles a statement's where clause, or returns nil when it has
// none. Compile errors carry their position in the statement.
func Where(st *dsl.Statement) (*filter.Filter, error) {
	if st.Where == nil && st.Filter == nil {
		return nil, nil
	}
	var f *filter.Filter
	if st.Where != nil {
		var err error
		if f, err = filter.Compile(st.Where.Text); err != nil {
			var ce *filter.CompileError
			if errors.As(err, &ce) {
				return nil, &PosError{Code: wire.InvalidArgument, Pos: offsetPos(st.Where.Pos, ce.Line, ce.Col), Msg: "where: " + ce.Msg}
			}
			return nil, wire.Errorf(wire.InvalidArgument, "where: %v", err)
		}
	}
	if st.Filter == nil {
		return f, nil
	}
	// A sysdig filter is translated to the same CEL (journal/filter/sysdig);
	// with a where clause too, both must match.
	cel, err := sysdig.Translate(st.Filter.Text)
	if err != nil {
		var se *sysdig.Error
		if errors.As(err, &se) {
			return nil, &PosError{Code: wire.InvalidArgument, Pos: offsetPos(st.Filter.Pos, 1, se.Col), Msg: "filter: " + se.Msg}
		}
		return nil, wire.Errorf(wire.InvalidArgument, "filter: %v", err)
	}
	if st.Where != nil {
		cel = "(" + cel + ") && (" + st.Where.Text + ")"
	}
	if f, err = filter.Compile(cel); err != nil {
		return nil, wire.Errorf(wire.InvalidArgument, "filter: %v", err)
	}
	return f, nil
}

// offsetPos maps a 1-based line:col inside a word onto the statement.
func offsetPos(start dsl.Pos, line, col int) dsl.Pos {
	if line <= 1 {
		return dsl.Pos{Line: start.Line, Col: start.Col + col - 1}
	}
	return dsl.Pos{Line: start.Line + line - 1, Col: col}
}

// Route is one HTTP route a module serves on the daemon's HTTP listener
// (--http). Pattern is a net/http ServeMux pattern, method and wildcards
// included ("GET /v1/kv/{key...}"); a pattern that conflicts with another
// module's or the daemon's stops the daemon at start.
type Route struct {
	Pattern string
	Handler http.Handler
}

// HTTPRouter is implemented by a module that serves HTTP routes. The daemon
// asks once, after every module started and before the listener opens.
// A handler finds who is calling with ActorFrom(r.Context()), and records
// that actor on the events it writes, as a verb uses Request.Actor.
type HTTPRouter interface {
	HTTPRoutes() []Route
}

type actorKey struct{}

// WithActor returns ctx carrying actor, the caller of what runs under it.
func WithActor(ctx context.Context, actor journal.Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the actor WithActor put in ctx: for an HTTP request, the
// caller as the daemon found it (via "http"; the uid of a loopback caller
// from the kernel, -1 for a remote one, whose address is in Addr).
func ActorFrom(ctx context.Context) (journal.Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(journal.Actor)
	return a, ok
}

// ListenerReporter is implemented by a module that owns network
// listeners (--dns, --etcd, --forward, --syslog): their names and bound addresses ("off" for
// one not opened), which `status` lists beside the daemon's own.
type ListenerReporter interface {
	Listeners() map[string]string
}

// StreamDeclarer is implemented by a module that writes a stream of its
// own beside audit and capture (the logs engine's "logs", capture-like).
// The daemon asks before it opens the journal; the module then reaches the
// stream with Host.Journal.Stream(name), and reads take stream=NAME.
type StreamDeclarer interface {
	Streams() []journal.StreamSpec
}

// SourceCounters are a capture source's totals (the capture engine's
// "capture.sources" service gives them by source name): events stored,
// events dropped (a full buffer, a failed append, the kernel's own
// drops), errors.
type SourceCounters struct{ Events, Drops, Errors int64 }

// RequestStat is one verb's requests over the socket since the daemon
// started (the daemon's "daemon.requests" service): how many, how many
// failed, and how long the finite ones took (Latency, seconds; a stream
// such as tail is counted, not timed).
type RequestStat struct {
	Verb    string
	Count   uint64
	Errors  uint64
	Latency journal.HistogramSnapshot
}

// RequestsService is the name the daemon provides its request counters
// under, as a value with a method Requests() []RequestStat.
const RequestsService = "daemon.requests"
