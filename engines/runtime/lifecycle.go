package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/engines/runtime/cgstat"
	"github.com/cairnhq/cairn/engines/runtime/netcfg"
	"github.com/cairnhq/cairn/internal/ascaller"
	"github.com/cairnhq/cairn/internal/mountinfo"
	"github.com/cairnhq/cairn/journal"
)

// runOptions is a run statement's container, before it exists.
type runOptions struct {
	image    string
	name     string
	env      []string // K=V, in order
	cmd      []string // after --; empty keeps the image's
	workdir  string
	user     string
	hostname string
	memory   int64
	nanoCPUs int64
	pids     int64
	network  string
	ip       string // the address asked for (ip=), on network
	publish  []string
	volumes  []string
	restart  restartPolicy
	rm       bool
	detach   bool
}

// create makes a container: its rootfs, network, bundle and record. On
// any error nothing is left behind.
func (m *module) create(ctx context.Context, actor journal.Actor, o runOptions) (_ *entry, err error) {
	if err := m.runc.available(); err != nil {
		return nil, err
	}
	img, err := m.images.Resolve(o.image)
	if err != nil {
		return nil, err
	}
	cfg, err := m.images.Config(img.ID)
	if err != nil {
		return nil, err
	}
	c := Container{
		ID: newID(), Name: o.name, Image: o.image, ImageID: img.ID, Created: time.Now().UTC(),
		Config: Config{Image: o.image, Env: cfg.Config.Env, WorkingDir: cfg.Config.WorkingDir, User: cfg.Config.User, Hostname: o.hostname},
		Host: Host{Memory: o.memory, NanoCPUs: o.nanoCPUs, PidsLimit: o.pids, Binds: o.volumes, Network: o.network, IP: o.ip,
			Publish: o.publish, RestartPolicy: o.restart, AutoRemove: o.rm},
		State: State{Status: "created"},
	}
	if c.Name == "" {
		c.Name = randomName() + "_" + c.ID[:4]
	}
	c.Config.Cmd = append(slices.Clone(cfg.Config.Entrypoint), cfg.Config.Cmd...)
	if len(o.cmd) > 0 {
		c.Config.Cmd = append(slices.Clone(cfg.Config.Entrypoint), o.cmd...)
	}
	if len(c.Config.Cmd) == 0 {
		return nil, fmt.Errorf("image %s has no command: give one after --", o.image)
	}
	c.Config.Env = containerEnv(c.Config.Env, o.env)
	if o.workdir != "" {
		c.Config.WorkingDir = o.workdir
	}
	if o.user != "" {
		c.Config.User = o.user
	}
	if c.Host.Network == "" {
		c.Host.Network = "bridge"
	}
	if len(c.Host.Publish) > 0 && !hasOwnAddress(c.Host.Network) {
		return nil, fmt.Errorf("publish needs network=bridge or a network of network create (network=%s has no address of its own to forward to)", c.Host.Network)
	}
	var wantIP netip.Addr
	if c.Host.IP != "" {
		if !hasOwnAddress(c.Host.Network) {
			return nil, fmt.Errorf("ip= needs network=bridge or a network of network create, not network=%s", c.Host.Network)
		}
		var err error
		if wantIP, err = netip.ParseAddr(c.Host.IP); err != nil || !wantIP.Is4() {
			return nil, fmt.Errorf("ip=%s: give an IPv4 address of the network's subnet", c.Host.IP)
		}
	}
	if len(c.Host.Binds) > 0 && actor.UID != 0 {
		// The container's root is the host's root (no user namespace):
		// a bind mount would give the caller root's access to it.
		return nil, fmt.Errorf("volume= needs a root caller: a container's root is the host's root, so a bind mount would give you root's access to the path")
	}
	for _, v := range c.Host.Binds {
		b, err := parseVolume(v)
		if err != nil {
			return nil, err
		}
		// The caller must be able to read what it mounts, as for the
		// infra engine's paths: the kernel judges, as the caller.
		if err := ascaller.Do(ascaller.Cred{UID: actor.UID, GID: actor.GID, Groups: actor.Groups}, func() error {
			f, err := os.Open(b.src)
			if err != nil {
				return err
			}
			return f.Close()
		}); err != nil {
			return nil, fmt.Errorf("volume=%s: %w", v, err)
		}
	}
	// The entry takes the name now; until create ends, what would change
	// the container (start, stop, rm) waits on its op lock, and ps and
	// inspect see it as created. The rest is built in c, and only then
	// becomes the entry's.
	e := &entry{id: c.ID, name: c.Name, c: c, exited: make(chan struct{}), logsDone: make(chan struct{})}
	e.op.Lock()
	defer e.op.Unlock()
	if err := m.table.add(e); err != nil {
		return nil, err
	}
	dir := m.table.dirOf(c.ID)
	defer func() {
		if err != nil {
			e.mu.Lock()
			e.removed = true
			e.mu.Unlock()
			m.teardown(context.Background(), &c)
			m.table.remove(c.ID)
		}
	}()
	for _, d := range []string{dir, filepath.Join(dir, "rootfs"), filepath.Join(dir, "upper"), filepath.Join(dir, "work")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	// The rootfs must be searchable by the container's user, and its /
	// is the overlay's upper directory: 0755, as an image's / is (at 0700
	// a USER other than root could open nothing).
	_ = os.Chmod(dir, 0o711)
	_ = os.Chmod(filepath.Join(dir, "upper"), 0o755)
	netns := ""
	if hasOwnAddress(c.Host.Network) {
		n, err := m.network(ctx, c.Host.Network)
		if err != nil {
			return nil, fmt.Errorf("network=%s: %w", c.Host.Network, err)
		}
		ep, err := n.AttachAddr(ctx, c.ID, wantIP)
		if err != nil {
			return nil, fmt.Errorf("network=%s: %w", c.Host.Network, err)
		}
		c.Net.IPAddress, c.Net.Gateway, c.Net.Netns = ep.IP.String(), ep.Gateway.String(), ep.NetnsPath
		netns = ep.NetnsPath
		if err := m.publish(ctx, &c); err != nil {
			return nil, err
		}
	}
	lower, diffIDs, err := m.images.Unpack(ctx, img.ID)
	if err != nil {
		return nil, err
	}
	c.Lowerdirs, c.DiffIDs = lower, diffIDs
	if err := m.mountRootfs(&c); err != nil {
		return nil, err
	}
	if err := writeEtcFiles(dir, &c); err != nil {
		return nil, err
	}
	spec, err := bundleSpec(&c, dir, netns)
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		return nil, err
	}
	if err := m.table.save(&c); err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.c = c
	// Recorded with the start that follows, in one append (one fsync).
	e.created = m.body(actor, "container.create", c.Name, map[string]any{
		"id": c.ID, "name": c.Name, "image": c.Image, "image_id": c.ImageID, "cmd": c.Config.Cmd,
		"network": c.Host.Network, "ip": c.Net.IPAddress, "memory": c.Host.Memory, "nano_cpus": c.Host.NanoCPUs,
		"pids_limit": c.Host.PidsLimit, "binds": c.Host.Binds, "publish": c.Host.Publish, "restart": c.Host.RestartPolicy.Name,
	})
	e.mu.Unlock()
	return e, nil
}

