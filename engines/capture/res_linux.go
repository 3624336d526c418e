package capture

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/journal"
)

func init() {
	RegisterSource("res", func() Source { return newResSource("/proc") })
}

// The kinds and evt.types of the res source. sysdig has no name for a
// periodic sample, so the evt.type says what the event is.
const (
	ResSampleKind       = "capture.sample"
	ResCgroupSampleKind = "capture.cgroup_sample"
)

// resSource samples every process and every cgroup that holds one, once an
// interval, as cAdvisor's housekeeping does.
type resSource struct {
	procRoot string
	mounts   cgroupMounts
	pageSize int64
	log      *slog.Logger
	emit     Emit
	interval time.Duration

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errs   atomic.Int64

	// The rest belongs to the sampling goroutine (and to Start before it).
	pass    uint64
	procs   map[procKey]*resProc
	cgroups map[string]*resCgroup
	buf     []byte // file reads; valid until the next read
	dents   []byte // getdents
}

// procKey tells a process from a later one with the same pid.
type procKey struct {
	pid   int64
	start uint64
}

// resProc is what the source keeps of a process between passes: what it
// read once (cmdline, container, cgroups) and the CPU time of the last pass.
type resProc struct {
	comm      string // re-read the rest when it changes (an execve)
	name      string
	cmdline   string
	container string
	cgroup    string // key into cgroups; "" when cgroups are not sampled
	ticks     uint64
	seen      uint64 // the last pass that saw it
	at        int64  // when it was last sampled (ns)
}

// resCgroup is one cgroup being sampled: its directories (v2: one; v1: the
// cpuacct, memory and blkio hierarchies), container and last CPU usage.
type resCgroup struct {
	path      string
	dirs      [3]string // cpu, memory, io; all the same on v2
	v2        bool
	container string
	procs     int64
	nanos     uint64
	hasPrev   bool
	seen      uint64
}

var (
	_ Source    = (*resSource)(nil)
	_ Describer = (*resSource)(nil)
)

func newResSource(procRoot string) *resSource {
	return &resSource{procRoot: procRoot, pageSize: int64(os.Getpagesize())}
}

func (s *resSource) Description() string {
	return "resource samples every interval: CPU, RSS, I/O, fds, threads per process; CPU, memory, working set, I/O per cgroup (v1 and v2)"
}

