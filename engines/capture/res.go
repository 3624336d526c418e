package capture

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/cairnhq/cairn/internal/mountinfo"
)

// This file holds the pure parsers of the res source: the /proc/PID files
// it reads beyond those of procfs.go, /proc/self/mountinfo, and the cgroup
// v1 and v2 accounting files. Reading stays in res_linux.go, so all of
// these are tested on the fixtures under testdata/res.

// clkTck is USER_HZ, the unit of utime and stime in /proc/PID/stat. It is
// 100 on every Linux architecture cairn runs on (sysconf(_SC_CLK_TCK)).
const clkTck = 100

// pfKthread is PF_KTHREAD in the flags field of /proc/PID/stat.
const pfKthread = 0x00200000

// resStat is what the res source needs from /proc/PID/stat: the identity
// the proc source parses, plus CPU time, threads and resident pages.
type resStat struct {
	procStat
	Flags        uint64
	Utime, Stime uint64 // clock ticks (clkTck per second)
	Threads      int64
	RSSPages     int64 // the same counter as statm's resident (get_mm_rss)
}

// CPUTicks is user plus system time, in clock ticks.
func (s resStat) CPUTicks() uint64 { return s.Utime + s.Stime }

// parseResStat parses /proc/PID/stat for the res source. It leaves the
// identity fields to parseProcStat and reads the numeric fields after the
// comm: flags (9), utime (14), stime (15), num_threads (20), rss (24).
func parseResStat(b []byte) (resStat, error) {
	ps, err := parseProcStat(b)
	if err != nil {
		return resStat{}, err
	}
	s := resStat{procStat: ps}
	// f[0] is field 3; parseProcStat found the ')' already.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 22 {
		return s, fmt.Errorf("parse stat of pid %d: %d fields after comm, want at least 22", ps.PID, len(f))
	}
	for _, x := range []struct {
		dst *uint64
		i   int
	}{{&s.Flags, 6}, {&s.Utime, 11}, {&s.Stime, 12}} {
		if *x.dst, err = strconv.ParseUint(f[x.i], 10, 64); err != nil {
			return s, fmt.Errorf("parse stat field %d of pid %d: %w", x.i+3, ps.PID, err)
		}
	}
	if s.Threads, err = strconv.ParseInt(f[17], 10, 64); err != nil {
		return s, fmt.Errorf("parse stat num_threads of pid %d: %w", ps.PID, err)
	}
	if s.RSSPages, err = strconv.ParseInt(f[21], 10, 64); err != nil {
		return s, fmt.Errorf("parse stat rss of pid %d: %w", ps.PID, err)
	}
	return s, nil
}

// parseProcIO returns read_bytes and write_bytes of /proc/PID/io: the
// bytes the process made the block layer fetch and send (rchar and wchar
// also count reads served from the page cache, pipes and sockets).
func parseProcIO(b []byte) (read, write uint64, err error) {
	r, okR := flatKeyed(b, "read_bytes:")
	w, okW := flatKeyed(b, "write_bytes:")
	if !okR || !okW {
		return 0, 0, fmt.Errorf("parse io: no read_bytes or write_bytes in %q", truncate(b))
	}
	return r, w, nil
}

// flatKeyed returns the value of key in a "key value" per line file
// (memory.stat, cpu.stat, /proc/PID/io); key carries any separator, as in
// "read_bytes:". It scans without splitting the whole file, since
// memory.stat has some 50 lines and the source reads it every second.
func flatKeyed(b []byte, key string) (uint64, bool) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if len(line) > len(key) && string(line[:len(key)]) == key && (line[len(key)] == ' ' || line[len(key)] == '\t' || key[len(key)-1] == ':') {
			n, err := strconv.ParseUint(string(bytes.TrimSpace(line[len(key):])), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// parseUintFile parses a file holding one number (memory.current,
// cpuacct.usage, memory.usage_in_bytes). "max" is not a usage and fails.
func parseUintFile(b []byte) (uint64, error) {
	n, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse number %q: %w", truncate(b), err)
	}
	return n, nil
}

// parseIOStatV2 sums rbytes and wbytes over the devices of a cgroup v2
// io.stat ("8:0 rbytes=1 wbytes=2 rios=3 …" per device).
func parseIOStatV2(b []byte) (read, write uint64, err error) {
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		for _, kv := range f[min(1, len(f)):] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || (k != "rbytes" && k != "wbytes") {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("parse io.stat %s of %s: %w", k, f[0], err)
			}
			if k == "rbytes" {
				read += n
			} else {
				write += n
			}
		}
	}
	return read, write, nil
}

// parseBlkioV1 sums the Read and Write bytes over the devices of a cgroup
// v1 blkio.throttle.io_service_bytes ("8:0 Read 4096" per device and
// operation, then a "Total N" line, which is skipped).
func parseBlkioV1(b []byte) (read, write uint64, err error) {
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || (f[1] != "Read" && f[1] != "Write") {
			continue
		}
		n, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse blkio %s of %s: %w", f[1], f[0], err)
		}
		if f[1] == "Read" {
			read += n
		} else {
			write += n
		}
	}
	return read, write, nil
}

// cgroupPaths are the cgroups of one process, from /proc/PID/cgroup.
type cgroupPaths struct {
	V2 string            // the "0::" line's path; "" without one
	V1 map[string]string // controller ("memory", "cpuacct", "name=systemd") to path
}

