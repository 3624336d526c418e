//go:build linux

package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/journal"
)

func init() {
	RegisterSource("proc", func() Source { return NewProcSource() })
}

var _ StatsSource = (*ProcSource)(nil)

// userHZ is the unit of /proc/PID/stat's starttime. It is 100 on every
// Linux architecture Go runs on (USER_HZ, not the kernel's HZ).
const userHZ = 100

// ProcSource is the proc source: process lifecycle (clone, execve,
// procexit) from the netlink proc connector, with a process table seeded
// from /proc at start and kept in memory, so that an exit still names its
// program after /proc has forgotten it.
//
// The proc connector exists only in the initial network namespace and
// needs root (CAP_NET_ADMIN in the initial user namespace).
type ProcSource struct {
	// IncludeSelf makes the source report the daemon and its descendants,
	// which it leaves out by default (cairn observing itself observing
	// would feed on itself). Set it before Start.
	IncludeSelf bool

	root    string // /proc, a variable for tests
	selfPID int64
	table   *procTable

	fd      int
	emit    Emit
	log     *slog.Logger
	cancel  context.CancelFunc
	done    chan struct{}
	stopped sync.Once
	pending []procEvent // read while waiting for the listen ack

	users map[int64]string // uid → name, touched by the reader only

	kernelDrops atomic.Int64
	errs        atomic.Int64
}

// NewProcSource returns a proc source that reads /proc and leaves out the
// daemon's own processes.
func NewProcSource() *ProcSource {
	return &ProcSource{root: "/proc", selfPID: int64(os.Getpid()), fd: -1}
}

// SetIncludeSelf sets IncludeSelf; the pipeline calls it for include-self.
func (s *ProcSource) SetIncludeSelf(v bool) { s.IncludeSelf = v }

// KernelDrops reports how many times the kernel told the source it had
// dropped events (ENOBUFS on the netlink socket). The kernel does not say
// how many were lost each time, so this counts overflows, at least one
// event each.
func (s *ProcSource) KernelDrops() int64 { return s.kernelDrops.Load() }

// ErrNotInitialNetns is returned by Start outside the initial network
// namespace, where the kernel offers no proc connector.
var ErrNotInitialNetns = errors.New("the proc connector works only in the initial network namespace; run cairn on the host's network namespace to capture proc")

// Start subscribes to the proc connector, seeds the process table from
// /proc and returns once events are being received.
func (s *ProcSource) Start(ctx context.Context, cfg SourceConfig, emit Emit) error {
	if s.done != nil {
		return errors.New("proc source already started")
	}
	s.log = cfg.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("proc source needs root (the netlink proc connector requires CAP_NET_ADMIN); run the daemon as root")
	}
	if err := checkInitialNetns(); err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_CONNECTOR)
	if err != nil {
		if errors.Is(err, unix.EPROTONOSUPPORT) {
			return fmt.Errorf("open netlink connector socket: %w: %w", err, ErrNotInitialNetns)
		}
		return fmt.Errorf("open netlink connector socket: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	// A fork storm overflows the default 200 KiB quickly; root may force more.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	// The reader wakes at least this often to see its context end.
	tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("set netlink receive timeout: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc}); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return fmt.Errorf("bind proc connector: %w (needs root in the initial user and network namespaces)", err)
		}
		return fmt.Errorf("bind proc connector: %w", err)
	}
	var port uint32
	if sa, err := unix.Getsockname(fd); err == nil {
		if nl, isNL := sa.(*unix.SockaddrNetlink); isNL {
			port = nl.Pid
		}
	}
	if err := unix.Sendto(fd, procListenMessage(procCnMcastListen, port), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		if errors.Is(err, unix.ECONNREFUSED) {
			// Outside the initial network namespace the socket opens and
			// binds, but no kernel connector answers.
			return fmt.Errorf("subscribe to proc connector: %w: %w", err, ErrNotInitialNetns)
		}
		return fmt.Errorf("subscribe to proc connector: %w", err)
	}
	s.fd = fd
	if err := s.awaitAck(); err != nil {
		s.fd = -1
		return err
	}

	s.table = newProcTable()
	s.seed()
	s.table.markSelf(s.selfPID)
	s.emit = emit
	s.users = make(map[int64]string)

	rctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	s.done = make(chan struct{})
	ok = true
	go s.run(rctx)
	return nil
}

// Stop stops the reader once it has handed every event already queued on
// the socket to emit.
func (s *ProcSource) Stop() error {
	if s.done == nil {
		return nil
	}
	s.stopped.Do(s.cancel)
	<-s.done
	return nil
}

