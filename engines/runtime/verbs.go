package runtime

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/engines/runtime/cgstat"
	"github.com/cairnhq/cairn/engines/runtime/image"
	"github.com/cairnhq/cairn/engines/runtime/netcfg"
	"github.com/cairnhq/cairn/journal"
)

func (m *module) containerVerbs() []engines.Verb {
	ref := []dsl.Arg{{Name: "CONTAINER", Required: true, Help: "a container name, id or id prefix"}}
	return []engines.Verb{
		{Spec: dsl.Spec{
			Verb:    "run",
			Access:  dsl.AccessHost,
			Summary: "run a container from an image with runc, as docker run",
			Help: "run IMAGE [options] [-- CMD ARGS…] creates a container and starts it. Without detach the\n" +
				"answer is its output, and the CLI exits with its exit code; with detach, its id.\n" +
				"network=bridge (the default) gives it an address on the cairn0 bridge; publish=HOST:CTR\n" +
				"forwards a host port (on 127.0.0.1 unless an address is given).\n\n" +
				"  run busybox -- echo hello\n  run busybox name=web detach network=bridge publish=8080:80 -- httpd -f -p 80\n" +
				"  run busybox memory=32MiB pids=16 rm -- sh -c 'echo limited'",
			Args: []dsl.Arg{{Name: "IMAGE", Required: true, Help: "an image name or id (image list)"}},
			Flags: []dsl.Flag{
				{Name: "detach", Help: "answer the container's id at once; it runs on"},
				{Name: "rm", Help: "remove the container when it exits"},
			},
			Options: []dsl.Option{
				{Name: "name", Help: "the container's name (default: a generated one)"},
				{Name: "workdir", Meta: "DIR", Help: "the working directory of its process"},
				{Name: "user", Meta: "UID[:GID]", Help: "the user its process runs as (a number or a name in the image's /etc/passwd)"},
				{Name: "hostname", Help: "its hostname (default: the first 12 digits of its id)"},
				{Name: "memory", Meta: "SIZE", Help: "memory limit, as docker's --memory (256MiB, 512m)"},
				{Name: "cpus", Meta: "N", Help: "CPU limit in CPUs (0.5 is half of one)"},
				{Name: "pids", Kind: dsl.Int, Meta: "N", Help: "the most processes it may have"},
				{Name: "network", Meta: "none|host|bridge|NAME", Help: "its network (default bridge; NAME: one of network create)"},
				{Name: "ip", Meta: "ADDR", Help: "its address on the network (default the next free one)"},
				{Name: "publish", Repeatable: true, Meta: "[IP:]HOST:CTR[/udp]", Help: "forward a host port to a container port"},
				{Name: "volume", Repeatable: true, Meta: "SRC:DST[:ro]", Help: "bind-mount a host path you can read"},
				{Name: "restart", Meta: "POLICY", Help: "no, on-failure[:N], always or unless-stopped"},
			},
			Bag:       true,
			BagPrefix: "env.",
			Raw:       true,
		}, Run: m.runRun},
		{Spec: dsl.Spec{
			Verb:    "ps",
			Access:  dsl.AccessRead,
			Summary: "list containers, as docker ps",
			Help:    "ps answers a row per running container; ps all includes stopped ones.",
			Flags:   []dsl.Flag{{Name: "all", Help: "include containers that are not running"}},
		}, Run: m.runPs},
		{Spec: dsl.Spec{
			Verb:    "inspect",
			Access:  dsl.AccessRead,
			Summary: "a container's configuration and state, as docker inspect",
			Help:    "inspect CONTAINER answers one row with Docker's fields: Id, Name, Created, State, Config,\nHostConfig, NetworkSettings.",
			Args:    ref,
		}, Run: m.runInspect},
		{Spec: dsl.Spec{
			Verb:    "start",
			Access:  dsl.AccessHost,
			Summary: "start a stopped container",
			Args:    ref,
		}, Run: m.runStart},
		{Spec: dsl.Spec{
			Verb:    "stop",
			Access:  dsl.AccessHost,
			Summary: "stop a container: SIGTERM, then SIGKILL after time=",
			Args:    ref,
			Options: []dsl.Option{{Name: "time", Kind: dsl.Duration, Help: "how long to wait before SIGKILL (default 10s)"}},
		}, Run: m.runStop},
		{Spec: dsl.Spec{
			Verb:    "restart",
			Access:  dsl.AccessHost,
			Summary: "stop a container, then start it",
			Args:    ref,
			Options: []dsl.Option{{Name: "time", Kind: dsl.Duration, Help: "how long to wait before SIGKILL (default 10s)"}},
		}, Run: m.runRestart},
		{Spec: dsl.Spec{
			Verb:    "kill",
			Access:  dsl.AccessHost,
			Summary: "send a signal to a container's process",
			Args:    ref,
			Options: []dsl.Option{{Name: "signal", Help: "the signal, by name or number (default KILL)"}},
		}, Run: m.runKill},
		{Spec: dsl.Spec{
			Verb:    "rm",
			Access:  dsl.AccessHost,
			Summary: "remove a container",
			Help:    "rm CONTAINER removes a stopped container: its rootfs, network and runc state. rm force\nkills a running one first. Its output stays in the logs stream.",
			Args:    ref,
			Flags:   []dsl.Flag{{Name: "force", Help: "kill it first if it runs"}},
		}, Run: m.runRm},
		{Spec: dsl.Spec{
			Verb:    "wait",
			Access:  dsl.AccessRead,
			Summary: "wait for a container to exit and answer its exit code",
			Args:    ref,
		}, Run: m.runWait},
		{Spec: dsl.Spec{
			Verb:    "exec",
			Access:  dsl.AccessHost,
			Summary: "run a command in a running container (runc exec)",
			Help:    "exec CONTAINER [user=] [workdir=] [env.K=V…] -- CMD ARGS… answers the command's output and\nexit code, as docker exec.\n\n  exec web -- ps",
			Args:    ref,
			Options: []dsl.Option{
				{Name: "user", Meta: "UID[:GID]", Help: "the user it runs as"},
				{Name: "workdir", Meta: "DIR", Help: "its working directory"},
			},
			Bag:       true,
			BagPrefix: "env.",
			Raw:       true,
		}, Run: m.runExec},
		{Spec: dsl.Spec{
			Verb:    "top",
			Access:  dsl.AccessRead,
			Summary: "a container's processes, as docker top",
			Args:    ref,
		}, Run: m.runTop},
		{Spec: dsl.Spec{
			Verb:    "stats",
			Access:  dsl.AccessRead,
			Summary: "containers' CPU, memory, network, block I/O and pids, as docker stats",
			Help:    "stats [CONTAINER…] answers a row per running container (or those named); stream answers\nagain every second.",
			Args:    []dsl.Arg{{Name: "CONTAINER", Variadic: true, Help: "containers (default: every running one)"}},
			Flags:   []dsl.Flag{{Name: "stream", Help: "answer every second until canceled"}},
			Stream:  true,
		}, Run: m.runStats},
	}
}