// Start takes the first sample and returns once it has been emitted, then
// samples every cfg.Interval (default 1s) until ctx ends or Stop.
func (s *resSource) Start(ctx context.Context, cfg SourceConfig, emit Emit) error {
	if s.cancel != nil {
		return errors.New("res source already started")
	}
	s.log = cfg.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.interval = cfg.Interval
	if s.interval <= 0 {
		s.interval = time.Second
	}
	if _, err := os.Stat(filepath.Join(s.procRoot, "self", "stat")); err != nil {
		return err // no procfs: nothing to sample
	}
	s.emit = emit
	s.procs = map[procKey]*resProc{}
	s.cgroups = map[string]*resCgroup{}
	s.buf = make([]byte, 16<<10)
	s.dents = make([]byte, 8<<10)
	if b, err := os.ReadFile(filepath.Join(s.procRoot, "self", "mountinfo")); err == nil {
		s.mounts = parseCgroupMounts(b)
	}
	if s.cgroupVersion() == 0 {
		// Processes are still sampled; only the per-cgroup events go.
		s.log.Info("capture res: no cgroup hierarchy mounted, sampling processes only")
	}
	s.sample()

	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(s.interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return nil
}

// Stop ends sampling; it returns once a pass under way has been emitted.
func (s *resSource) Stop() error {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	return nil
}

// cgroupVersion is 1 when v1 holds the memory or cpuacct controller (also
// on hybrid hosts, whose v2 mount holds no controllers), 2 on a unified
// host, 0 without cgroups.
func (s *resSource) cgroupVersion() int {
	if _, ok := s.mounts.V1["memory"]; ok {
		return 1
	}
	if _, ok := s.mounts.V1["cpuacct"]; ok {
		return 1
	}
	if s.mounts.V2 != nil {
		return 2
	}
	return 0
}

// sample is one pass: every process, then every cgroup that holds one.
func (s *resSource) sample() {
	s.pass++
	now := time.Now().UnixNano()
	d, err := os.Open(s.procRoot)
	if err != nil {
		s.errs.Add(1)
		s.log.Warn("capture res: read proc", "err", err)
		return
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		s.errs.Add(1)
	}
	for _, n := range names {
		if n[0] < '0' || n[0] > '9' {
			continue
		}
		if b := s.sampleProc(filepath.Join(s.procRoot, n), now); b != nil {
			s.emit(b)
		}
	}
	for k, p := range s.procs {
		if p.seen != s.pass {
			delete(s.procs, k)
		}
	}
	for path, c := range s.cgroups {
		if c.seen != s.pass {
			delete(s.cgroups, path)
			continue
		}
		if b := s.sampleCgroup(c, now); b != nil {
			s.emit(b)
		}
	}
}

// sampleProc samples one process; nil when it is gone or unreadable.
func (s *resSource) sampleProc(dir string, now int64) *journal.Body {
	b, err := s.read(filepath.Join(dir, "stat"))
	if err != nil {
		return nil // exited since the directory was listed
	}
	st, err := parseResStat(b)
	if err != nil {
		s.errs.Add(1)
		return nil
	}
	key := procKey{st.PID, st.StartTime}
	p, known := s.procs[key]
	if !known || p.comm != st.Comm {
		p = s.loadProc(dir, st, p)
		s.procs[key] = p
	}
	ticks := st.CPUTicks()
	data := map[string]any{
		"cpu_s":   float64(ticks) / clkTck,
		"rss":     st.RSSPages * s.pageSize,
		"threads": st.Threads,
	}
	switch {
	case known && ticks >= p.ticks:
		data["cpu_delta_s"] = float64(ticks-p.ticks) / clkTck
		if p.at > 0 && now > p.at {
			data["elapsed_s"] = float64(now-p.at) / 1e9 // the wall time cpu_delta_s was spent in
		}
	case !known && s.pass > 1:
		// Born since the last pass: all its CPU time is new.
		data["cpu_delta_s"] = float64(ticks) / clkTck
	}
	p.ticks, p.seen, p.at = ticks, s.pass, now
	// io and fd need ptrace access to the process: without it (not root,
	// another user's process) the fields are left out, not the sample.
	if b, err := s.read(filepath.Join(dir, "io")); err == nil {
		if r, w, err := parseProcIO(b); err == nil {
			data["io_read"], data["io_write"] = int64(r), int64(w)
		}
	}
	if n, err := countDir(filepath.Join(dir, "fd"), s.dents); err == nil {
		data["fds"] = n
	}
	if c := s.cgroups[p.cgroup]; c != nil {
		if c.seen != s.pass {
			c.seen, c.procs = s.pass, 0
		}
		c.procs++
	}
	return &journal.Body{
		Kind:    ResSampleKind,
		Subject: "pid/" + strconv.FormatInt(st.PID, 10),
		Actor:   journal.SystemActor(),
		// A sample is no system event: no evt.type, so that sysdig's
		// syscall tables (topscalls: evt.type!=switch) do not count it.
		Evt:       &journal.Evt{Time: now},
		Proc:      &journal.Proc{Name: p.name, PID: st.PID, PPID: st.PPID, Cmdline: p.cmdline},
		Container: &journal.Container{ID: p.container},
		Data:      data,
	}
}

// loadProc reads what changes only with an execve: name, cmdline and
// cgroups. old (maybe nil) is reused so the CPU baseline survives an exec.
func (s *resSource) loadProc(dir string, st resStat, old *resProc) *resProc {
	p := old
	if p == nil {
		p = &resProc{}
	}
	p.comm = st.Comm
	exe, _ := os.Readlink(filepath.Join(dir, "exe"))
	p.name = procName(exe, st.Comm)
	var args []string
	if b, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
		args = parseCmdline(b)
	}
	p.cmdline = sysdigCmdline(p.name, args)
	p.container, p.cgroup = "host", ""
	b, err := os.ReadFile(filepath.Join(dir, "cgroup"))
	if err != nil {
		return p
	}
	p.container = parseCgroupContainer(b)
	p.cgroup = s.trackCgroup(parseCgroupPaths(b), p.container)
	return p
}