// checkInitialNetns compares this process's network namespace with pid
// 1's, when pid 1's is readable (it is not in every sandbox; then the
// socket's error tells).
func checkInitialNetns() error {
	self, err1 := os.Readlink("/proc/self/ns/net")
	pid1, err2 := os.Readlink("/proc/1/ns/net")
	if err1 != nil || err2 != nil || self == pid1 {
		return nil
	}
	return fmt.Errorf("this process is in %s, pid 1 in %s: %w", self, pid1, ErrNotInitialNetns)
}

// awaitAck waits up to a second for the connector's answer to the listen
// request, which carries its error (EPERM without CAP_NET_ADMIN). Events
// read meanwhile are kept for the reader.
func (s *ProcSource) awaitAck() error {
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		n, _, err := unix.Recvfrom(s.fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			if errors.Is(err, unix.ENOBUFS) {
				s.kernelDrops.Add(1)
				continue
			}
			return fmt.Errorf("read proc connector: %w", err)
		}
		evs, err := parseProcEvents(buf[:n], nil)
		if err != nil {
			return fmt.Errorf("proc connector: %w", err)
		}
		for _, ev := range evs {
			if ev.What == procEventNone {
				if ev.AckErr != 0 {
					return fmt.Errorf("proc connector refused to listen: %w", unix.Errno(ev.AckErr))
				}
				return nil
			}
			s.pending = append(s.pending, ev)
		}
	}
	// Some kernels may not answer; the subscription stands all the same.
	return nil
}

// run reads the socket until ctx ends, then drains what is queued.
func (s *ProcSource) run(ctx context.Context) {
	defer close(s.done)
	defer func() {
		_ = unix.Sendto(s.fd, procListenMessage(procCnMcastIgnore, 0), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		unix.Close(s.fd)
	}()
	for _, ev := range s.pending {
		s.handle(ev, wallOffset())
	}
	s.pending = nil
	buf := make([]byte, 64<<10)
	var evs []procEvent
	for {
		flags := 0
		draining := ctx.Err() != nil
		if draining {
			flags = unix.MSG_DONTWAIT
		}
		n, _, err := unix.Recvfrom(s.fd, buf, flags)
		if err != nil {
			switch {
			case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
				if draining {
					return
				}
				continue
			case errors.Is(err, unix.ENOBUFS):
				s.kernelDrops.Add(1)
				continue
			}
			s.errs.Add(1)
			s.log.Error("proc source: read proc connector", "err", err)
			return
		}
		evs, err = parseProcEvents(buf[:n], evs[:0])
		if err != nil {
			s.errs.Add(1)
			s.log.Warn("proc source: bad connector message", "err", err)
		}
		off := wallOffset()
		for _, ev := range evs {
			s.handle(ev, off)
		}
	}
}

// wallOffset is what to add to a CLOCK_MONOTONIC time to get wall time.
func wallOffset() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Now().UnixNano() - ts.Nano()
}

// unresolvedName is proc.name of a process whose program is unknown (it
// exited before /proc could be read): sysdig's "<NA>", so that filters such
// as proc.name != "sshd" still match it.
const unresolvedName = "<NA>"

// handle updates the table from one event and emits what it means.
func (s *ProcSource) handle(ev procEvent, wallOff int64) {
	ts := int64(ev.Timestamp)
	switch ev.What {
	case procEventFork:
		if ev.PID != ev.TGID {
			return // a new thread, not a process
		}
		e := s.table.fork(ev.ParentTGID, ev.TGID, ts)
		s.send("capture.clone", "clone", e, ts+wallOff, nil)
	case procEventExec:
		old, known := s.table.get(ev.TGID)
		e, err := readProcEntry(s.root, ev.TGID)
		// The daemon's own descendants are left out, except those in a
		// container: a process of a container cairn runs is the
		// container's, not the daemon's, though the daemon started it.
		inContainer := err == nil && e.Container != "" && e.Container != "host"
		if known && old.Self && !inContainer && !s.IncludeSelf {
			return
		}
		var data map[string]any
		if err != nil {
			// Gone already (a process that execs and exits within
			// microseconds): the connector names no program, and what the
			// fork told is the parent's. Say so rather than show the
			// parent's command as the new one.
			e = old
			e.PID = ev.TGID
			e.Name, e.Comm, e.Exe, e.Cmdline = unresolvedName, unresolvedName, "", ""
			data = map[string]any{"unresolved": "the process exited before /proc could be read"}
		}
		if known {
			e.StartNS, e.Self = old.StartNS, old.Self && !inContainer
			if e.PPID == 0 {
				e.PPID = old.PPID
			}
		}
		s.table.put(e)
		s.send("capture.exec", "execve", e, ts+wallOff, data)
	case procEventUID:
		s.table.setIDs(ev.TGID, &ev.EID, nil)
	case procEventGID:
		s.table.setIDs(ev.TGID, nil, &ev.EID)
	case procEventExit:
		if ev.PID != ev.TGID {
			return // a thread ending
		}
		e, known := s.table.get(ev.TGID)
		if !known {
			e = procEntry{PID: ev.TGID, PPID: ev.ParentTGID, Container: "host"}
		}
		data := map[string]any{"exit_code": ev.ShellStatus()}
		if e.StartNS > 0 && ts >= e.StartNS {
			data["duration"] = ts - e.StartNS
		}
		s.send("capture.exit", "procexit", e, ts+wallOff, data)
		s.table.remove(ev.TGID)
	}
}

