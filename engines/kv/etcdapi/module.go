package etcdapi

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/engines/kv"
	"github.com/cairnhq/cairn/journal"
)

// Name is the module's name.
const Name = "etcd"

func init() { engines.Register(Name, func() engines.Module { return &module{honour: true} }) }

// module serves the kv engine's store over etcd's v3 gRPC API: its own
// module, which asks for the store ("kv.store") in Start, so the kv engine
// knows nothing of it.
type module struct {
	addr     string
	progress time.Duration
	honour   bool
	authOn   bool // --etcd-auth: a bind beyond loopback, for callers etcd's auth names
	stop     func() error
	bound    string // the listener's address, once serving
}

var (
	_ engines.Module   = (*module)(nil)
	_ engines.Requirer = (*module)(nil)
)

func (m *module) Name() string { return Name }

func (m *module) Flags(fs *flag.FlagSet) {
	fs.StringVar(&m.addr, "etcd", "", "serve the etcd v3 gRPC API on `ADDR` (host:port; off unless given)")
	fs.DurationVar(&m.progress, "etcd-progress-interval", 10*time.Minute, "how often a quiet etcd watch that asked for progress notifications gets one (etcd's default 10m)")
	fs.BoolVar(&m.authOn, "etcd-auth", false, "let --etcd bind beyond loopback: callers from elsewhere are served once etcd's auth is enabled (etcdctl auth enable) and only as the users it names")
	fs.BoolVar(&m.honour, "etcd-honour-compaction", true, "the etcd API answers ErrCompacted for reads and watches below the latest compaction, as etcd does; on unless =false (history stays readable through cairn's verbs; docs/kv.md)")
}

// Engines: etcd's auth lives in the audit stream (auth.go).
func (m *module) Engines() map[string][]journal.Engine {
	return map[string][]journal.Engine{journal.Audit: {AuthEngine()}}
}

// KindPrefixes reserves the auth engine's kinds: emit cannot forge a user.
func (m *module) KindPrefixes() []string { return []string{"etcd.auth."} }

// Kinds lists the kinds the module writes (docs/events.md).
func (m *module) Kinds() []string { return AuthKinds() }

func (m *module) Verbs() []engines.Verb { return nil }

// Requires is the kv engine's store, which the module serves.
func (m *module) Requires() []string { return []string{kv.StoreService} }

func (m *module) Start(ctx context.Context, h engines.Host) error {
	store, err := engines.Lookup[*kv.Store](h.Services, kv.StoreService)
	if err != nil {
		return err
	}
	store.SetHonourCompaction(m.honour)
	if m.addr == "" || m.addr == "off" {
		return nil
	}
	log := h.Logger
	if log == nil {
		log = slog.Default()
	}
	auth, err := NewAuthStore(ctx, h.Journal.Stream(journal.Audit))
	if err != nil {
		return fmt.Errorf("etcd auth: %w", err)
	}
	stop, bound, err := Serve(ctx, m.addr, m.progress, store, log, h.Authorize, h.DataDir, auth, m.authOn)
	if err != nil {
		return fmt.Errorf("serve etcd v3 API on %s: %w", m.addr, err)
	}
	m.stop, m.bound = stop, bound
	return nil
}

// Listeners names the etcd API's listener with its bound address.
func (m *module) Listeners() map[string]string {
	if m.bound == "" {
		return map[string]string{"etcd": "off"}
	}
	return map[string]string{"etcd": m.bound}
}

func (m *module) Stop() error {
	if m.stop == nil {
		return nil
	}
	err := m.stop()
	m.stop = nil
	return err
}
