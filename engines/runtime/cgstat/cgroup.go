// Package cgstat reads what docker stats, docker top and docker inspect's
// State.OOMKilled show for a container, from its cgroup (v1 or v2) and
// from /proc.
package cgstat

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// cgroupRoot is where the cgroup hierarchies are mounted; on v2 it holds
// cgroup.controllers. v1 controllers are found through mountinfo instead.
const cgroupRoot = "/sys/fs/cgroup"

// v1Controllers are the v1 controllers Stats, OOMKills and Pids read.
var v1Controllers = []string{"cpuacct", "cpu", "memory", "blkio", "pids"}

// Cgroup is one container's cgroup: a single directory on v2, one
// directory per controller on v1.
type Cgroup struct {
	path string
	v2   string            // the v2 directory; "" on v1
	v1   map[string]string // controller to directory, for those that have it
}

// Open finds the cgroup at path, relative to the hierarchy root
// ("/cairn/<id>"), on cgroup v2 when /sys/fs/cgroup/cgroup.controllers
// exists and through each v1 controller's mount point otherwise. It fails
// when the cgroup exists under no controller.
func Open(path string) (*Cgroup, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("open cgroup %q: path must be absolute from the hierarchy root", path)
	}
	path = filepath.Clean(path)
	c := &Cgroup{path: path}
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		dir := filepath.Join(cgroupRoot, path)
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("open cgroup %s: %w", path, err)
		}
		c.v2 = dir
		return c, nil
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("open cgroup %s: %w", path, err)
	}
	mounts := parseV1Mounts(mi)
	c.v1 = map[string]string{}
	for _, ctl := range v1Controllers {
		m, ok := mounts[ctl]
		if !ok {
			continue
		}
		dir := m.Path(path)
		if dir == "" {
			continue
		}
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			c.v1[ctl] = dir
		}
	}
	if len(c.v1) == 0 {
		return nil, fmt.Errorf("open cgroup %s: no cgroup v1 controller has it (cgroup v1, %d controllers mounted)", path, len(mounts))
	}
	return c, nil
}

// Path is the cgroup's path relative to the hierarchy root.
func (c *Cgroup) Path() string { return c.path }

// Stats is one reading of a container's resource use, in the units of
// docker's stats API. A field whose controller is missing stays 0.
type Stats struct {
	Read        time.Time `json:"read"`
	CPUUsage    uint64    `json:"cpu_usage"`    // ns of CPU the cgroup used
	SystemUsage uint64    `json:"system_usage"` // ns of CPU the host used, all CPUs (docker's SystemUsage)
	OnlineCPUs  int       `json:"online_cpus"`
	MemoryUsage uint64    `json:"memory_usage"` // bytes, inactive file cache left out as docker CLI does
	MemoryLimit uint64    `json:"memory_limit"` // bytes; the host's memory when the cgroup has no limit
	BlockRead   uint64    `json:"block_read"`
	BlockWrite  uint64    `json:"block_write"`
	PidsCurrent uint64    `json:"pids_current"`
	PidsLimit   uint64    `json:"pids_limit"` // 0 when unlimited
	NetRx       uint64    `json:"net_rx"`
	NetTx       uint64    `json:"net_tx"`
}

// Stats reads the cgroup's accounting, the host's CPU time, and the
// network counters of pid's network namespace (pid is the container's
// init; 0 leaves the network counters out).
func (c *Cgroup) Stats(pid int) (Stats, error) {
	s := Stats{Read: time.Now()}
	ps, err := readProcStat()
	if err != nil {
		return s, err
	}
	s.SystemUsage, s.OnlineCPUs = ps.SystemNanos, ps.OnlineCPUs
	if c.v2 != "" {
		err = c.statsV2(&s)
	} else {
		err = c.statsV1(&s)
	}
	if err != nil {
		return s, fmt.Errorf("stats of cgroup %s: %w", c.path, err)
	}
	// Without a limit (v2 "max"; v1 a number near 2^63) docker shows the
	// host's memory.
	host, err := hostMemory()
	if err != nil {
		return s, fmt.Errorf("stats of cgroup %s: %w", c.path, err)
	}
	if s.MemoryLimit == 0 || s.MemoryLimit > host {
		s.MemoryLimit = host
	}
	if pid > 0 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
		if err != nil {
			return s, fmt.Errorf("stats of cgroup %s: network of pid %d: %w", c.path, pid, err)
		}
		if s.NetRx, s.NetTx, err = parseNetDev(b); err != nil {
			return s, fmt.Errorf("stats of cgroup %s: %w", c.path, err)
		}
	}
	return s, nil
}

// readProcStat reads the host's CPU time and boot time.
func readProcStat() (procStat, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return procStat{}, fmt.Errorf("read host cpu time: %w", err)
	}
	return parseProcStat(b)
}

