package cgstat

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/cairnhq/cairn/internal/mountinfo"
)

// This file holds the pure parsers of the cgroup and /proc files Stats and
// Top read; the reading itself stays in cgroup.go and top.go, so these are
// tested on fixtures.

// userHZ is USER_HZ, the unit of the tick counters in /proc/stat and
// /proc/PID/stat: 100 on every Linux architecture cairn runs on.
const userHZ = 100

// keyed returns the value of key in a "key value" per line file
// (memory.stat, cpu.stat, memory.events, memory.oom_control).
func keyed(b []byte, key string) (uint64, bool) {
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		k, v, ok := bytes.Cut(bytes.TrimSpace(line), []byte(" "))
		if !ok || string(k) != key {
			continue
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// parseUint parses a file holding one number (cpuacct.usage,
// memory.usage_in_bytes, pids.current).
func parseUint(b []byte) (uint64, error) {
	n, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse number %q: %w", clip(b), err)
	}
	return n, nil
}

// parseLimit parses a limit file of cgroup v2 (memory.max) or of either
// version (pids.max): a number, or "max" for none, returned as 0.
func parseLimit(b []byte) (uint64, error) {
	if string(bytes.TrimSpace(b)) == "max" {
		return 0, nil
	}
	return parseUint(b)
}

// parseBlkioV1 sums the Read and Write bytes over the devices of a cgroup
// v1 blkio.throttle.io_service_bytes_recursive or blkio.io_service_bytes
// ("8:0 Read 4096" per device and operation, then "Total N"). The
// operation is matched without case, as the docker CLI sums it.
func parseBlkioV1(b []byte) (read, write uint64, err error) {
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		op := strings.ToLower(f[1])
		if op != "read" && op != "write" {
			continue
		}
		n, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse blkio %s of %s: %w", f[1], f[0], err)
		}
		if op == "read" {
			read += n
		} else {
			write += n
		}
	}
	return read, write, nil
}

// hasDevices reports whether a v1 blkio file has any per-device line;
// an unused counter file holds only "Total 0".
func hasDevices(b []byte) bool {
	for line := range strings.SplitSeq(string(b), "\n") {
		if len(strings.Fields(line)) == 3 {
			return true
		}
	}
	return false
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

// procStat is what cgstat needs from /proc/stat.
type procStat struct {
	SystemNanos uint64 // the "cpu" line's first seven fields, as docker's SystemUsage
	OnlineCPUs  int    // the "cpuN" lines, as docker counts them
	BootTime    int64  // btime, seconds since the epoch
}

// parseProcStat parses /proc/stat. SystemNanos is docker's SystemUsage:
// user, nice, system, idle, iowait, irq and softirq of all CPUs, in ns.
func parseProcStat(b []byte) (procStat, error) {
	var s procStat
	var sawCPU bool
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch {
		case f[0] == "cpu":
			if len(f) < 8 {
				return s, fmt.Errorf("parse /proc/stat: cpu line has %d fields, want at least 8", len(f))
			}
			var ticks uint64
			for _, x := range f[1:8] {
				n, err := strconv.ParseUint(x, 10, 64)
				if err != nil {
					return s, fmt.Errorf("parse /proc/stat cpu line: %w", err)
				}
				ticks += n
			}
			s.SystemNanos = ticks * (1e9 / userHZ)
			sawCPU = true
		case strings.HasPrefix(f[0], "cpu"):
			s.OnlineCPUs++
		case f[0] == "btime" && len(f) == 2:
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return s, fmt.Errorf("parse /proc/stat btime: %w", err)
			}
			s.BootTime = n
		}
	}
	if !sawCPU {
		return s, fmt.Errorf("parse /proc/stat: no cpu line")
	}
	return s, nil
}

// parseMemTotal returns MemTotal of /proc/meminfo in bytes: the limit
// docker shows for a container without one.
func parseMemTotal(b []byte) (uint64, error) {
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "MemTotal:")
		if !ok {
			continue
		}
		num, unit, _ := strings.Cut(strings.TrimSpace(rest), " ")
		n, err := strconv.ParseUint(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse MemTotal %q: %w", rest, err)
		}
		if unit == "kB" {
			n *= 1024
		}
		return n, nil
	}
	return 0, fmt.Errorf("parse /proc/meminfo: no MemTotal")
}

// parseNetDev sums received and transmitted bytes over the interfaces of
// /proc/PID/net/dev, leaving out loopback as docker does (its stats list
// the container's interfaces, never lo). Two header lines, then
// "  eth0: rxbytes rxpackets … (8 receive fields) txbytes …" per interface.
func parseNetDev(b []byte) (rx, tx uint64, err error) {
	for line := range strings.SplitSeq(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		f := strings.Fields(rest)
		if name == "lo" || len(f) < 9 {
			continue
		}
		r, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse net/dev rx bytes of %s: %w", name, err)
		}
		t, err := strconv.ParseUint(f[8], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse net/dev tx bytes of %s: %w", name, err)
		}
		rx += r
		tx += t
	}
	return rx, tx, nil
}

// parsePids parses cgroup.procs, one pid a line.
func parsePids(b []byte) ([]int, error) {
	var pids []int
	for f := range strings.FieldsSeq(string(b)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("parse cgroup.procs: %w", err)
		}
		pids = append(pids, n)
	}
	return pids, nil
}

// cgroupMount is where a v1 hierarchy is mounted.
type cgroupMount = mountinfo.CgroupMount

// parseV1Mounts maps each cgroup v1 controller to its mount in mountinfo
// (mountinfo.CgroupV1).
func parseV1Mounts(b []byte) map[string]cgroupMount {
	return mountinfo.CgroupV1(mountinfo.Parse(b))
}

// clip shortens file contents quoted in an error.
func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