// parseCgroupPaths parses /proc/PID/cgroup ("hierarchy:controllers:path"
// per line; a v1 hierarchy may hold several controllers, "cpu,cpuacct").
func parseCgroupPaths(b []byte) cgroupPaths {
	var p cgroupPaths
	for line := range strings.SplitSeq(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			p.V2 = parts[2]
			continue
		}
		for c := range strings.SplitSeq(parts[1], ",") {
			if c == "" {
				continue
			}
			if p.V1 == nil {
				p.V1 = map[string]string{}
			}
			p.V1[c] = parts[2]
		}
	}
	return p
}

// cgroupMount is where a cgroup hierarchy is mounted.
type cgroupMount = mountinfo.CgroupMount

// cgroupMounts are the cgroup hierarchies of /proc/self/mountinfo.
type cgroupMounts struct {
	V2 *cgroupMount
	V1 map[string]cgroupMount // by controller
}

// parseCgroupMounts finds the cgroup v1 and v2 mounts in mountinfo; the
// first mount of a hierarchy wins.
func parseCgroupMounts(b []byte) cgroupMounts {
	mounts := mountinfo.Parse(b)
	m := cgroupMounts{V1: mountinfo.CgroupV1(mounts)}
	for _, mi := range mounts {
		if mi.FSType == "cgroup2" {
			m.V2 = &cgroupMount{Dir: mi.MountPoint, Root: mi.Root}
			break
		}
	}
	return m
}

// cgroupSample is one reading of a cgroup's accounting. A Has flag is
// false when its file was missing or unreadable (the root cgroup of v2 has
// no memory.current; a controller may not be enabled), and the field is
// then left out of the event.
type cgroupSample struct {
	CPUNanos        uint64
	HasCPU          bool
	Memory          uint64 // bytes charged, page cache included
	HasMemory       bool
	InactiveFile    uint64
	HasInactive     bool
	IORead, IOWrite uint64
	HasIO           bool
}

// WorkingSet is cAdvisor's working set: usage minus inactive file pages,
// the memory the kernel would not reclaim first; 0 when inactive exceeds
// usage (the two are read at slightly different moments).
func (s cgroupSample) WorkingSet() (uint64, bool) {
	if !s.HasMemory {
		return 0, false
	}
	switch {
	case !s.HasInactive:
		return s.Memory, true
	case s.InactiveFile >= s.Memory:
		return 0, true
	}
	return s.Memory - s.InactiveFile, true
}

// readFunc reads one accounting file of a cgroup. The returned bytes are
// only valid until the next call (the reader may reuse one buffer).
type readFunc func(name string) ([]byte, error)

// sampleCgroupV2 reads a cgroup v2 directory through read: cpu.stat
// usage_usec, memory.current, memory.stat inactive_file, io.stat.
func sampleCgroupV2(read readFunc) cgroupSample {
	var s cgroupSample
	if b, err := read("cpu.stat"); err == nil {
		var usec uint64
		if usec, s.HasCPU = flatKeyed(b, "usage_usec"); s.HasCPU {
			s.CPUNanos = usec * 1000
		}
	}
	if b, err := read("memory.current"); err == nil {
		s.Memory, err = parseUintFile(b)
		s.HasMemory = err == nil
	}
	if b, err := read("memory.stat"); err == nil {
		s.InactiveFile, s.HasInactive = flatKeyed(b, "inactive_file")
	}
	if b, err := read("io.stat"); err == nil {
		s.IORead, s.IOWrite, err = parseIOStatV2(b)
		s.HasIO = err == nil
	}
	return s
}

// sampleCgroupV1 reads a cgroup through its v1 controllers: cpuacct.usage
// (ns), memory.usage_in_bytes, memory.stat total_inactive_file (the
// hierarchical counter, as usage is), blkio.throttle.io_service_bytes.
// cpu, memory and io read from each controller's own directory, which
// differ when the process sits in different cgroups per hierarchy.
func sampleCgroupV1(cpu, memory, io readFunc) cgroupSample {
	var s cgroupSample
	if cpu != nil {
		if b, err := cpu("cpuacct.usage"); err == nil {
			s.CPUNanos, err = parseUintFile(b)
			s.HasCPU = err == nil
		}
	}
	if memory != nil {
		if b, err := memory("memory.usage_in_bytes"); err == nil {
			s.Memory, err = parseUintFile(b)
			s.HasMemory = err == nil
		}
		if b, err := memory("memory.stat"); err == nil {
			s.InactiveFile, s.HasInactive = flatKeyed(b, "total_inactive_file")
		}
	}
	if io != nil {
		if b, err := io("blkio.throttle.io_service_bytes"); err == nil {
			s.IORead, s.IOWrite, err = parseBlkioV1(b)
			s.HasIO = err == nil
		}
	}
	return s
}

// data is the event data of a cgroup sample; prevNanos is the CPU usage
// of the previous pass (hasPrev false on the first).
func (s cgroupSample) data(prevNanos uint64, hasPrev bool) map[string]any {
	d := map[string]any{}
	if s.HasCPU {
		d["cpu_s"] = float64(s.CPUNanos) / 1e9
		if hasPrev && s.CPUNanos >= prevNanos {
			d["cpu_delta_s"] = float64(s.CPUNanos-prevNanos) / 1e9
		}
	}
	if s.HasMemory {
		d["memory"] = int64(s.Memory)
	}
	if ws, ok := s.WorkingSet(); ok {
		d["working_set"] = int64(ws)
	}
	if s.HasIO {
		d["io_read"] = int64(s.IORead)
		d["io_write"] = int64(s.IOWrite)
	}
	return d
}
