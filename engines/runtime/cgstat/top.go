package cgstat

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"
)

// TopHeader is the header of `ps -ef`, which docker top prints by default.
var TopHeader = []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}

// Top lists pids as `docker top` prints them by default (ps -ef), read
// from /proc. A process that exits while Top reads it is left out.
func Top(pids []int) (header []string, rows [][]string, err error) {
	ps, err := readProcStat()
	if err != nil {
		return nil, nil, err
	}
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return nil, nil, fmt.Errorf("top: %w", err)
	}
	uptime, err := parseUptime(b)
	if err != nil {
		return nil, nil, fmt.Errorf("top: %w", err)
	}
	now := time.Now()
	names := map[uint32]string{}
	for _, pid := range pids {
		p, err := readTopProc(pid)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("top: %w", err)
		}
		name, ok := names[p.UID]
		if !ok {
			name = userName(p.UID)
			names[p.UID] = name
		}
		rows = append(rows, p.row(name, ps.BootTime, uptime, now))
	}
	return TopHeader, rows, nil
}

// topProc is what ps -ef shows of one process.
type topProc struct {
	pidStat
	UID     uint32
	Cmdline []byte
}

// readTopProc reads /proc/PID/stat, status and cmdline.
func readTopProc(pid int) (topProc, error) {
	dir := fmt.Sprintf("/proc/%d/", pid)
	b, err := os.ReadFile(dir + "stat")
	if err != nil {
		return topProc{}, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	st, err := parsePidStat(b)
	if err != nil {
		return topProc{}, err
	}
	p := topProc{pidStat: st}
	if b, err = os.ReadFile(dir + "status"); err != nil {
		return p, fmt.Errorf("read status of pid %d: %w", pid, err)
	}
	if p.UID, err = parseStatusEUID(b); err != nil {
		return p, fmt.Errorf("pid %d: %w", pid, err)
	}
	if p.Cmdline, err = os.ReadFile(dir + "cmdline"); err != nil {
		return p, fmt.Errorf("read cmdline of pid %d: %w", pid, err)
	}
	return p, nil
}

// userName is the name of uid in /etc/passwd (through os/user), or the
// number without one. Like procps, a name wider than the column's eight
// characters is cut to seven and a "+".
func userName(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	u, err := user.LookupId(id)
	if err != nil {
		return id
	}
	if len(u.Username) > 8 {
		return u.Username[:7] + "+"
	}
	return u.Username
}

// pidStat is what Top needs from /proc/PID/stat.
type pidStat struct {
	PID, PPID    int
	Comm         string
	TTY          uint64 // tty_nr: the controlling terminal's device number
	Utime, Stime uint64 // clock ticks
	StartTime    uint64 // clock ticks after boot
}

// parsePidStat parses /proc/PID/stat. comm is the text between the first
// '(' and the last ')', since it may hold spaces and parentheses.
func parsePidStat(b []byte) (pidStat, error) {
	var s pidStat
	open, cls := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || cls < open {
		return s, fmt.Errorf("parse /proc/PID/stat %q: no (comm)", clip(b))
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return s, fmt.Errorf("parse /proc/PID/stat pid: %w", err)
	}
	s.PID, s.Comm = pid, string(b[open+1:cls])
	// f[0] is field 3 (state).
	f := strings.Fields(string(b[cls+1:]))
	if len(f) < 20 {
		return s, fmt.Errorf("parse stat of pid %d: %d fields after comm, want at least 20", pid, len(f))
	}
	if s.PPID, err = strconv.Atoi(f[1]); err != nil {
		return s, fmt.Errorf("parse stat ppid of pid %d: %w", pid, err)
	}
	for _, x := range []struct {
		dst  *uint64
		i    int
		name string
	}{{&s.TTY, 4, "tty_nr"}, {&s.Utime, 11, "utime"}, {&s.Stime, 12, "stime"}, {&s.StartTime, 19, "starttime"}} {
		// tty_nr is printed signed; it is never negative in practice.
		n, err := strconv.ParseInt(f[x.i], 10, 64)
		if err != nil {
			return s, fmt.Errorf("parse stat %s of pid %d: %w", x.name, pid, err)
		}
		*x.dst = uint64(n)
	}
	return s, nil
}

// parseStatusEUID returns the effective uid of /proc/PID/status
// ("Uid:\treal\teffective\tsaved\tfs"), the user ps -ef shows.
func parseStatusEUID(b []byte) (uint32, error) {
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "Uid:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			break
		}
		n, err := strconv.ParseUint(f[1], 10, 32)
		if err != nil {
			return 0, fmt.Errorf("parse status uid %q: %w", rest, err)
		}
		return uint32(n), nil
	}
	return 0, fmt.Errorf("parse status: no Uid line")
}