// defaultPath is the PATH a container gets when neither its image nor
// its run sets one, as with Docker.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// containerEnv is a container's environment: the image's, with the run's
// K=V over it, and Docker's PATH when neither sets one.
func containerEnv(image, run []string) []string {
	env := mergeEnv(image, run)
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "PATH=") }) {
		env = append([]string{defaultPath}, env...)
	}
	return env
}

// mergeEnv sets each K=V of over in base, replacing an earlier K.
func mergeEnv(base, over []string) []string {
	out := slices.Clone(base)
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		i := slices.IndexFunc(out, func(s string) bool { return strings.HasPrefix(s, k+"=") })
		if i >= 0 {
			out[i] = kv
		} else {
			out = append(out, kv)
		}
	}
	return out
}

// writeEtcFiles writes the hostname, hosts and resolv.conf the container
// sees.
func writeEtcFiles(dir string, c *Container) error {
	host := c.Config.Hostname
	if host == "" {
		host = c.ID[:12]
	}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	if c.Net.IPAddress != "" {
		hosts += c.Net.IPAddress + "\t" + host + "\n"
	}
	resolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		resolv = nil
	}
	for name, data := range map[string][]byte{"hostname": []byte(host + "\n"), "hosts": []byte(hosts), "resolv.conf": resolv} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// mountRootfs mounts the container's overlayfs: the image layers below,
