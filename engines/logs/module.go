// Package logs is cairn's log collector, in Fluentd's manner: records come
// in by Fluentd's forward protocol (--forward), syslog (--syslog) and HTTP
// (POST /logs/TAG on the daemon's listener), each a {tag, time, record}
// stored in the logs stream beside container output, and the one `logs`
// verb reads them back with Fluentd's tag patterns and CEL.
package logs

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"sync"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

// Name is the engine's name.
const Name = "logs"

// Stream is the journal stream log records go to. The runtime engine
// declares it (container output landed first) with its retention flags
// --logs-retention and --logs-retention-bytes; this engine writes to it.
const Stream = "logs"

// RecordKind is the kind of a log record in the logs stream.
const RecordKind = "logs.record"

// ContainersService is the service the runtime provides to name a
// container from what a user typed (a name or an id prefix): `logs web`.
const ContainersService = "runtime.containers"

// containerResolver is what this engine asks of the runtime, through
// engines.Services (engines never import each other).
type containerResolver interface {
	// ContainerRef returns the short id and name of the container ref
	// names, or an error saying there is none.
	ContainerRef(ref string) (id, name string, err error)
	// ContainerRunning reports whether the container ref names runs.
	ContainerRunning(ref string) (bool, error)
}

func init() {
	engines.Register(Name, func() engines.Module { return newModule() })
}

type module struct {
	// flags
	forwardAddr string
	syslogAddr  string
	maxFrame    int64
	// outputBacklog caps each output's backlog, in seqs of the logs
	// stream behind its cursor.
	outputBacklog int64
	dataDir       string
	routes        routeTable
	routeMu       sync.Mutex // serializes route add and rm

	log      *slog.Logger
	node     string
	logs     *journal.Stream
	audit    *journal.Stream
	services *engines.Services
	stats    *stats
	fwdBufs  *bufPool // the forward input's message buffers and slots

	mu        sync.Mutex
	listeners map[string]string
	closers   []func() error
	tails     map[string]*tailRun // by path
	tailMu    sync.Mutex          // serializes tail add and rm
	ctx       context.Context     // the module's, for followers started by verbs
	wg        sync.WaitGroup
	cancel    context.CancelFunc
}

var (
	_ engines.Module           = (*module)(nil)
	_ engines.KindLister       = (*module)(nil)
	_ engines.KindOwner        = (*module)(nil)
	_ engines.ListenerReporter = (*module)(nil)
	_ engines.HTTPRouter       = (*module)(nil)
)

func newModule() *module {
	return &module{log: slog.Default(), stats: newStats(), fwdBufs: newBufPool(forwardInFlight), listeners: map[string]string{}}
}

func (m *module) Name() string { return Name }

// KindPrefixes: only this engine writes log records and its configuration
// events.
func (m *module) KindPrefixes() []string { return []string{"logs."} }

// Kinds are the kinds the engine writes (docs/events.md).
func (m *module) Kinds() []string {
	return []string{RecordKind, kindRouteAdd, kindRouteRm, kindOutputFail, kindOutputRecover, kindTailAdd, kindTailRm}
}

// recordAudit appends one audit event of the engine's own (an output's
// failure or recovery), as the system.
func (m *module) recordAudit(ctx context.Context, kind, subject string, data map[string]any) {
	if _, err := m.audit.Append(context.WithoutCancel(ctx), &journal.Body{Kind: kind, Subject: subject, Node: m.node, Actor: journal.SystemActor(), Data: data}); err != nil {
		m.log.Warn("logs: record", "kind", kind, "err", err)
	}
}

// The audit kinds of the engine's configuration.
const (
	kindTailAdd = "logs.tail.add"
	kindTailRm  = "logs.tail.rm"
)

func (m *module) Flags(fs *flag.FlagSet) {
	fs.StringVar(&m.forwardAddr, "forward", "127.0.0.1:24224", "Fluentd's forward protocol on `ADDR` (TCP, and UDP heartbeats on the same port), or off")
	fs.StringVar(&m.syslogAddr, "syslog", "off", "syslog (RFC 3164 and 5424) on `ADDR`, UDP and TCP, or off")
	fs.Int64Var(&m.outputBacklog, "logs-output-backlog", 1000000, "how far (in records of the logs stream) a route's output may fall behind before its oldest records are dropped and counted (0: no cap)")
	fs.Int64Var(&m.maxFrame, "forward-max-frame", defaultMaxFrame, "the largest forward message a client may send, in bytes; a larger one is counted and its connection closed")
}

func (m *module) Engines() map[string][]journal.Engine { return nil }

func (m *module) Start(ctx context.Context, h engines.Host) error {
	if h.Logger != nil {
		m.log = h.Logger
	}
	m.node = h.Node
	m.services = h.Services
	m.dataDir = h.DataDir
	m.logs = h.Journal.Stream(Stream)
	if m.logs == nil {
		return fmt.Errorf("logs: the %s stream is not declared (the runtime engine declares it)", Stream)
	}
	m.audit = h.Journal.Stream(journal.Audit)
	ctx, m.cancel = context.WithCancel(ctx)
	m.ctx = ctx
	// A damaged journal does not stop the daemon (reads that reach the
	// damage fail with data_loss, and journal verify names it): a change
	// that cannot be read is skipped, and if the stream cannot be read
	// on, the logs engine starts without its stored routes or tails, and
	// says so.
	if err := m.loadRoutes(ctx); err != nil {
		m.log.Error("logs: the stored routes are not restored", "err", err)
	}
	if err := m.loadTails(ctx); err != nil {
		m.log.Error("logs: the stored tails are not restored", "err", err)
	}
	if m.forwardAddr != "off" && m.forwardAddr != "" {
		if err := m.startForward(ctx, m.forwardAddr); err != nil {
			m.cancel()
			return fmt.Errorf("--forward %s: %w", m.forwardAddr, err)
		}
	}
	if m.syslogAddr != "off" && m.syslogAddr != "" {
		if err := m.startSyslog(ctx, m.syslogAddr); err != nil {
			m.stopAll()
			return fmt.Errorf("--syslog %s: %w", m.syslogAddr, err)
		}
	}
	return nil
}

func (m *module) stopAll() error {
	if m.cancel != nil {
		m.cancel()
	}
	m.mu.Lock()
	closers := m.closers
	m.closers = nil
	m.mu.Unlock()
	var first error
	for _, c := range closers {
		if err := c(); err != nil && first == nil {
			first = err
		}
	}
	m.wg.Wait()
	return first
}

// Stop closes the listeners and waits for their connections to end.
func (m *module) Stop() error { return m.stopAll() }

// Listeners are the bound addresses of --forward and --syslog.
func (m *module) Listeners() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]string, len(m.listeners))
	for k, v := range m.listeners {
		out[k] = v
	}
	return out
}

func (m *module) addListener(name, addr string, closer func() error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.listeners[name] = addr
	m.closers = append(m.closers, closer)
}
