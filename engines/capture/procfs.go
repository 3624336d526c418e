package capture

import (
	"bytes"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// This file holds the pure parsers of /proc/PID files the proc source
// reads; reading stays in proc_linux.go so that these are tested on the
// fixtures under testdata/proc.

// procStat is what the proc source needs from /proc/PID/stat.
type procStat struct {
	PID       int64
	Comm      string // cut by the kernel at 15 bytes
	State     byte
	PPID      int64
	StartTime uint64 // clock ticks since boot
}

// parseProcStat parses /proc/PID/stat. The comm field is in parentheses
// and may itself hold spaces and parentheses, so it runs to the last ')'.
func parseProcStat(b []byte) (procStat, error) {
	var s procStat
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open {
		return s, fmt.Errorf("parse stat: no (comm) in %q", truncate(b))
	}
	pid, err := strconv.ParseInt(string(bytes.TrimSpace(b[:open])), 10, 64)
	if err != nil {
		return s, fmt.Errorf("parse stat pid: %w", err)
	}
	s.PID = pid
	s.Comm = string(b[open+1 : closing])
	f := strings.Fields(string(b[closing+1:]))
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 {
		return s, fmt.Errorf("parse stat of pid %d: %d fields after comm, want at least 20", pid, len(f))
	}
	s.State = f[0][0]
	if s.PPID, err = strconv.ParseInt(f[1], 10, 64); err != nil {
		return s, fmt.Errorf("parse stat ppid of pid %d: %w", pid, err)
	}
	if s.StartTime, err = strconv.ParseUint(f[19], 10, 64); err != nil {
		return s, fmt.Errorf("parse stat starttime of pid %d: %w", pid, err)
	}
	return s, nil
}

// procStatus is what the proc source needs from /proc/PID/status.
type procStatus struct {
	Name      string
	PPID      int64
	UID, EUID int64 // real and effective
	GID, EGID int64
	HaveIDs   bool
}

// parseProcStatus parses /proc/PID/status for its name, parent and ids.
func parseProcStatus(b []byte) (procStatus, error) {
	var s procStatus
	var haveUID, haveGID bool
	for line := range strings.SplitSeq(string(b), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "Name":
			s.Name = val
		case "PPid":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return s, fmt.Errorf("parse status PPid %q: %w", val, err)
			}
			s.PPID = n
		case "Uid", "Gid":
			ids, err := parseIDs(val)
			if err != nil {
				return s, fmt.Errorf("parse status %s: %w", key, err)
			}
			if key == "Uid" {
				s.UID, s.EUID, haveUID = ids[0], ids[1], true
			} else {
				s.GID, s.EGID, haveGID = ids[0], ids[1], true
			}
		}
	}
	if !haveUID || !haveGID {
		return s, fmt.Errorf("parse status: no Uid or Gid line")
	}
	s.HaveIDs = true
	return s, nil
}

// parseIDs parses the "real effective saved fs" ids of a status line.
func parseIDs(val string) ([2]int64, error) {
	var ids [2]int64
	f := strings.Fields(val)
	if len(f) < 2 {
		return ids, fmt.Errorf("%q: want real and effective ids", val)
	}
	for i := range ids {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return ids, err
		}
		ids[i] = n
	}
	return ids, nil
}

// parseCmdline splits /proc/PID/cmdline into its NUL-separated arguments.
// A kernel thread has an empty cmdline and no arguments. A process that
// rewrote its argv may leave a space-separated line without NULs; that is
// kept as one argument.
func parseCmdline(b []byte) []string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil
	}
	parts := bytes.Split(b, []byte{0})
	args := make([]string, len(parts))
	for i, p := range parts {
		args[i] = string(p)
	}
	return args
}

// sysdigCmdline is proc.cmdline as sysdig writes it: proc.name followed
// by the arguments after argv[0].
func sysdigCmdline(name string, args []string) string {
	if len(args) <= 1 {
		return name
	}
	return name + " " + strings.Join(args[1:], " ")
}

// procName is proc.name: the base name of the executable, since comm is cut
// at 15 bytes; comm when the executable is unknown (kernel threads, a
// process gone before it was read).
func procName(exe, comm string) string {
	if exe == "" {
		return comm
	}
	// The kernel appends " (deleted)" to a replaced executable's link.
	exe = strings.TrimSuffix(exe, " (deleted)")
	return path.Base(exe)
}

// containerIDPattern finds a 64-hex container id in a cgroup path as
// docker (cgroupfs and systemd drivers), containerd/CRI, CRI-O and
// kubepods lay them out:
//
//	/docker/<id>
//	/system.slice/docker-<id>.scope
//	/kubepods/burstable/pod<uid>/<id>
//	/kubepods.slice/.../cri-containerd-<id>.scope
//	/.../crio-<id>.scope
var containerIDPattern = regexp.MustCompile(`(?:^|/)(?:docker-|cri-containerd-|crio-|containerd-|libpod-)?([0-9a-f]{64})(?:\.scope)?(?:/|$)`)

// parseCgroupContainer returns the container id of a process from its
// /proc/PID/cgroup (v1 or v2 lines, "hierarchy:controllers:path"), cut to
// the 12 characters sysdig and docker show, or "host" when no cgroup path
// names a container.
func parseCgroupContainer(b []byte) string {
	for line := range strings.SplitSeq(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if m := containerIDPattern.FindStringSubmatch(parts[2]); m != nil {
			return m[1][:12]
		}
	}
	return "host"
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