// its own upper directory above.
func (m *module) mountRootfs(c *Container) error {
	dir := m.table.dirOf(c.ID)
	target := filepath.Join(dir, "rootfs")
	if mountinfo.Mounted(target) {
		return nil
	}
	opts := "lowerdir=" + strings.Join(c.Lowerdirs, ":") + ",upperdir=" + filepath.Join(dir, "upper") + ",workdir=" + filepath.Join(dir, "work")
	if len(c.Lowerdirs) == 0 {
		return errors.New("the image has no layers")
	}
	if err := unix.Mount("overlay", target, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount the container's rootfs (overlayfs): %w", err)
	}
	return nil
}

// publish starts the container's port forwards.
func (m *module) publish(ctx context.Context, c *Container) error {
	ip, err := netip.ParseAddr(c.Net.IPAddress)
	if err != nil {
		return fmt.Errorf("publish: the container has no address: %w", err)
	}
	c.Net.Ports = map[string]string{}
	var started []interface{ Close() error }
	for _, p := range c.Host.Publish {
		spec, err := netcfg.ParsePublish(p)
		if err != nil {
			closeAll(started)
			return fmt.Errorf("publish=%s: %w", p, err)
		}
		n := m.attachedNetwork(c.Host.Network)
		if n == nil {
			closeAll(started)
			return fmt.Errorf("publish=%s: network %s is not there", p, c.Host.Network)
		}
		closer, err := n.Publish(m.ctx, spec.Proto, spec.Host, netip.AddrPortFrom(ip, spec.ContainerPort))
		if err != nil {
			closeAll(started)
			return fmt.Errorf("publish=%s: %w", p, err)
		}
		started = append(started, closer)
		c.Net.Ports[fmt.Sprintf("%d/%s", spec.ContainerPort, spec.Proto)] = spec.Host.String()
	}
	m.pubMu.Lock()
	m.publishers[c.ID] = started
	m.pubMu.Unlock()
	return nil
}

func closeAll(cs []interface{ Close() error }) {
	for _, c := range cs {
		_ = c.Close()
	}
}

// teardown removes what create made for c: port forwards, network, the
// rootfs mount, runc's state and the directory.
func (m *module) teardown(ctx context.Context, c *Container) {
	m.pubMu.Lock()
	closeAll(m.publishers[c.ID])
	delete(m.publishers, c.ID)
	m.pubMu.Unlock()
	_ = m.runc.delete(ctx, c.ID, true)
	if n := m.attachedNetwork(c.Host.Network); hasOwnAddress(c.Host.Network) && n != nil {
		if err := n.Detach(c.ID); err != nil {
			m.log.Warn("detach a container's network", "container", c.ID[:12], "err", err)
		}
	}
	m.discard(c.ID)
}

// discardPrefix names a removed container's directory until it is gone.
const discardPrefix = ".rm-"

// discard removes a container's directory: at once out of the table's
// sight (one rename), then, aside, its rootfs unmounted and its files
// deleted, which take milliseconds (the unmount waits for an RCU grace
// period, each unlink for ext4's journal) that the verb need not wait
// for: nothing reads the directory once it is renamed. A daemon that ends
// before it is done finishes at its next start (sweepDiscarded).
func (m *module) discard(id string) {
	dir := m.table.dirOf(id)
	trash := filepath.Join(filepath.Dir(dir), discardPrefix+id)
	if err := os.Rename(dir, trash); err != nil {
		if !os.IsNotExist(err) {
			m.log.Warn("rename a removed container's directory", "container", shortContainerID(id), "err", err)
		}
		m.removeDir(dir) // a directory left over, or none at all
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.removeDir(trash)
	}()
}