// send emits one event about e unless e is the daemon's own.
func (s *ProcSource) send(kind, typ string, e procEntry, wall int64, data map[string]any) {
	if e.Self && !s.IncludeSelf {
		return
	}
	container := e.Container
	if container == "" {
		container = "host"
	}
	b := &journal.Body{
		Kind:    kind,
		Subject: "pid/" + strconv.FormatInt(e.PID, 10),
		// The event is an observation, not an act of a cairn client: the
		// actor is the observed process itself, reached through the
		// system (the kernel), so "who did this" reads the same as for
		// events cairn's clients cause.
		Actor: journal.Actor{
			UID:  int(e.UID),
			GID:  int(e.GID),
			PID:  int(e.PID),
			User: s.userName(e.UID),
			Comm: e.Name,
			Via:  "system",
		},
		Data: data,
		Evt:  &journal.Evt{Type: typ, Time: wall},
		Proc: &journal.Proc{
			Name:    e.Name,
			PID:     e.PID,
			PPID:    e.PPID,
			Cmdline: e.Cmdline,
			Exe:     e.Exe,
			Cwd:     e.Cwd,
		},
		User:      &journal.User{UID: e.UID, Name: s.userName(e.UID)},
		Container: &journal.Container{ID: container},
	}
	s.emit(b)
}

// userName resolves a uid once; an unknown uid has no name.
func (s *ProcSource) userName(uid int64) string {
	if n, ok := s.users[uid]; ok {
		return n
	}
	n := ""
	if u, err := user.LookupId(strconv.FormatInt(uid, 10)); err == nil {
		n = u.Username
	}
	s.users[uid] = n
	return n
}

// seed fills the table from every process /proc lists.
func (s *ProcSource) seed() {
	ents, err := os.ReadDir(s.root)
	if err != nil {
		s.log.Warn("proc source: seed process table", "err", err)
		return
	}
	for _, d := range ents {
		pid, err := strconv.ParseInt(d.Name(), 10, 64)
		if err != nil {
			continue
		}
		if e, err := readProcEntry(s.root, pid); err == nil {
			s.table.put(e)
		}
	}
}

// readProcEntry reads what the table keeps of pid from root (/proc). Only
// stat is required; the rest is unreadable for kernel threads or a process
// already gone, and left empty.
func readProcEntry(root string, pid int64) (procEntry, error) {
	dir := filepath.Join(root, strconv.FormatInt(pid, 10))
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return procEntry{}, err
	}
	st, err := parseProcStat(b)
	if err != nil {
		return procEntry{}, err
	}
	e := procEntry{
		PID:       pid,
		PPID:      st.PPID,
		Comm:      st.Comm,
		StartNS:   int64(st.StartTime) * (int64(time.Second) / userHZ),
		Container: "host",
	}
	if b, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
		if ss, err := parseProcStatus(b); err == nil {
			e.UID, e.GID = ss.EUID, ss.EGID
		}
	}
	e.Exe, _ = os.Readlink(filepath.Join(dir, "exe"))
	e.Cwd, _ = os.Readlink(filepath.Join(dir, "cwd"))
	e.Name = procName(e.Exe, e.Comm)
	if b, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
		e.Cmdline = sysdigCmdline(e.Name, parseCmdline(b))
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cgroup")); err == nil {
		e.Container = parseCgroupContainer(b)
	}
	return e, nil
}
