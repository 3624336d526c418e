package kv

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

func init() {
	engines.Register(Name, func() engines.Module { return newModule() })
}

// EtcdServe starts the etcd v3 gRPC API on addr over s and returns the
// function that stops it.
// progress is the interval of the periodic progress notifications of
// watches that ask for them.
type EtcdServe func(ctx context.Context, addr string, progress time.Duration, s *Store, log *slog.Logger) (stop func() error, err error)

var (
	etcdMu       sync.Mutex
	etcdFrontend EtcdServe
)

// SetEtcdFrontend is called from the etcdapi package's init: serve starts
// the etcd v3 gRPC API. The kv module calls it from Start when the daemon
// was given --etcd ADDR.
func SetEtcdFrontend(serve EtcdServe) {
	etcdMu.Lock()
	defer etcdMu.Unlock()
	etcdFrontend = serve
}

// module is the kv engine as the daemon runs it.
type module struct {
	store    *Store
	etcdAddr string
	etcdProg time.Duration
	stopEtcd func() error
}

var _ engines.Module = (*module)(nil)

func newModule() *module { return &module{store: New(Options{})} }

func (m *module) Name() string { return Name }

// KindPrefixes are the kinds only this engine writes (emit refuses them).
func (m *module) KindPrefixes() []string { return []string{"kv.", "lease."} }

func (m *module) Flags(fs *flag.FlagSet) {
	fs.StringVar(&m.etcdAddr, "etcd", "", "serve the etcd v3 gRPC API on `ADDR` (host:port; off unless given)")
	fs.DurationVar(&m.etcdProg, "etcd-progress-interval", 10*time.Minute, "how often a quiet etcd watch that asked for progress notifications gets one (etcd's default 10m)")
	fs.Var(m.store.HonourCompactionFlag(), "etcd-honour-compaction", "the etcd API answers ErrCompacted for reads and watches below the latest compaction, as etcd does; on unless =false (history stays readable through cairn's verbs; docs/kv.md)")
}

func (m *module) Engines() map[string][]journal.Engine {
	return map[string][]journal.Engine{journal.Audit: {m.store.Engine()}}
}

func (m *module) Verbs() []engines.Verb { return verbs(m.store) }

func (m *module) Start(ctx context.Context, h engines.Host) error {
	if h.Logger != nil {
		m.store.log = h.Logger
	}
	if err := m.store.Start(ctx, h.Journal); err != nil {
		return err
	}
	if h.Services != nil {
		h.Services.Provide(Name, service{m.store})
	}
	if m.etcdAddr == "" || m.etcdAddr == "off" {
		return nil
	}
	etcdMu.Lock()
	serve := etcdFrontend
	etcdMu.Unlock()
	if serve == nil {
		return errors.New("--etcd was given but this cairn was built without the etcd v3 API (engines/kv/etcdapi is not linked in)")
	}
	stop, err := serve(ctx, m.etcdAddr, m.etcdProg, m.store, m.store.log.With("component", "etcd"))
	if err != nil {
		return fmt.Errorf("serve etcd v3 API on %s: %w", m.etcdAddr, err)
	}
	m.stopEtcd = stop
	return nil
}

func (m *module) Stop() error {
	var err error
	if m.stopEtcd != nil {
		err = m.stopEtcd()
		m.stopEtcd = nil
	}
	m.store.Stop()
	return err
}