// removeDir unmounts the container directory's rootfs, if it is mounted,
// and then deletes the directory: never the other way round, which would
// delete through the overlay.
func (m *module) removeDir(dir string) {
	rootfs := filepath.Join(dir, "rootfs")
	if mountinfo.Mounted(rootfs) {
		if err := unix.Unmount(rootfs, unix.MNT_DETACH); err != nil {
			m.log.Warn("unmount a removed container's rootfs", "dir", dir, "err", err)
			return // deleting would reach into the mounted image
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		m.log.Warn("remove a container's directory", "dir", dir, "err", err)
	}
}

// sweepDiscarded finishes the removals an earlier daemon did not. One that
// ended after a removal renamed the directory and before it recorded the
// removal (and, for run rm, the exit before it) left no event of either:
// they are recorded now, from the container's record, the journal and the
// exit status its shim wrote, before the directory goes.
func (m *module) sweepDiscarded(ctx context.Context) {
	ents, err := os.ReadDir(m.table.dir)
	if err != nil {
		return
	}
	for _, de := range ents {
		if !de.IsDir() || !strings.HasPrefix(de.Name(), discardPrefix) {
			continue
		}
		dir := filepath.Join(m.table.dir, de.Name())
		if err := m.recordDiscarded(ctx, dir); err != nil {
			// The journal could not be read or written: kept, so that the
			// next start records it.
			m.log.Warn("record an interrupted removal", "dir", dir, "err", err)
			continue
		}
		// The removal deleted runc's state before the rename; a removal
		// that did not get that far leaves it.
		if id := strings.TrimPrefix(de.Name(), discardPrefix); idRE.MatchString(id) {
			_ = m.runc.delete(ctx, id, true)
		}
		m.removeDir(dir)
	}
}

// recordDiscarded appends the container.rm of the removed container whose
// directory is dir, unless the journal holds it, after a container.exit
// when the journal's last word on the container's run is its start. Its
// error is the journal's: a record that cannot be read is logged and the
// directory goes without events, as before there were any.
func (m *module) recordDiscarded(ctx context.Context, dir string) error {
	c, err := readRecord(dir)
	if os.IsNotExist(err) {
		return nil // an interrupted create's: no container to record
	}
	if err == nil && (c.ID == "" || c.Name == "") {
		err = errors.New("it names no container")
	}
	if err != nil {
		m.log.Warn("an interrupted removal's record cannot be read: removed without its events", "dir", dir, "err", err)
		return nil
	}
	last, err := m.lastRunEvent(c)
	if err != nil || last == "container.rm" {
		return err
	}
	var bodies []*journal.Body
	if last == "container.start" {
		code, at, ok := readExit(dir)
		data := map[string]any{"id": c.ID, "name": c.Name, "exit_code": code, "oom_killed": false}
		if !ok {
			data["exit_code"], data["error"] = 255, "the container's shim left no exit status"
		}
		if !at.IsZero() {
			data["duration_s"] = at.Sub(c.State.StartedAt).Seconds()
		}
		bodies = append(bodies, m.body(journal.SystemActor(), "container.exit", c.Name, data))
	}
	bodies = append(bodies, m.body(journal.SystemActor(), "container.rm", c.Name,
		map[string]any{"id": c.ID, "name": c.Name, "force": false, "interrupted": true}))
	_, err = m.audit.Append(ctx, bodies...)
	return err
}

// lastRunEvent returns the kind of the audit stream's latest
// container.create, start, exit or rm of container c (by its id: a name
// is reused), "" when there is none.
func (m *module) lastRunEvent(c Container) (string, error) {
	it := m.audit.Scan(journal.Query{Kind: "container.*", Subject: c.Name, Reverse: true})
	defer it.Close()
	for it.Next() {
		raw := it.Raw()
		kind, err := raw.Kind()
		if err != nil {
			continue
		}
		switch kind {
		case "container.create", "container.start", "container.exit", "container.rm":
		default:
			continue
		}
		ev, err := raw.Decode()
		if err != nil {
			continue // not this container's, as far as can be told
		}
		if id, _ := ev.Data["id"].(string); id == c.ID {
			return kind, nil
		}
	}
	return "", it.Err()
}

// start runs the container's process: the shim runs `runc run`, the
// output followers store what it writes, and a watcher waits for its end.
func (m *module) start(ctx context.Context, actor journal.Actor, e *entry, waitRunning bool) error {
	e.op.Lock()
	defer e.op.Unlock()
	return m.startLocked(ctx, actor, e, waitRunning)
}

// startLocked is start with e.op held.
func (m *module) startLocked(ctx context.Context, actor journal.Actor, e *entry, waitRunning bool) error {
	e.mu.Lock()
	if e.c.State.Running {
		e.mu.Unlock()
		return nil
	}
	if e.removed {
		e.mu.Unlock()
		return fmt.Errorf("container %s is being removed", e.c.Name)
	}
	// A start ends a restart policy's back-off: this is the restart.
	if e.restarting {
		e.restarting = false
		close(e.backoff)
	}
	created := e.created
	e.created = nil
	c := e.c
	e.mu.Unlock()
	dir := m.table.dirOf(c.ID)
	// A container that ran before leaves runc's state of its last run.
	_ = m.runc.delete(ctx, c.ID, true)
	if err := m.mountRootfs(&c); err != nil {
		return err
	}
	// Only a memory limit lets the cgroup's OOM killer end the process:
	// then runc keeps the cgroup until the daemon has read its count.
	proc, err := m.runc.startShim(dir, c.ID, c.Host.Memory > 0)
	if err != nil {
		if created != nil {
			if _, rerr := m.audit.Append(context.Background(), created); rerr != nil {
				m.log.Warn("record a container create", "container", c.ID[:12], "err", rerr)
			}
		}
		return err
	}
	startTicks, _ := procStart(proc.Pid)
	// A detached start answers once the process runs, as docker run -d
	// does: a kill or an exec right after finds it. An attached run need
	// not wait: its answer is the process's output and end.
	pid := 0
	if waitRunning {
		pid = waitStarted(ctx, dir, proc.Pid, startTicks)
	}
	e.mu.Lock()
	e.exited = make(chan struct{})
	e.logsDone = make(chan struct{})
	e.c.State = State{Status: "running", Running: true, StartedAt: time.Now().UTC(), Pid: pid, ShimPid: proc.Pid, ShimStart: startTicks,
		RestartCount: e.c.State.RestartCount}
	c = e.c
	saveErr := m.table.save(&e.c)
	e.mu.Unlock()
	if saveErr != nil {
		m.log.Warn("save a container's record", "container", c.ID[:12], "err", saveErr)
	}
	bodies := []*journal.Body{{Kind: "container.start", Subject: c.Name, Node: m.node, Actor: actor,
		Data: map[string]any{"id": c.ID, "name": c.Name, "restart_count": c.State.RestartCount}}}
	if created != nil {
		bodies = append([]*journal.Body{created}, bodies...)
	}
	// Not the request's context: a caller's Ctrl-C must not lose the
	// record of a container that runs.
	if _, err := m.audit.Append(context.Background(), bodies...); err != nil {
		m.log.Warn("record a container start", "container", c.ID[:12], "err", err)
	}
	m.watch(e, func(ctx context.Context) error {
		// Wait without blocking the daemon's stop (the shim outlives it),
		// then reap the shim, a child of this daemon.
		if err := waitPid(ctx, proc.Pid, startTicks); err != nil {
			return err
		}
		_, err := proc.Wait()
		return err
	})
	return nil
}

// watch follows a running container's output and waits for its shim to
// end (wait), then records its exit and applies its restart policy.
func (m *module) watch(e *entry, wait func(context.Context) error) {
	runCtx, stopFollowing := context.WithCancel(m.ctx)
	e.mu.Lock()
	logsDone, exited := e.logsDone, e.exited
	e.mu.Unlock()
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		m.follow(runCtx, e, logsDone)
	}()
	go func() {
		defer m.wg.Done()
		err := wait(m.ctx)
		if m.ctx.Err() != nil {
			// The daemon is stopping: the container goes on, detached.
			stopFollowing()
			return
		}
		if err != nil {
			m.log.Warn("wait for a container's shim", "container", e.c.ID[:12], "err", err)
		}
		// The process is gone: the followers read to the end and stop.
		stopFollowing()
		<-logsDone
		m.exited(e, exited, time.Time{})
	}()
}