// parseUptime returns the first number of /proc/uptime, in seconds.
func parseUptime(b []byte) (float64, error) {
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("parse /proc/uptime: empty")
	}
	n, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, fmt.Errorf("parse /proc/uptime: %w", err)
	}
	return n, nil
}

// row formats p as ps -ef does, for a host booted at bootTime (epoch
// seconds), up for uptime seconds, at now.
func (p topProc) row(name string, bootTime int64, uptime float64, now time.Time) []string {
	ticks := p.Utime + p.Stime
	started := time.Unix(bootTime+int64(p.StartTime/userHZ), 0)
	return []string{
		name,
		strconv.Itoa(p.PID),
		strconv.Itoa(p.PPID),
		strconv.FormatUint(cpuC(ticks, uptime-float64(p.StartTime)/userHZ), 10),
		stime(started, now),
		ttyName(p.TTY),
		cpuTime(ticks / userHZ),
		cmd(p.Cmdline, p.Comm),
	}
}

// cpuC is ps's C column: integer percent of CPU over the process's life,
// at most 99 (procps pr_c).
func cpuC(ticks uint64, elapsed float64) uint64 {
	secs := uint64(elapsed)
	if secs == 0 {
		return 0
	}
	return min(ticks*100/userHZ/secs, 99)
}

// stime is ps's STIME: "15:04" for a process started today, "Jan02" for
// one started earlier this year, "2006" before (procps pr_stime), in the
// local time zone as ps prints it.
func stime(started, now time.Time) string {
	started, now = started.Local(), now.Local()
	switch {
	case started.Year() != now.Year():
		return started.Format("2006")
	case started.YearDay() != now.YearDay():
		return started.Format("Jan02")
	}
	return started.Format("15:04")
}

// cpuTime is ps's TIME: "[DD-]HH:MM:SS" of CPU seconds.
func cpuTime(secs uint64) string {
	d, h, m, s := secs/86400, secs/3600%24, secs/60%60, secs%60
	if d > 0 {
		return fmt.Sprintf("%d-%02d:%02d:%02d", d, h, m, s)
	}
	return fmt.Sprintf("%02d:%02d:%02d", h, m, s)
}

// ttyName is ps's TTY of a tty_nr device number: "?" for none, "pts/N"
// for pseudo-terminals, "ttyN"/"ttySN" for consoles and serial lines, and
// "MAJ,MIN" for anything else.
func ttyName(dev uint64) string {
	if dev == 0 {
		return "?"
	}
	major := (dev >> 8) & 0xfff
	minor := (dev & 0xff) | ((dev >> 12) & 0xfff00)
	switch {
	case major >= 136 && major <= 143:
		return fmt.Sprintf("pts/%d", (major-136)*256+minor)
	case major == 4 && minor < 64:
		return fmt.Sprintf("tty%d", minor)
	case major == 4:
		return fmt.Sprintf("ttyS%d", minor-64)
	}
	return fmt.Sprintf("%d,%d", major, minor)
}

// cmd is ps's CMD: the command line with its NULs as spaces, or [comm]
// for a process without one (a kernel thread, a zombie).
func cmd(cmdline []byte, comm string) string {
	s := strings.TrimRight(string(cmdline), "\x00")
	if s == "" {
		return "[" + comm + "]"
	}
	return strings.ReplaceAll(s, "\x00", " ")
}