// trackCgroup finds the directories of a process's cgroup and returns its
// key, "" when it has none to sample. On v1 a cgroup is named by its
// memory path (cpuacct's when there is no memory hierarchy).
func (s *resSource) trackCgroup(cp cgroupPaths, container string) string {
	c := &resCgroup{container: container}
	switch s.cgroupVersion() {
	case 2:
		if cp.V2 == "" {
			return ""
		}
		d := s.mounts.V2.Path(cp.V2)
		c.path, c.v2, c.dirs = cp.V2, true, [3]string{d, d, d}
	case 1:
		for i, ctrl := range []string{"cpuacct", "memory", "blkio"} {
			if m, ok := s.mounts.V1[ctrl]; ok {
				if path, ok := cp.V1[ctrl]; ok {
					c.dirs[i] = m.Path(path)
				}
			}
		}
		c.path = cp.V1["memory"]
		if c.path == "" {
			c.path = cp.V1["cpuacct"]
		}
	}
	if c.path == "" {
		return ""
	}
	if _, ok := s.cgroups[c.path]; !ok {
		s.cgroups[c.path] = c
	}
	return c.path
}

// sampleCgroup reads one cgroup's accounting; nil when nothing was readable.
func (s *resSource) sampleCgroup(c *resCgroup, now int64) *journal.Body {
	var cs cgroupSample
	if c.v2 {
		cs = sampleCgroupV2(s.reader(c.dirs[0]))
	} else {
		cs = sampleCgroupV1(s.reader(c.dirs[0]), s.reader(c.dirs[1]), s.reader(c.dirs[2]))
	}
	if !cs.HasCPU && !cs.HasMemory && !cs.HasIO {
		return nil
	}
	data := cs.data(c.nanos, c.hasPrev)
	if cs.HasCPU {
		c.nanos, c.hasPrev = cs.CPUNanos, true
	}
	version := int64(1)
	if c.v2 {
		version = 2
	}
	data["path"], data["version"], data["procs"] = c.path, version, c.procs
	return &journal.Body{
		Kind:      ResCgroupSampleKind,
		Subject:   "cgroup" + c.path,
		Actor:     journal.SystemActor(),
		Evt:       &journal.Evt{Time: now},
		Container: &journal.Container{ID: c.container},
		Data:      data,
	}
}

// reader reads the files of one cgroup directory; nil for no directory.
func (s *resSource) reader(dir string) readFunc {
	if dir == "" {
		return nil
	}
	return func(name string) ([]byte, error) { return s.read(dir + "/" + name) }
}

// read reads a small kernel file into the source's buffer, growing it if
// needed, without the allocations of os.ReadFile. The result is valid
// until the next read.
func (s *resSource) read(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	n := 0
	for {
		if n == len(s.buf) {
			s.buf = append(s.buf, make([]byte, len(s.buf))...)
		}
		m, err := unix.Read(fd, s.buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			return s.buf[:n], nil
		}
		n += m
	}
}

// countDir counts the entries of a directory other than . and .. with
// getdents, without making a string of each name (/proc/PID/fd of a busy
// server holds thousands).
func countDir(dir string, buf []byte) (int64, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	var total int64
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return total, nil
		}
		total += countDirents(buf[:n])
	}
}

// countDirents counts the linux_dirent64 records of a getdents buffer
// (ino u64, off s64, reclen u16, type u8, name), leaving out . and ..
func countDirents(b []byte) int64 {
	var n int64
	for off := 0; off+19 < len(b); {
		reclen := int(binary.NativeEndian.Uint16(b[off+16:]))
		if reclen == 0 {
			break
		}
		name := b[off+19 : min(off+reclen, len(b))]
		dot := len(name) >= 3 && name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))
		if !dot {
			n++
		}
		off += reclen
	}
	return n
}
