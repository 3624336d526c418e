// Package build is cairn's image builder: Dockerfiles, parsed with
// BuildKit's own parser and instruction packages, built into the runtime
// engine's image store, each RUN a runc container, with Docker's layer
// cache, reproducible layers, and every build and step on the record
// (build.start, build.step, build.done, build.fail, image.tag).
package build

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/engines/runtime/image"
	"github.com/cairnhq/cairn/internal/mountinfo"
	"github.com/cairnhq/cairn/journal"
)

// Name is the engine's name.
const Name = "build"

// runtimeContainers is the runtime's service (engines/runtime
// ServiceName), through which an image.tag is journaled by the engine that
// owns the image. kinds.
const runtimeContainers = "runtime.containers"

func init() {
	engines.Register(Name, func() engines.Module { return newModule() })
}

// tagRecorder is what the build engine asks of the runtime's service.
type tagRecorder interface {
	RecordTag(ctx context.Context, actor journal.Actor, id, target, build string) error
}

type module struct {
	log   *slog.Logger
	node  string
	audit *journal.Stream
	store *image.Store
	tags  tagRecorder
	runc  runner
	dir   string // <data>/build

	mu     sync.Mutex
	builds map[string]*buildRun
	order  []string
}

var (
	_ engines.Module     = (*module)(nil)
	_ engines.KindLister = (*module)(nil)
	_ engines.KindOwner  = (*module)(nil)
	_ engines.Requirer   = (*module)(nil)
)

func newModule() *module {
	return &module{log: slog.Default(), builds: map[string]*buildRun{}}
}

func (m *module) Name() string { return Name }

// KindPrefixes are the kinds only this engine writes.
func (m *module) KindPrefixes() []string { return []string{"build."} }

// Kinds are the audit kinds the engine writes (docs/events.md); its
// image.tag events are the runtime's, journaled through its service.
func (m *module) Kinds() []string {
	return []string{"build.start", "build.step", "build.done", "build.fail"}
}

// Requires names the runtime's services: the image store, and the
// containers service that journals image.tag.
func (m *module) Requires() []string { return []string{image.StoreService, runtimeContainers} }

func (m *module) Flags(*flag.FlagSet) {}

func (m *module) Engines() map[string][]journal.Engine { return nil }

func (m *module) Start(ctx context.Context, h engines.Host) error {
	if h.Logger != nil {
		m.log = h.Logger
	}
	m.node = h.Node
	m.audit = h.Journal.Stream(journal.Audit)
	var err error
	if m.store, err = engines.Lookup[*image.Store](h.Services, image.StoreService); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	if m.tags, err = engines.Lookup[tagRecorder](h.Services, runtimeContainers); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	m.dir = filepath.Join(h.DataDir, "build")
	m.runc.root = filepath.Join(m.dir, "runc")
	if bin, err := exec.LookPath("runc"); err == nil {
		m.runc.bin = bin
	}
	for _, d := range []string{"cache", "work", "mounts", "runc"} {
		if err := os.MkdirAll(filepath.Join(m.dir, d), 0o700); err != nil {
			return fmt.Errorf("build: %w", err)
		}
	}
	m.cleanLeftovers()
	// A damaged journal does not stop the daemon (reads that reach the
	// damage fail with data_loss, and journal verify names it): build list
	// then lacks what could not be read, and the log says so.
	if err := m.loadBuilds(); err != nil {
		m.log.Error("build: earlier builds are not all read back from the journal", "err", err)
	}
	return nil
}

// cleanLeftovers removes what builds cut short by a daemon's death left:
// step containers, rootfs mounts, scratch directories.
func (m *module) cleanLeftovers() {
	if ents, err := os.ReadDir(m.runc.root); err == nil && m.runc.bin != "" {
		for _, e := range ents {
			m.runc.kill(e.Name())
			m.runc.remove(e.Name())
		}
	}
	work := filepath.Join(m.dir, "work")
	if mounts, err := mountinfo.Self(); err == nil {
		for _, mi := range mounts {
			if strings.HasPrefix(mi.MountPoint, work+"/") {
				_ = unmount(mi.MountPoint)
			}
		}
	}
	ents, _ := os.ReadDir(work)
	for _, e := range ents {
		_ = os.RemoveAll(filepath.Join(work, e.Name()))
	}
}

func (m *module) Stop() error {
	m.mu.Lock()
	runs := make([]*buildRun, 0, len(m.builds))
	for _, b := range m.builds {
		runs = append(runs, b)
	}
	m.mu.Unlock()
	for _, b := range runs {
		b.cancel()
		<-b.done
	}
	return nil
}

// record appends one audit event of the engine.
func (m *module) record(ctx context.Context, actor journal.Actor, kind, subject string, data map[string]any) error {
	_, err := m.audit.Append(ctx, &journal.Body{Kind: kind, Subject: subject, Node: m.node, Actor: actor, Data: data})
	if err != nil {
		return fmt.Errorf("record %s: %w", kind, err)
	}
	return nil
}