// bad is an error in what the caller asked for.
func bad(err error) error {
	return wire.Errorf(wire.InvalidArgument, "%v", err)
}

func (m *module) lookup(st *dsl.Statement) (*entry, error) {
	w := st.Args["CONTAINER"]
	e, err := m.table.find(w.Text)
	if err != nil {
		return nil, engines.Errorf(wire.NotFound, w, "%v", err)
	}
	return e, nil
}

func (m *module) runRun(ctx context.Context, r engines.Request) error {
	if err := m.runc.available(); err != nil {
		return wire.Errorf(wire.FailedPrecondition, "%v", err)
	}
	st := r.Statement()
	o := runOptions{image: st.Args["IMAGE"].Text, cmd: st.Raw, rm: st.Flags["rm"], detach: st.Flags["detach"]}
	if w, ok := st.Opt("name"); ok {
		if err := checkName(w.Text); err != nil {
			return engines.Errorf(wire.InvalidArgument, w, "%v", err)
		}
		o.name = w.Text
	}
	if w, ok := st.Opt("workdir"); ok {
		if !strings.HasPrefix(w.Text, "/") {
			return engines.Errorf(wire.InvalidArgument, w, "workdir=%s: give an absolute path", w.Text)
		}
		o.workdir = w.Text
	}
	if w, ok := st.Opt("user"); ok {
		o.user = w.Text
	}
	if w, ok := st.Opt("hostname"); ok {
		o.hostname = w.Text
	}
	if w, ok := st.Opt("memory"); ok {
		n, err := parseSize(w.Text)
		if err != nil {
			return engines.Errorf(wire.InvalidArgument, w, "memory=%v", err)
		}
		if n < 6<<20 {
			return engines.Errorf(wire.InvalidArgument, w, "memory=%s: the minimum is 6MiB, as Docker's", w.Text)
		}
		o.memory = n
	}
	if w, ok := st.Opt("cpus"); ok {
		f, err := strconv.ParseFloat(w.Text, 64)
		if err != nil || f <= 0 || f > 1024 {
			return engines.Errorf(wire.InvalidArgument, w, "cpus=%s: give a number of CPUs such as 0.5 or 2", w.Text)
		}
		o.nanoCPUs = int64(f * 1e9)
	}
	if w, ok := st.Opt("pids"); ok {
		n, err := strconv.ParseInt(w.Text, 10, 64)
		if err != nil || n <= 0 {
			return engines.Errorf(wire.InvalidArgument, w, "pids=%s: give a positive number of processes", w.Text)
		}
		o.pids = n
	}
	if w, ok := st.Opt("network"); ok {
		if !networkName.MatchString(w.Text) {
			return engines.Errorf(wire.InvalidArgument, w, "network=%s: the network is none, host, bridge or the name of one network create made", w.Text)
		}
		o.network = w.Text
	}
	if w, ok := st.Opt("ip"); ok {
		if a, err := netip.ParseAddr(w.Text); err != nil || !a.Is4() {
			return engines.Errorf(wire.InvalidArgument, w, "ip=%s: give an IPv4 address of the network's subnet", w.Text)
		}
		o.ip = w.Text
	}
	if w, ok := st.Opt("restart"); ok {
		p, err := parseRestart(w.Text)
		if err != nil {
			return engines.Errorf(wire.InvalidArgument, w, "%v", err)
		}
		if p.Name != "no" && o.rm {
			return engines.Errorf(wire.InvalidArgument, w, "restart=%s and rm contradict each other", w.Text)
		}
		o.restart = p
	} else {
		o.restart = restartPolicy{Name: "no"}
	}
	for _, w := range st.Options["publish"] {
		if _, err := netcfg.ParsePublish(w.Text); err != nil {
			return engines.Errorf(wire.InvalidArgument, w, "publish=%s: %v", w.Text, err)
		}
		o.publish = append(o.publish, w.Text)
	}
	for _, w := range st.Options["volume"] {
		if _, err := parseVolume(w.Text); err != nil {
			return engines.Errorf(wire.InvalidArgument, w, "%v", err)
		}
		o.volumes = append(o.volumes, w.Text)
	}
	for _, b := range st.Bag {
		o.env = append(o.env, strings.TrimPrefix(b.Key, "env.")+"="+b.Value.Text)
	}
	e, err := m.create(ctx, r.Actor(), o)
	if err != nil {
		return createError(st, err)
	}
	if o.detach {
		if err := m.start(ctx, r.Actor(), e, true); err != nil {
			return err
		}
		if c := e.snapshot(); c.State.Pid == 0 {
			// The shim ended before runc had the process running: the
			// command could not start (docker run -d answers an error).
			e.mu.Lock()
			exited := e.exited
			e.mu.Unlock()
			select {
			case <-exited:
			case <-ctx.Done():
				return ctx.Err()
			}
			if c := e.snapshot(); c.State.Error != "" {
				return wire.Errorf(wire.FailedPrecondition, "container %s did not start (exit %d): %s", c.Name, c.State.ExitCode, c.State.Error)
			}
		}
		return r.Row(map[string]any{"id": e.c.ID, "name": e.c.Name})
	}
	return m.attach(ctx, r, e, func() error { return m.start(ctx, r.Actor(), e, false) })
}