// exited records the end of the container's run: its status from the
// shim, whether the kernel's OOM killer ended it, runc's message when the
// process did not start. finished is when it ended, when known from
// elsewhere (the status file's time for a container that ended while the
// daemon was down).
func (m *module) exited(e *entry, exited chan struct{}, finished time.Time) {
	ctx := context.Background()
	dir := m.table.dirOf(e.c.ID)
	code, at, ok := readExit(dir)
	msg := ""
	if !ok {
		code, msg = 255, "the container's shim ended without an exit status"
	}
	if smsg, scode, failed := startError(dir); failed && code == 1 {
		code, msg = scode, smsg
	}
	oom := false
	if e.c.Host.Memory == 0 {
		// No limit of its own: its cgroup's OOM killer cannot have ended it.
	} else if cg, err := cgstat.Open(cgroupsPath(e.c.ID)); err == nil {
		if n, err := cg.OOMKills(); err == nil && n > 0 {
			oom = true
		}
	}
	if err := m.runc.delete(ctx, e.c.ID, true); err != nil {
		m.log.Warn("runc delete", "container", e.c.ID[:12], "err", err)
	}
	if finished.IsZero() {
		finished = time.Now().UTC()
		if !at.IsZero() && time.Since(at) > time.Second {
			finished = at.UTC()
		}
	}
	e.mu.Lock()
	e.c.State.Running = false
	e.c.State.Status = "exited"
	e.c.State.Pid = 0
	e.c.State.ShimPid, e.c.State.ShimStart = 0, 0
	e.c.State.ExitCode = code
	e.c.State.OOMKilled = oom
	e.c.State.Error = msg
	e.c.State.FinishedAt = finished
	c := e.c
	removed := e.removed
	// A container about to be removed needs no record: a daemon that
	// ends before the removal finds its exit again in the shim's file,
	// and one that ends after the removal renamed the directory and
	// before it appended exit and rm has them appended by the sweep at
	// its next start (sweepDiscarded), from the record saved at start.
	autoRemove := c.Host.AutoRemove && !removed
	if !removed && !c.Host.AutoRemove {
		if err := m.table.save(&e.c); err != nil {
			m.log.Warn("save a container's record", "container", c.ID[:12], "err", err)
		}
	}
	e.mu.Unlock()
	data := map[string]any{"id": c.ID, "name": c.Name, "exit_code": code, "oom_killed": oom,
		"duration_s": finished.Sub(c.State.StartedAt).Seconds()}
	if msg != "" {
		data["error"] = msg
	}
	exit := m.body(journal.SystemActor(), "container.exit", c.Name, data)
	if autoRemove {
		// Removed before the run is said to have ended, so that run rm
		// answers once the container is gone, as docker run --rm; the
		// exit and the removal are one append (one fsync).
		if err := m.removeAfter(ctx, journal.SystemActor(), e, false, exit); err != nil {
			m.log.Warn("remove a container (rm)", "container", c.ID[:12], "err", err)
		}
		close(exited)
		return
	}
	if _, err := m.audit.Append(ctx, exit); err != nil {
		m.log.Warn("record a container exit", "container", c.ID[:12], "err", err)
	}
	close(exited)
	if removed {
		return
	}
	m.applyPolicy(e, c, false)
}

