package infra

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/engines/infra/provider"
	_ "github.com/cairnhq/cairn/engines/infra/providers/consul" // the providers linked in: each registers itself from init
	_ "github.com/cairnhq/cairn/engines/infra/providers/docker"
	_ "github.com/cairnhq/cairn/engines/infra/providers/file"
	_ "github.com/cairnhq/cairn/engines/infra/providers/kv"
	_ "github.com/cairnhq/cairn/engines/infra/providers/local"
	_ "github.com/cairnhq/cairn/engines/infra/providers/net"
	_ "github.com/cairnhq/cairn/engines/infra/providers/null"
	_ "github.com/cairnhq/cairn/engines/infra/providers/random"
	_ "github.com/cairnhq/cairn/engines/infra/providers/terraform"
	_ "github.com/cairnhq/cairn/engines/infra/providers/time"
	"github.com/cairnhq/cairn/journal"
)

func init() {
	engines.Register(Name, func() engines.Module { return newModule() })
}

// module is the infra engine as the daemon runs it.
type module struct {
	audit    *journal.Stream
	log      *slog.Logger
	node     string
	services *engines.Services
	noDrift  bool
	hostKey  []byte

	mu    sync.Mutex
	locks map[string]*sync.Mutex // per workspace: applies are serialized
	plans *planCache
	drift *driftWatcher
}

var _ engines.Module = (*module)(nil)

func newModule() *module {
	return &module{locks: map[string]*sync.Mutex{}, plans: newPlanCache(64), log: slog.Default()}
}

func (m *module) Name() string { return Name }

// KindPrefixes are the kinds only this engine writes (emit refuses them).
func (m *module) KindPrefixes() []string { return []string{"infra."} }

func (m *module) Flags(fs *flag.FlagSet) {
	fs.BoolVar(&m.noDrift, "infra-no-drift", false, "do not watch managed objects for drift")
}

func (m *module) Engines() map[string][]journal.Engine {
	return map[string][]journal.Engine{journal.Audit: {engine{}}}
}

func (m *module) Verbs() []engines.Verb { return m.verbs() }

func (m *module) Start(ctx context.Context, h engines.Host) error {
	if err := checkTypes(); err != nil {
		return err
	}
	m.audit = h.Journal.Stream(journal.Audit)
	if h.Logger != nil {
		m.log = h.Logger
	}
	m.node = h.Node
	m.services = h.Services
	key, err := hostKey(h.DataDir)
	if err != nil {
		return err
	}
	m.hostKey = key
	if !m.noDrift {
		m.drift = newDriftWatcher(ctx, m)
		m.drift.resubscribe()
	}
	return nil
}

func (m *module) Stop() error {
	if m.drift != nil {
		m.drift.stop()
	}
	return nil
}

// lock returns the workspace's apply lock.
func (m *module) lock(ws string) *sync.Mutex {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.locks[ws]
	if l == nil {
		l = &sync.Mutex{}
		m.locks[ws] = l
	}
	return l
}

func (m *module) commit(ctx context.Context, req *commitReq) ([]journal.Committed, error) {
	c, _, err := m.audit.Propose(ctx, Name, req)
	return c, err
}

func (m *module) env(actor journal.Actor) provider.Env {
	return provider.Env{Actor: actor, Services: m.services, HostKey: m.hostKey}
}

// hostKey reads the daemon's infra secret from dir/infra_host.key, making it
// (32 random bytes, mode 0600) the first time. Without a data directory
// (tests) the key lives as long as the process.
func hostKey(dir string) ([]byte, error) {
	if dir == "" {
		k := make([]byte, 32)
		_, err := rand.Read(k)
		return k, err
	}
	p := filepath.Join(dir, "infra_host.key")
	k, err := os.ReadFile(p)
	switch {
	case err == nil && len(k) == 32:
		return k, nil
	case err == nil:
		return nil, fmt.Errorf("infra: %s holds %d bytes, not 32; it is the key random_password results are derived from, so it is not replaced: restore it, or remove it to start over (every random_password then derives another value)", p, len(k))
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("infra: read %s: %w", p, err)
	}
	k = make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("infra: make %s: %w", p, err)
	}
	if _, err := f.Write(k); err != nil {
		f.Close()
		return nil, fmt.Errorf("infra: write %s: %w", p, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return k, f.Close()
}

// planCache keeps recent plans in memory: a plan holds variable values,
// sensitive ones included, so it is never written anywhere.
type planCache struct {
	mu    sync.Mutex
	max   int
	order []int64
	m     map[int64]*Plan
}

func newPlanCache(n int) *planCache { return &planCache{max: n, m: map[int64]*Plan{}} }

func (c *planCache) put(p *Plan) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[p.ID] = p
	c.order = append(c.order, p.ID)
	for len(c.order) > c.max {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
}

func (c *planCache) take(id int64) *Plan {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.m[id]
	delete(c.m, id)
	return p
}

// resubscribe has the drift watcher follow the scopes state now holds.
func (m *module) resubscribe() {
	if m.drift != nil {
		m.drift.resubscribe()
	}
}