// createError gives a create error its code: an image that is not there
// is not_found, the rest is the caller's to fix.
func createError(st *dsl.Statement, err error) error {
	var we *wire.Error
	if errors.As(err, &we) {
		return err
	}
	switch {
	case errors.Is(err, image.ErrNotFound):
		return engines.Errorf(wire.NotFound, st.Args["IMAGE"], "%v", err)
	case errors.Is(err, errNoRunc):
		return wire.Errorf(wire.FailedPrecondition, "%v", err)
	}
	return bad(err)
}

// attach answers the container's output from the logs stream as it is
// stored, from before start runs, and then its exit code.
func (m *module) attach(ctx context.Context, r engines.Request, e *entry, start func() error) error {
	id := e.c.ID
	sub := m.logs.Subscribe(ctx, 0, func(raw *journal.Raw) bool { return true })
	defer sub.Close()
	if err := start(); err != nil {
		return err
	}
	e.mu.Lock()
	exited := e.exited
	e.mu.Unlock()
	pa, _ := r.(engines.ProcessAnswerer)
	var lastSeq int64
	deliver := func(it journal.Item) error {
		if it.Raw == nil {
			return nil
		}
		lastSeq = it.Raw.Seq
		ev, err := it.Raw.Decode()
		if err != nil || ev.Container == nil || ev.Container.ID != shortContainerID(id) {
			return nil
		}
		return answerLine(r, pa, ev)
	}
	items := make(chan journal.Item)
	errc := make(chan error, 1)
	subCtx, stopSub := context.WithCancel(ctx)
	defer stopSub()
	go func() {
		for {
			it, err := sub.Next(subCtx)
			if err != nil {
				errc <- err
				return
			}
			select {
			case items <- it:
			case <-subCtx.Done():
				errc <- subCtx.Err()
				return
			}
		}
	}()
	for {
		select {
		case it := <-items:
			if err := deliver(it); err != nil {
				return err
			}
		case err := <-errc:
			return err
		case <-exited:
			e.mu.Lock()
			want := e.lastLogSeq
			code := e.c.State.ExitCode
			e.mu.Unlock()
			for lastSeq < want {
				select {
				case it := <-items:
					if err := deliver(it); err != nil {
						return err
					}
				case err := <-errc:
					return err
				}
			}
			if pa != nil {
				return pa.Exit(code)
			}
			return r.Row(map[string]any{"exit_code": code})
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// answerLine answers one log record: as the process's output where the
// request carries it, else as a line.
func answerLine(r engines.Request, pa engines.ProcessAnswerer, ev *journal.Event) error {
	line, _ := ev.Data["line"].(string)
	fd := 1
	if s, _ := ev.Data["stream"].(string); s == "stderr" {
		fd = 2
	}
	if p, _ := ev.Data["partial"].(bool); !p {
		line += "\n"
	}
	if pa != nil {
		return pa.Output(fd, line)
	}
	return r.Line(strings.TrimSuffix(line, "\n"))
}

// psRow is a row of ps.
type psRow struct {
	ID      string `json:"container_id"`
	Image   string `json:"image"`
	Command string `json:"command"`
	Created string `json:"created"`
	Status  string `json:"status"`
	Ports   string `json:"ports"`
	Names   string `json:"names"`
}

func (m *module) runPs(ctx context.Context, r engines.Request) error {
	all := r.Statement().Flags["all"]
	list := m.table.all()
	sort.Slice(list, func(i, j int) bool { return list[i].c.Created.After(list[j].c.Created) })
	for _, e := range list {
		c := e.snapshot()
		if !all && !c.State.Running {
			continue
		}
		var ports []string
		for ctr, host := range c.Net.Ports {
			ports = append(ports, host+"->"+ctr)
		}
		sort.Strings(ports)
		if err := r.Row(psRow{ID: c.ID[:12], Image: c.Image, Command: strconv.Quote(strings.Join(c.Config.Cmd, " ")),
			Created: ago(c.Created) + " ago", Status: status(c), Ports: strings.Join(ports, ", "), Names: c.Name}); err != nil {
			return err
		}
	}
	return nil
}

// status says what docker ps says: Up 5 minutes, Exited (0) 2 seconds ago.
func status(c Container) string {
	switch {
	case c.State.Running:
		return "Up " + ago(c.State.StartedAt)
	case c.State.Status == "restarting":
		return fmt.Sprintf("Restarting (%d) %s ago", c.State.ExitCode, ago(c.State.FinishedAt))
	case c.State.Status == "created":
		return "Created"
	}
	return fmt.Sprintf("Exited (%d) %s ago", c.State.ExitCode, ago(c.State.FinishedAt))
}

// ago is a duration as Docker's units.HumanDuration says it.
func ago(t time.Time) string {
	d := time.Since(t)
	switch s := int(d.Seconds()); {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	}
	switch mins := int(d.Minutes()); {
	case mins == 1:
		return "About a minute"
	case mins < 60:
		return fmt.Sprintf("%d minutes", mins)
	}
	switch h := int(d.Round(time.Hour).Hours()); {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	default:
		return fmt.Sprintf("%d days", h/24)
	}
}

// inspectRow is docker inspect's object.
type inspectRow struct {
	ID              string    `json:"Id"`
	Name            string    `json:"Name"`
	Created         time.Time `json:"Created"`
	Path            string    `json:"Path"`
	Args            []string  `json:"Args"`
	Image           string    `json:"Image"`
	State           State     `json:"State"`
	Config          Config    `json:"Config"`
	HostConfig      Host      `json:"HostConfig"`
	NetworkSettings Net       `json:"NetworkSettings"`
	RestartCount    int       `json:"RestartCount"`
}

func (m *module) runInspect(ctx context.Context, r engines.Request) error {
	e, err := m.lookup(r.Statement())
	if err != nil {
		return err
	}
	c := e.snapshot()
	if c.State.Running && c.State.Pid == 0 {
		if s, err := m.runc.state(ctx, c.ID); err == nil {
			c.State.Pid = s.Pid
		}
	}
	row := inspectRow{ID: c.ID, Name: "/" + c.Name, Created: c.Created, Image: c.ImageID, State: c.State,
		Config: c.Config, HostConfig: c.Host, NetworkSettings: c.Net, RestartCount: c.State.RestartCount}
	if len(c.Config.Cmd) > 0 {
		row.Path, row.Args = c.Config.Cmd[0], c.Config.Cmd[1:]
	}
	return r.Row(row)
}

func (m *module) runStart(ctx context.Context, r engines.Request) error {
	e, err := m.lookup(r.Statement())
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.c.State.Stopped = false
	e.mu.Unlock()
	if err := m.start(ctx, r.Actor(), e, true); err != nil {
		return err
	}
	return r.Row(map[string]any{"id": e.c.ID, "name": e.c.Name})
}

func grace(st *dsl.Statement) (time.Duration, error) {
	w, ok := st.Opt("time")
	if !ok {
		return 10 * time.Second, nil
	}
	d, err := w.Duration()
	if err != nil {
		return 0, engines.Errorf(wire.InvalidArgument, w, "time=%s: %v", w.Text, err)
	}
	return d, nil
}

// stopNamed stops the container a stop or restart statement names, after
// its time= of grace.
func (m *module) stopNamed(ctx context.Context, st *dsl.Statement) (*entry, error) {
	e, err := m.lookup(st)
	if err != nil {
		return nil, err
	}
	g, err := grace(st)
	if err != nil {
		return nil, err
	}
	return e, m.stop(ctx, e, g, syscall.SIGTERM)
}

func (m *module) runStop(ctx context.Context, r engines.Request) error {
	e, err := m.stopNamed(ctx, r.Statement())
	if err != nil {
		return err
	}
	_ = m.record(ctx, r.Actor(), "container.kill", e.c.Name, map[string]any{"id": e.c.ID, "name": e.c.Name, "signal": "TERM", "stop": true})
	c := e.snapshot()
	return r.Row(map[string]any{"id": c.ID, "name": c.Name, "exit_code": c.State.ExitCode})
}

func (m *module) runRestart(ctx context.Context, r engines.Request) error {
	e, err := m.stopNamed(ctx, r.Statement())
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.c.State.Stopped = false
	e.c.State.RestartCount++
	count := e.c.State.RestartCount
	e.mu.Unlock()
	_ = m.record(ctx, r.Actor(), "container.restart", e.c.Name, map[string]any{"id": e.c.ID, "name": e.c.Name, "restart_count": count})
	if err := m.start(ctx, r.Actor(), e, true); err != nil {
		return err
	}
	return r.Row(map[string]any{"id": e.c.ID, "name": e.c.Name})
}

func (m *module) runKill(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	e, err := m.lookup(st)
	if err != nil {
		return err
	}
	sig := syscall.SIGKILL
	if w, ok := st.Opt("signal"); ok {
		s, err := parseSignal(w.Text)
		if err != nil {
			return engines.Errorf(wire.InvalidArgument, w, "%v", err)
		}
		sig = s
	}
	c := e.snapshot()
	if !c.State.Running {
		return wire.Errorf(wire.FailedPrecondition, "container %s is not running", c.Name)
	}
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		e.mu.Lock()
		e.c.State.Stopped = true
		e.mu.Unlock()
	}
	if err := m.runc.kill(ctx, c.ID, sig, false); err != nil {
		if gone(err) {
			return wire.Errorf(wire.FailedPrecondition, "container %s is not running", c.Name)
		}
		return err
	}
	_ = m.record(ctx, r.Actor(), "container.kill", c.Name, map[string]any{"id": c.ID, "name": c.Name, "signal": unix.SignalName(sig)})
	return r.Row(map[string]any{"id": c.ID, "name": c.Name, "signal": unix.SignalName(sig)})
}

// parseSignal reads a signal as docker kill does: KILL, SIGKILL or 9.
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("signal=%s: not a signal name (TERM, KILL, HUP, …) or number", s)
}

func (m *module) runRm(ctx context.Context, r engines.Request) error {
	e, err := m.lookup(r.Statement())
	if err != nil {
		return err
	}
	if err := m.remove(ctx, r.Actor(), e, r.Statement().Flags["force"]); err != nil {
		if strings.Contains(err.Error(), "is running") {
			return wire.Errorf(wire.FailedPrecondition, "%v", err)
		}
		return err
	}
	return r.Row(map[string]any{"id": e.c.ID, "name": e.c.Name})
}

func (m *module) runWait(ctx context.Context, r engines.Request) error {
	e, err := m.lookup(r.Statement())
	if err != nil {
		return err
	}
	for {
		e.mu.Lock()
		running, restarting, exited := e.c.State.Running, e.restarting, e.exited
		e.mu.Unlock()
		if !running && !restarting {
			break
		}
		if restarting {
			// Between runs, in the policy's back-off: look again soon.
			select {
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		select {
		case <-exited:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c := e.snapshot()
	return r.Row(map[string]any{"exit_code": c.State.ExitCode, "oom_killed": c.State.OOMKilled})
}

func (m *module) runExec(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	e, err := m.lookup(st)
	if err != nil {
		return err
	}
	if len(st.Raw) == 0 {
		return wire.Errorf(wire.InvalidArgument, "exec: no command; usage: exec CONTAINER -- CMD ARGS…")
	}
	c := e.snapshot()
	if !c.State.Running {
		return wire.Errorf(wire.FailedPrecondition, "container %s is not running", c.Name)
	}
	args := m.runc.args("exec")
	if w, ok := st.Opt("user"); ok {
		uid, gid, _, err := resolveUser(m.table.dirOf(c.ID)+"/rootfs", w.Text)
		if err != nil {
			return engines.Errorf(wire.InvalidArgument, w, "%v", err)
		}
		args = append(args, "--user", fmt.Sprintf("%d:%d", uid, gid))
	}
	if w, ok := st.Opt("workdir"); ok {
		args = append(args, "--cwd", w.Text)
	}
	for _, b := range st.Bag {
		args = append(args, "--env", strings.TrimPrefix(b.Key, "env.")+"="+b.Value.Text)
	}
	args = append(args, c.ID)
	args = append(args, st.Raw...)
	cmd := exec.CommandContext(ctx, m.runc.bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	pa, _ := r.(engines.ProcessAnswerer)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("runc exec: %w", err)
	}
	out := make(chan [2]string, 64)
	pump := func(fd int, rd io.Reader, done chan<- struct{}) {
		defer close(done)
		br := bufio.NewReaderSize(rd, 64<<10)
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				out <- [2]string{strconv.Itoa(fd), line}
			}
			if err != nil {
				return
			}
		}
	}
	d1, d2 := make(chan struct{}), make(chan struct{})
	go pump(1, stdout, d1)
	go pump(2, stderr, d2)
	go func() { <-d1; <-d2; close(out) }()
	var answerErr error
	for o := range out {
		if answerErr != nil {
			continue
		}
		fd, _ := strconv.Atoi(o[0])
		if pa != nil {
			answerErr = pa.Output(fd, o[1])
		} else {
			answerErr = r.Line(strings.TrimSuffix(o[1], "\n"))
		}
	}
	code := 0
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return fmt.Errorf("runc exec: %w", err)
		}
		code = ee.ExitCode()
	}
	_ = m.record(ctx, r.Actor(), "container.exec", c.Name, map[string]any{"id": c.ID, "name": c.Name, "cmd": st.Raw, "exit_code": code})
	if answerErr != nil {
		return answerErr
	}
	if pa != nil {
		return pa.Exit(code)
	}
	return r.Row(map[string]any{"exit_code": code})
}

func (m *module) runTop(ctx context.Context, r engines.Request) error {
	e, err := m.lookup(r.Statement())
	if err != nil {
		return err
	}
	c := e.snapshot()
	if !c.State.Running {
		return wire.Errorf(wire.FailedPrecondition, "container %s is not running", c.Name)
	}
	cg, err := cgstat.Open(cgroupsPath(c.ID))
	if err != nil {
		return err
	}
	pids, err := cg.Pids()
	if err != nil {
		return err
	}
	header, rows, err := cgstat.Top(pids)
	if err != nil {
		return err
	}
	for _, row := range rows {
		obj := make(map[string]string, len(header))
		for i, h := range header {
			if i < len(row) {
				obj[h] = row[i]
			}
		}
		if err := r.Row(orderedRow(header, obj)); err != nil {
			return err
		}
	}
	return nil
}

func (m *module) runStats(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	var list []*entry
	if len(st.Rest) == 0 {
		for _, e := range m.table.all() {
			if e.snapshot().State.Running {
				list = append(list, e)
			}
		}
	}
	for _, w := range st.Rest {
		e, err := m.table.find(w.Text)
		if err != nil {
			return engines.Errorf(wire.NotFound, w, "%v", err)
		}
		list = append(list, e)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].c.Name < list[j].c.Name })
	prev := map[string]*cgstat.Stats{}
	sample := func() (map[string]cgstat.Stats, error) {
		out := map[string]cgstat.Stats{}
		for _, e := range list {
			c := e.snapshot()
			if !c.State.Running {
				continue
			}
			s, err := m.runc.state(ctx, c.ID)
			if err != nil {
				continue
			}
			cg, err := cgstat.Open(cgroupsPath(c.ID))
			if err != nil {
				continue
			}
			stats, err := cg.Stats(s.Pid)
			if err != nil {
				continue
			}
			out[c.ID] = stats
		}
		return out, nil
	}
	// A first sample, so that the CPU % of the first answer is over a
	// real interval, as docker stats' is.
	first, _ := sample()
	for id, s := range first {
		prev[id] = &s
	}
	interval := time.Second
	if !st.Flags["stream"] {
		interval = 500 * time.Millisecond
	}
	for {
		select {
		case <-time.After(interval):
		case <-ctx.Done():
			return ctx.Err()
		}
		cur, _ := sample()
		for _, e := range list {
			c := e.snapshot()
			s, ok := cur[c.ID]
			if !ok {
				continue
			}
			row := s.Row(c.ID, c.Name, prev[c.ID])
			if err := r.Row(row); err != nil {
				return err
			}
			prev[c.ID] = &s
		}
		if !st.Flags["stream"] {
			return nil
		}
		if f, ok := r.(engines.Flusher); ok {
			if err := f.Flush(); err != nil {
				return err
			}
		}
	}
}

// orderedRow keeps a row's columns in header order in its JSON.
type orderedRowT struct {
	keys []string
	vals map[string]string
}

func orderedRow(keys []string, vals map[string]string) orderedRowT {
	return orderedRowT{keys: keys, vals: vals}
}

func (o orderedRowT) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(o.vals[k])
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}