// statsV1 fills s from the v1 controllers. cpuacct and memory must be
// there; blkio and pids are read when the cgroup has them.
func (c *Cgroup) statsV1(s *Stats) error {
	b, err := c.read("cpuacct", "cpuacct.usage")
	if err != nil {
		return err
	}
	if s.CPUUsage, err = parseUint(b); err != nil {
		return fmt.Errorf("cpuacct.usage: %w", err)
	}

	if b, err = c.read("memory", "memory.usage_in_bytes"); err != nil {
		return err
	}
	if s.MemoryUsage, err = parseUint(b); err != nil {
		return fmt.Errorf("memory.usage_in_bytes: %w", err)
	}
	if b, err = c.read("memory", "memory.stat"); err != nil {
		return err
	}
	// The docker CLI subtracts total_inactive_file on v1 (inactive_file on
	// v2): page cache the kernel reclaims first is not the container's use.
	if inactive, ok := keyed(b, "total_inactive_file"); ok && inactive < s.MemoryUsage {
		s.MemoryUsage -= inactive
	}
	if b, err = c.read("memory", "memory.limit_in_bytes"); err != nil {
		return err
	}
	if s.MemoryLimit, err = parseUint(b); err != nil {
		return fmt.Errorf("memory.limit_in_bytes: %w", err)
	}

	if _, ok := c.v1["blkio"]; ok {
		b, err := c.read("blkio", "blkio.throttle.io_service_bytes_recursive")
		if err != nil || !hasDevices(b) {
			// A kernel without the throttle counters, or one that leaves
			// them empty, may still have the scheduler's.
			if b2, err2 := c.read("blkio", "blkio.io_service_bytes"); err2 == nil {
				b, err = b2, nil
			}
		}
		if err != nil {
			return err
		}
		if s.BlockRead, s.BlockWrite, err = parseBlkioV1(b); err != nil {
			return err
		}
	}
	if _, ok := c.v1["pids"]; ok {
		if err := c.readPids(s); err != nil {
			return err
		}
	}
	return nil
}

// statsV2 fills s from the unified hierarchy.
func (c *Cgroup) statsV2(s *Stats) error {
	b, err := c.read("", "cpu.stat")
	if err != nil {
		return err
	}
	usec, ok := keyed(b, "usage_usec")
	if !ok {
		return fmt.Errorf("cpu.stat: no usage_usec")
	}
	s.CPUUsage = usec * 1000

	if b, err = c.read("", "memory.current"); err != nil {
		return err
	}
	if s.MemoryUsage, err = parseUint(b); err != nil {
		return fmt.Errorf("memory.current: %w", err)
	}
	if b, err = c.read("", "memory.stat"); err != nil {
		return err
	}
	if inactive, ok := keyed(b, "inactive_file"); ok && inactive < s.MemoryUsage {
		s.MemoryUsage -= inactive
	}
	if b, err = c.read("", "memory.max"); err != nil {
		return err
	}
	if s.MemoryLimit, err = parseLimit(b); err != nil {
		return fmt.Errorf("memory.max: %w", err)
	}
	if b, err = c.read("", "io.stat"); err == nil {
		if s.BlockRead, s.BlockWrite, err = parseIOStatV2(b); err != nil {
			return err
		}
	}
	return c.readPids(s)
}

// readPids fills pids.current and pids.max.
func (c *Cgroup) readPids(s *Stats) error {
	b, err := c.read("pids", "pids.current")
	if err != nil {
		return err
	}
	if s.PidsCurrent, err = parseUint(b); err != nil {
		return fmt.Errorf("pids.current: %w", err)
	}
	if b, err = c.read("pids", "pids.max"); err != nil {
		return err
	}
	if s.PidsLimit, err = parseLimit(b); err != nil {
		return fmt.Errorf("pids.max: %w", err)
	}
	return nil
}

// hostMemory is MemTotal of /proc/meminfo.
func hostMemory() (uint64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("read host memory: %w", err)
	}
	return parseMemTotal(b)
}

// OOMKills reports how many processes of the cgroup the kernel's OOM
// killer has killed: oom_kill of memory.oom_control on v1 (Linux 4.13 and
// later), of memory.events on v2. docker inspect's OOMKilled is N > 0.
func (c *Cgroup) OOMKills() (int, error) {
	file := "memory.events"
	if c.v2 == "" {
		file = "memory.oom_control"
	}
	b, err := c.read("memory", file)
	if err != nil {
		return 0, err
	}
	n, ok := keyed(b, "oom_kill")
	if !ok {
		return 0, fmt.Errorf("oom kills of cgroup %s: no oom_kill in %s (kernel older than 4.13?)", c.path, file)
	}
	return int(n), nil
}

// Pids lists every process in the cgroup (cgroup.procs; on v1 of the pids
// controller, else of the first controller that has the cgroup).
func (c *Cgroup) Pids() ([]int, error) {
	ctl := ""
	if c.v2 == "" {
		for _, try := range []string{"pids", "memory", "cpuacct", "cpu", "blkio"} {
			if _, ok := c.v1[try]; ok {
				ctl = try
				break
			}
		}
	}
	b, err := c.read(ctl, "cgroup.procs")
	if err != nil {
		return nil, err
	}
	return parsePids(b)
}

// read reads file of the cgroup's directory for controller (ignored on v2).
func (c *Cgroup) read(controller, file string) ([]byte, error) {
	dir := c.v2
	if dir == "" {
		var ok bool
		if dir, ok = c.v1[controller]; !ok {
			return nil, fmt.Errorf("read %s of cgroup %s: no %s controller: %w", file, c.path, controller, fs.ErrNotExist)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return nil, fmt.Errorf("read %s of cgroup %s: %w", file, c.path, err)
	}
	return b, nil
}
