package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cairnhq/cairn/engines/runtime/cgstat"
	"github.com/cairnhq/cairn/engines/runtime/containerspec"
	"github.com/cairnhq/cairn/engines/runtime/image"
	"github.com/cairnhq/cairn/engines/runtime/netcfg"
	"github.com/cairnhq/cairn/journal"
)

// ServiceName is the name the runtime provides its Service under
// (engines.Services): other engines run containers through it without
// importing this package, with an interface of their own over these
// methods, whose types are basic, containerspec's or cgstat's.
const ServiceName = "runtime.containers"

// Service is the runtime's containers as another engine drives them:
// each call is the verb's own path (create, start, stop, rm, exec), so it
// is journaled as the verb would be, with the actor given. Its creates
// run one at a time (the table's own race between a create and a lookup
// is fixed: the table reads a container's id and name from fields that
// never change).
type Service struct {
	m  *module
	mu sync.RWMutex // Create holds it; every other call reads it
}

// Provides names the services the module provides in Start: the
// containers, and the image store the build engine writes to.
func (m *module) Provides() []string { return []string{ServiceName, image.StoreService} }

// ImageID resolves an image reference of the store to its id.
func (s *Service) ImageID(ref string) (string, error) {
	img, err := s.m.images.Resolve(ref)
	if err != nil {
		return "", err
	}
	return img.ID, nil
}

