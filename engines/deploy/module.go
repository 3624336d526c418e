// Package deploy is cairn's BOSH Director for one host: stemcells are
// images of the runtime's store, releases are uploaded in BOSH's layout,
// and a deployment manifest's instances are runtime containers, rolled
// with canaries and max_in_flight, watched by a health monitor and
// brought back by a resurrector. Every step is an event of the journal.
package deploy

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/engines/runtime/cgstat"
	"github.com/cairnhq/cairn/engines/runtime/containerspec"
	"github.com/cairnhq/cairn/journal"
)

// Name is the engine's name.
const Name = "deploy"

// runtimeService is the runtime engine's service (runtime.containers),
// as this engine uses it.
const runtimeService = "runtime.containers"

func init() {
	engines.Register(Name, func() engines.Module { return newModule() })
}

// containers is what the deploy engine asks of the runtime engine.
type containers interface {
	ImageID(ref string) (string, error)
	Create(ctx context.Context, actor journal.Actor, spec containerspec.Spec) (containerspec.Info, error)
	Start(ctx context.Context, actor journal.Actor, ref string) error
	Stop(ctx context.Context, ref string, grace time.Duration) error
	Remove(ctx context.Context, actor journal.Actor, ref string) error
	Wait(ctx context.Context, ref string) (int, error)
	Inspect(ref string) (containerspec.Info, error)
	Exec(ctx context.Context, actor journal.Actor, ref string, cmd []string) (string, int, error)
	Stats(ref string) (cgstat.Stats, error)
	EnsureNetwork(ctx context.Context, actor journal.Actor, name, subnet, gateway string) error
	RemoveNetwork(ctx context.Context, actor journal.Actor, name string) error
}

type module struct {
	healthEvery     time.Duration
	meltdownMin     int
	meltdownPercent int

	log   *slog.Logger
	node  string
	dir   string
	audit *journal.Stream
	rt    containers

	mu sync.Mutex // guards st and its file, cancels, canceled
	st *state
	// cancels end the running tasks, by id; canceled marks those a
	// deploy task ID cancel ended.
	cancels  map[int]context.CancelFunc
	canceled map[int]bool

	// deps serialises the tasks of each deployment (and the
	// resurrector's work on it).
	depMu sync.Mutex
	deps  map[string]*sync.Mutex

	// runCtx ends at Stop: the monitor's, and every task's (a task does
	// not end with its client, but does with the daemon).
	runCtx context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var (
	_ engines.Module     = (*module)(nil)
	_ engines.KindLister = (*module)(nil)
	_ engines.KindOwner  = (*module)(nil)
	_ engines.Requirer   = (*module)(nil)
)

func newModule() *module {
	return &module{log: slog.Default(), deps: map[string]*sync.Mutex{}, cancels: map[int]context.CancelFunc{}, canceled: map[int]bool{}}
}

func (m *module) Name() string { return Name }

// Requires the runtime's containers, so the daemon starts it first.
func (m *module) Requires() []string { return []string{runtimeService} }

// KindPrefixes are the kinds only this engine writes.
func (m *module) KindPrefixes() []string {
	return []string{"deploy.", "release.", "stemcell.", "cloud_config."}
}

// Kinds are the kinds the engine writes (docs/events.md).
func (m *module) Kinds() []string {
	return []string{"deploy.task.start", "deploy.task.done", "deploy.task.fail", "deploy.task.cancel", "deploy.diff",
		"deploy.compile", "deploy.instance.create", "deploy.instance.update", "deploy.instance.delete",
		"deploy.instance.start", "deploy.instance.stop", "deploy.canary.ok", "deploy.canary.fail",
		"deploy.resurrect", "deploy.meltdown", "deploy.errand", "deploy.variables", "deploy.resurrection", "deploy.delete",
		"release.upload", "stemcell.upload", "cloud_config.update"}
}

func (m *module) Flags(fs *flag.FlagSet) {
	fs.DurationVar(&m.healthEvery, "deploy-health-interval", 5*time.Second, "how often the deploy engine's health monitor checks every instance")
	fs.IntVar(&m.meltdownMin, "deploy-meltdown-min", 5, "the resurrector stops (meltdown) when at least this many instances of a deployment are down at once …")
	fs.IntVar(&m.meltdownPercent, "deploy-meltdown-percent", 20, "… and they are more than this share (%) of its instances")
}

func (m *module) Engines() map[string][]journal.Engine { return nil }

func (m *module) Start(ctx context.Context, h engines.Host) error {
	if h.Logger != nil {
		m.log = h.Logger
	}
	m.node = h.Node
	m.dir = filepath.Join(h.DataDir, "deploy")
	m.audit = h.Journal.Stream(journal.Audit)
	rt, err := engines.Lookup[containers](h.Services, runtimeService)
	if err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	m.rt = rt
	h.Services.Provide(InstancesService, instanceNames{m})
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	if m.st, err = loadState(m.statePath()); err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	// A task a daemon's end interrupted failed; its instances are what
	// their containers are (deploy instances asks the runtime).
	for _, t := range m.st.Tasks {
		if t.State == "processing" {
			t.State, t.Error, t.Ended = "error", "the daemon stopped during the task", time.Now().UTC()
			m.record(context.Background(), journal.SystemActor(), "deploy.task.fail", t.Deployment,
				map[string]any{"task": t.ID, "deployment": t.Deployment, "error": t.Error})
		}
	}
	if err := m.st.save(m.statePath()); err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.runCtx = runCtx
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.monitor(runCtx)
	}()
	return nil
}

func (m *module) Stop() error {
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
	return nil
}

func (m *module) statePath() string { return filepath.Join(m.dir, "state.json") }

// saveLocked writes the state; m.mu must be held.
func (m *module) saveLocked() {
	if err := m.st.save(m.statePath()); err != nil {
		m.log.Warn("deploy: save the director's state", "err", err)
	}
}

// record appends one audit event.
func (m *module) record(ctx context.Context, actor journal.Actor, kind, subject string, data map[string]any) int64 {
	seqs, err := m.audit.Append(context.WithoutCancel(ctx), &journal.Body{Kind: kind, Subject: subject, Node: m.node, Actor: actor, Data: data})
	if err != nil {
		m.log.Warn("deploy: record an event", "kind", kind, "err", err)
		return 0
	}
	if len(seqs) > 0 {
		return seqs[0].Seq
	}
	return 0
}

// depLock returns the lock of a deployment's tasks.
func (m *module) depLock(name string) *sync.Mutex {
	m.depMu.Lock()
	defer m.depMu.Unlock()
	l, ok := m.deps[name]
	if !ok {
		l = &sync.Mutex{}
		m.deps[name] = l
	}
	return l
}