// applyPolicy restarts the container if its restart policy says so, after
// Docker's back-off: 100 ms doubled at each restart, at most a minute.
// boot is the daemon's start, where Docker restarts an exited container
// of policy always even if it was stopped by hand, at once and without
// counting a restart; unless-stopped and on-failure as at any exit.
func (m *module) applyPolicy(e *entry, c Container, boot bool) {
	p := c.Host.RestartPolicy
	restart := false
	switch p.Name {
	case "always":
		restart = boot || !c.State.Stopped
	case "unless-stopped":
		restart = !c.State.Stopped
	case "on-failure":
		restart = !c.State.Stopped && c.State.ExitCode != 0 && (p.MaximumRetryCount == 0 || c.State.RestartCount < p.MaximumRetryCount)
	}
	if !restart {
		return
	}
	delay := 100 * time.Millisecond << min(c.State.RestartCount, 10)
	delay = min(delay, time.Minute)
	if boot {
		delay = 0
	}
	e.mu.Lock()
	if e.removed || e.restarting || e.c.State.Running {
		e.mu.Unlock()
		return
	}
	e.c.State.Status = "restarting"
	e.c.State.Stopped = false
	if !boot {
		e.c.State.RestartCount++
	}
	e.restarting = true
	backoff := make(chan struct{})
	e.backoff = backoff
	count := e.c.State.RestartCount
	if err := m.table.save(&e.c); err != nil {
		m.log.Warn("save a container's record", "container", c.ID[:12], "err", err)
	}
	e.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		timer := time.NewTimer(delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-backoff: // stopped, removed or started meanwhile
			return
		case <-m.ctx.Done():
			return
		}
		// Under op, so that a stop or rm either ended the back-off
		// before (nothing to do) or waits for the restart to be done.
		e.op.Lock()
		defer e.op.Unlock()
		e.mu.Lock()
		if !e.restarting || e.backoff != backoff {
			e.mu.Unlock()
			return
		}
		e.restarting = false
		close(backoff)
		e.mu.Unlock()
		ctx := context.Background()
		_ = m.record(ctx, journal.SystemActor(), "container.restart", c.Name, map[string]any{"id": c.ID, "name": c.Name, "restart_count": count, "policy": p.Name})
		if err := m.startLocked(ctx, journal.SystemActor(), e, true); err != nil {
			m.log.Warn("restart a container", "container", c.ID[:12], "err", err)
		}
	}()
}

