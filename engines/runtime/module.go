// Package runtime is cairn's container runtime: an OCI image store and
// containers run by runc, with Docker's verbs (run, ps, inspect, logs, top,
// stats, exec, …). Containers are detached from the daemon, re-adopted
// after a restart, and their output goes to the logs stream.
package runtime

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/engines/runtime/image"
	"github.com/cairnhq/cairn/engines/runtime/netcfg"
	"github.com/cairnhq/cairn/journal"
)

// Name is the engine's name.
const Name = "runtime"

// LogsStream is the stream container output goes to.
const LogsStream = "logs"

func init() {
	engines.Register(Name, func() engines.Module { return newModule() })
}

// module is the runtime engine as the daemon runs it.
type module struct {
	// flags
	runcPath  string
	runcRoot  string
	subnet    string
	bridge    string
	logsAge   time.Duration
	logsBytes int64

	log    *slog.Logger
	node   string
	audit  *journal.Stream
	logs   *journal.Stream
	runc   runc
	images *image.Store
	net    *netcfg.Network
	netErr error // why bridge networking is not available
	// netReady says the bridge was set up (netMu guards it).
	netMu    sync.Mutex
	netReady bool
	nets     map[string]*namedNet // network create's, by name (netMu)

	dataDir string
	table   *containers

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// publishers are the port forwards of each container, by id.
	pubMu      sync.Mutex
	publishers map[string][]interface{ Close() error }
}

var (
	_ engines.Module         = (*module)(nil)
	_ engines.StreamDeclarer = (*module)(nil)
	_ engines.KindLister     = (*module)(nil)
	_ engines.KindOwner      = (*module)(nil)
	_ engines.Provider       = (*module)(nil)
)

func newModule() *module {
	return &module{log: slog.Default(), publishers: map[string][]interface{ Close() error }{}}
}

func (m *module) Name() string { return Name }

// KindPrefixes are the kinds only this engine writes.
func (m *module) KindPrefixes() []string { return []string{"image.", "container.", "network."} }

// Kinds are the audit kinds the engine writes (docs/events.md), and the
// logs stream's record kind.
func (m *module) Kinds() []string {
	return []string{"image.import", "image.tag", "image.rm", "image.prune",
		"container.create", "container.start", "container.exit", "container.restart",
		"container.rm", "container.exec", "container.kill", "container.log", "network.create", "network.rm"}
}

func (m *module) Flags(fs *flag.FlagSet) {
	fs.StringVar(&m.runcPath, "runc", "runc", "the runc binary that runs containers")
	fs.StringVar(&m.runcRoot, "runc-root", "", "runc's state directory (default <data>/runtime/runc)")
	fs.StringVar(&m.subnet, "runtime-subnet", "10.89.0.0/24", "the subnet of network=bridge containers; the bridge takes its first address")
	fs.StringVar(&m.bridge, "runtime-bridge", "cairn0", "the bridge network=bridge containers attach to")
	fs.DurationVar(&m.logsAge, "logs-retention", 7*24*time.Hour, "how long the logs stream keeps container output and log records (0 keeps it by size only)")
	fs.Int64Var(&m.logsBytes, "logs-retention-bytes", 1<<30, "how many bytes the logs stream keeps (0: no bound)")
}

// Streams declares the logs stream: container output, kept like capture.
func (m *module) Streams() []journal.StreamSpec {
	return []journal.StreamSpec{{Name: LogsStream, Class: journal.CaptureLike,
		Retention: journal.Retention{MaxAge: m.logsAge, MaxBytes: m.logsBytes}}}
}

func (m *module) Engines() map[string][]journal.Engine { return nil }

func (m *module) Verbs() []engines.Verb {
	verbs := append(append(m.containerVerbs(), m.imageVerbs()...), m.networkVerbs()...)
	slices.SortFunc(verbs, func(a, b engines.Verb) int { return strings.Compare(a.Verb, b.Verb) })
	return verbs
}

func (m *module) Start(ctx context.Context, h engines.Host) error {
	if h.Logger != nil {
		m.log = h.Logger
	}
	m.node = h.Node
	m.dataDir = h.DataDir
	m.audit = h.Journal.Stream(journal.Audit)
	m.logs = h.Journal.Stream(LogsStream)
	m.ctx, m.cancel = context.WithCancel(context.Background())
	root := filepath.Join(h.DataDir, "runtime")
	m.table = &containers{dir: filepath.Join(root, "containers"), byID: map[string]*entry{}}
	if err := os.MkdirAll(m.table.dir, 0o700); err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	var err error
	if m.images, err = image.Open(filepath.Join(h.DataDir, "images"), filepath.Join(root, "layers")); err != nil {
		return fmt.Errorf("runtime: image store: %w", err)
	}
	h.Services.Provide(image.StoreService, m.images)
	services := h.Services
	m.table.alias = func(ref string) (string, error) {
		r, err := engines.Lookup[instanceResolver](services, instancesService)
		if err != nil {
			return "", errors.New("no deploy engine to name instances")
		}
		return r.InstanceContainer(ref)
	}
	h.Services.Provide(ServiceName, &Service{m: m})
	m.runc = findRunc(m.runcPath)
	m.runc.root = m.runcRoot
	if m.runc.root == "" {
		m.runc.root = filepath.Join(root, "runc")
	}
	subnet, err := netip.ParsePrefix(m.subnet)
	if err != nil {
		return fmt.Errorf("--runtime-subnet %s: %w", m.subnet, err)
	}
	m.net, m.netErr = netcfg.New(netcfg.Config{Bridge: m.bridge, Subnet: subnet, StateDir: filepath.Join(root, "net"), Logger: m.log})
	if err := m.loadNetworks(); err != nil {
		return err
	}
	if m.runc.bin == "" {
		m.log.Warn("runc is not installed; container verbs will say so", "package", "runc")
		return nil
	}
	return m.adopt(ctx)
}

// Stop stops following the containers; they keep running, detached, and
// a restarted daemon re-adopts them.
func (m *module) Stop() error {
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
	m.pubMu.Lock()
	for id, ps := range m.publishers {
		for _, p := range ps {
			_ = p.Close()
		}
		delete(m.publishers, id)
	}
	m.pubMu.Unlock()
	m.closeNetworks()
	if m.net != nil {
		return m.net.Close()
	}
	return nil
}

// body is one audit event of the engine, from this node.
func (m *module) body(actor journal.Actor, kind, subject string, data map[string]any) *journal.Body {
	return &journal.Body{Kind: kind, Subject: subject, Node: m.node, Actor: actor, Data: data}
}

// record appends one audit event of the engine.
func (m *module) record(ctx context.Context, actor journal.Actor, kind, subject string, data map[string]any) error {
	_, err := m.audit.Append(ctx, m.body(actor, kind, subject, data))
	if err != nil {
		return fmt.Errorf("record %s: %w", kind, err)
	}
	return nil
}

// instancesService is the deploy engine's (deploy.InstancesService): it
// names the container of a BOSH instance, so that exec, logs, top and
// stats take web/0 as bosh ssh and bosh logs do.
const instancesService = "deploy.instances"

type instanceResolver interface {
	InstanceContainer(ref string) (string, error)
}