// Create makes a container without starting it; its address, on the
// bridge, is already its own.
func (s *Service) Create(ctx context.Context, actor journal.Actor, spec containerspec.Spec) (containerspec.Info, error) {
	if spec.Name != "" {
		if err := checkName(spec.Name); err != nil {
			return containerspec.Info{}, err
		}
	}
	restart, err := parseRestart(spec.Restart)
	if err != nil {
		return containerspec.Info{}, err
	}
	for _, p := range spec.Publish {
		if _, err := netcfg.ParsePublish(p); err != nil {
			return containerspec.Info{}, fmt.Errorf("publish %s: %w", p, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.m.create(ctx, actor, runOptions{image: spec.Image, name: spec.Name, cmd: spec.Cmd, env: spec.Env,
		volumes: spec.Binds, network: spec.Network, ip: spec.IP, hostname: spec.Hostname, memory: spec.Memory, nanoCPUs: spec.NanoCPUs, detach: true,
		publish: spec.Publish, restart: restart})
	if err != nil {
		return containerspec.Info{}, err
	}
	return info(e.snapshot()), nil
}

// Start starts a created or stopped container and answers once its
// process runs.
func (s *Service) Start(ctx context.Context, actor journal.Actor, ref string) error {
	e, err := s.find(ref)
	if err != nil {
		return err
	}
	return s.m.start(ctx, actor, e, true)
}

// Stop stops a container: SIGTERM, then SIGKILL after grace.
func (s *Service) Stop(ctx context.Context, ref string, grace time.Duration) error {
	e, err := s.find(ref)
	if err != nil {
		return err
	}
	return s.m.stop(ctx, e, grace, syscall.SIGTERM)
}

// Remove removes a container, killing it first if it runs.
func (s *Service) Remove(ctx context.Context, actor journal.Actor, ref string) error {
	e, err := s.find(ref)
	if err != nil {
		return err
	}
	return s.m.remove(ctx, actor, e, true)
}

// Wait waits for a container's current run to end and answers its exit
// code.
func (s *Service) Wait(ctx context.Context, ref string) (int, error) {
	e, err := s.find(ref)
	if err != nil {
		return 0, err
	}
	e.mu.Lock()
	exited, running := e.exited, e.c.State.Running
	e.mu.Unlock()
	if running {
		select {
		case <-exited:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return e.snapshot().State.ExitCode, nil
}

// Inspect answers a container's state; an error when there is none by
// that reference.
func (s *Service) Inspect(ref string) (containerspec.Info, error) {
	e, err := s.find(ref)
	if err != nil {
		return containerspec.Info{}, err
	}
	return info(e.snapshot()), nil
}

// Exec runs cmd in a running container and answers its output (stdout
// then stderr) and exit code.
func (s *Service) Exec(ctx context.Context, actor journal.Actor, ref string, cmd []string) (string, int, error) {
	e, err := s.find(ref)
	if err != nil {
		return "", 0, err
	}
	c := e.snapshot()
	if !c.State.Running {
		return "", 0, fmt.Errorf("container %s is not running", c.Name)
	}
	if err := s.m.runc.available(); err != nil {
		return "", 0, err
	}
	x := exec.CommandContext(ctx, s.m.runc.bin, append(s.m.runc.args("exec", c.ID), cmd...)...)
	var out, stderr bytes.Buffer
	x.Stdout, x.Stderr = &out, &stderr
	code := 0
	if err := x.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return "", 0, fmt.Errorf("runc exec: %w", err)
		}
		code = ee.ExitCode()
	}
	_ = s.m.record(ctx, actor, "container.exec", c.Name, map[string]any{"id": c.ID, "name": c.Name, "cmd": cmd, "exit_code": code})
	return out.String() + stderr.String(), code, nil
}

// Stats reads a running container's cgroup accounting (docker stats'
// numbers, one reading).
func (s *Service) Stats(ref string) (cgstat.Stats, error) {
	e, err := s.find(ref)
	if err != nil {
		return cgstat.Stats{}, err
	}
	c := e.snapshot()
	if !c.State.Running {
		return cgstat.Stats{}, fmt.Errorf("container %s is not running", c.Name)
	}
	cg, err := cgstat.Open(cgroupsPath(c.ID))
	if err != nil {
		return cgstat.Stats{}, err
	}
	return cg.Stats(c.State.Pid)
}

func info(c Container) containerspec.Info {
	return containerspec.Info{ID: c.ID, Name: c.Name, ImageID: c.ImageID, IP: c.Net.IPAddress, Status: c.State.Status,
		Running: c.State.Running, Pid: c.State.Pid, ExitCode: c.State.ExitCode}
}

// find looks a container up beside no create of the service's.
func (s *Service) find(ref string) (*entry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m.table.find(ref)
}

// Containers lists every container the runtime knows, sorted by name,
// with where its cgroup and init are: the metrics engine's collector and
// cAdvisor API read them through an interface of their own.
func (s *Service) Containers() []cgstat.Container {
	var out []cgstat.Container
	for _, e := range s.m.table.all() {
		c := e.snapshot()
		out = append(out, cgstat.Container{
			ID: c.ID, Name: c.Name, Image: c.Image, ImageID: c.ImageID,
			Created: c.Created, Started: c.State.StartedAt,
			Pid: c.State.Pid, Cgroup: cgroupsPath(c.ID), Running: c.State.Running,
			MemoryLimit: c.Host.Memory, NanoCPUs: c.Host.NanoCPUs,
		})
	}
	slices.SortFunc(out, func(a, b cgstat.Container) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// RecordTag journals image.tag for a name another engine gave an image of
// the store (the build engine names what it built): image kinds are the
// runtime's. build is the build's id, which audit readers follow to its
// build.* events. The subject is image/NAME, so that `audit who
// image/web:1` lists every version the tag named and the build behind it.
func (s *Service) RecordTag(ctx context.Context, actor journal.Actor, id, target, build string) error {
	return s.m.record(ctx, actor, "image.tag", "image/"+target, map[string]any{"id": id, "target": target, "build": build})
}

// EnsureNetwork makes the network name with subnet and gateway, as network
// create, unless it exists with both already; one that exists with another
// subnet or gateway is an error (network rm it, or give it another name).
func (s *Service) EnsureNetwork(ctx context.Context, actor journal.Actor, name, subnet, gateway string) error {
	s.m.netMu.Lock()
	nn, ok := s.m.nets[name]
	s.m.netMu.Unlock()
	if ok {
		if nn.def.Subnet != subnet || nn.def.Gateway != gateway {
			return fmt.Errorf("network %s exists with subnet %s and gateway %s, not %s and %s (network rm it first)",
				name, nn.def.Subnet, nn.def.Gateway, subnet, gateway)
		}
		return nil
	}
	_, err := s.m.createNetwork(ctx, actor, name, subnet, gateway)
	return err
}

// RemoveNetwork removes a network no container uses, as network rm.
func (s *Service) RemoveNetwork(ctx context.Context, actor journal.Actor, name string) error {
	return s.m.removeNetwork(ctx, actor, name)
}