// stop asks the container's process to end with SIGTERM, then kills it
// after grace, and waits for its end.
func (m *module) stop(ctx context.Context, e *entry, grace time.Duration, sig syscall.Signal) error {
	// A start under way finishes first: then the container runs, and is
	// stopped.
	e.op.Lock()
	e.mu.Lock()
	e.c.State.Stopped = true
	e.cancelBackoff()
	running := e.c.State.Running
	exited := e.exited
	id := e.c.ID
	_ = m.table.save(&e.c)
	e.mu.Unlock()
	e.op.Unlock()
	if !running {
		return nil
	}
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	// An attached run answers before runc has made the container: until
	// it has, runc says it does not exist; send again until the process
	// gets the signal or ends.
	for {
		err := m.runc.kill(ctx, id, sig, false)
		if err == nil {
			break
		}
		if !gone(err) {
			return err
		}
		select {
		case <-exited:
			return nil
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if sig != syscall.SIGKILL {
		select {
		case <-exited:
			return nil
		case <-time.After(grace):
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := m.runc.kill(ctx, id, syscall.SIGKILL, true); err != nil && !gone(err) {
			return err
		}
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// gone reports a runc error that says the container has ended already.
func gone(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "not running") || strings.Contains(msg, "does not exist")
}

// remove removes a stopped container (force: kills a running one first).
func (m *module) remove(ctx context.Context, actor journal.Actor, e *entry, force bool) error {
	return m.removeAfter(ctx, actor, e, force, nil)
}

// removeAfter is remove, with the record of what came just before the
// removal (a container's exit), when there is one, appended with the
// container.rm; it is appended alone when the container was removed
// already.
func (m *module) removeAfter(ctx context.Context, actor journal.Actor, e *entry, force bool, before *journal.Body) error {
	for {
		e.op.Lock()
		e.mu.Lock()
		if e.removed {
			e.mu.Unlock()
			e.op.Unlock()
			if before != nil {
				if _, err := m.audit.Append(ctx, before); err != nil {
					return fmt.Errorf("record %s: %w", before.Kind, err)
				}
			}
			return nil
		}
		if !e.c.State.Running {
			e.removed = true
			e.cancelBackoff()
			c := e.c
			e.mu.Unlock()
			m.teardown(ctx, &c)
			m.table.remove(c.ID)
			e.op.Unlock()
			rm := m.body(actor, "container.rm", c.Name, map[string]any{"id": c.ID, "name": c.Name, "force": force})
			bodies := []*journal.Body{rm}
			if before != nil {
				bodies = []*journal.Body{before, rm}
			}
			if _, err := m.audit.Append(ctx, bodies...); err != nil {
				return fmt.Errorf("record container.rm: %w", err)
			}
			return nil
		}
		name := e.c.Name
		e.mu.Unlock()
		e.op.Unlock()
		if !force {
			if before != nil {
				if _, err := m.audit.Append(ctx, before); err != nil {
					m.log.Warn("record "+before.Kind, "container", shortContainerID(e.id), "err", err)
				}
			}
			return fmt.Errorf("container %s is running: stop it first, or rm force", name)
		}
		// Stopped, it stays stopped (no restart policy brings it back);
		// a start asked for meanwhile is stopped again.
		if err := m.stop(ctx, e, 0, syscall.SIGKILL); err != nil {
			return err
		}
	}
}

// adopt re-adopts the containers of an earlier daemon: a running one's
// shim is still there, and it is followed again; one that ended meanwhile
// is recorded as exited and its restart policy applied.
func (m *module) adopt(ctx context.Context) error {
	list, unfinished, err := m.table.load()
	if err != nil {
		return fmt.Errorf("runtime: read containers: %w", err)
	}
	m.sweepDiscarded(ctx)
	// What an interrupted create made (its rootfs mount, runc state,
	// network endpoint, directory) goes, as its failure would have.
	for _, id := range unfinished {
		m.log.Info("removing a container whose create was interrupted", "container", shortContainerID(id))
		m.teardown(ctx, &Container{ID: id, Host: Host{Network: "bridge"}})
	}
	known := make(map[string]bool, len(list))
	for _, c := range list {
		known[c.ID] = true
	}
	for _, n := range m.allNetworks() {
		for _, id := range n.Attached() {
			if !known[id] {
				if err := n.Detach(id); err != nil {
					m.log.Warn("detach an endpoint no container owns", "container", shortContainerID(id), "err", err)
				}
			}
		}
	}
	m.resumeOffsets(list)
	for _, c := range list {
		e := &entry{id: c.ID, name: c.Name, c: c, exited: make(chan struct{}), logsDone: make(chan struct{})}
		m.table.mu.Lock()
		m.table.byID[c.ID] = e
		m.table.mu.Unlock()
		if hasOwnAddress(c.Host.Network) && len(c.Host.Publish) > 0 && m.attachedNetwork(c.Host.Network) != nil {
			if err := m.publish(ctx, &e.c); err != nil {
				m.log.Warn("re-publish a container's ports", "container", c.ID[:12], "err", err)
			}
		}
		if !c.State.Running {
			// Exited before the daemon stopped, or waiting in a restart
			// back-off when it did: the policy is applied now, as
			// Docker's daemon does at its start.
			if c.State.Status == "exited" || c.State.Status == "restarting" {
				if c.State.Status == "restarting" {
					e.c.State.Status = "exited"
				}
				m.applyPolicy(e, e.c, true)
			}
			continue
		}
		if s, ok := procStart(c.State.ShimPid); ok && s == c.State.ShimStart {
			m.log.Info("re-adopted a running container", "container", c.ID[:12], "name", c.Name)
			pid, start := c.State.ShimPid, c.State.ShimStart
			m.watch(e, func(ctx context.Context) error { return waitPid(ctx, pid, start) })
			continue
		}
		// It ended while no daemon watched: its output is stored, then its
		// exit, as if it had just ended.
		m.log.Info("a container ended while the daemon was down", "container", c.ID[:12], "name", c.Name)
		m.watch(e, func(context.Context) error { return nil })
	}
	return nil
}
