package runtime

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// runc drives the runc binary with its state under root.
type runc struct {
	bin  string // path of runc, "" when it is not installed
	root string // runc --root
}

// errNoRunc is the answer of every container verb where runc is missing.
var errNoRunc = errors.New("runc is not installed: install Debian's runc package (apt-get install runc), or give the daemon --runc PATH")

func findRunc(path string) runc {
	if path == "" {
		path = "runc"
	}
	bin, err := exec.LookPath(path)
	if err != nil {
		return runc{}
	}
	return runc{bin: bin}
}

func (r runc) available() error {
	if r.bin == "" {
		return errNoRunc
	}
	return nil
}

func (r runc) args(a ...string) []string {
	return append([]string{"--root", r.root}, a...)
}

// run runs one runc command and returns its output; the error carries
// runc's own message.
func (r runc) run(ctx context.Context, a ...string) ([]byte, error) {
	if err := r.available(); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, r.bin, r.args(a...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return out, fmt.Errorf("runc %s: %s", a[0], msg)
	}
	return out, nil
}

// runcState is what runc state answers.
type runcState struct {
	ID     string `json:"id"`
	Pid    int    `json:"pid"`
	Status string `json:"status"` // creating, created, running, paused, stopped
}

func (r runc) state(ctx context.Context, id string) (runcState, error) {
	out, err := r.run(ctx, "state", id)
	if err != nil {
		return runcState{}, err
	}
	var s runcState
	if err := json.Unmarshal(out, &s); err != nil {
		return runcState{}, fmt.Errorf("runc state %s: %w", id, err)
	}
	return s, nil
}

func (r runc) kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	a := []string{"kill"}
	if all {
		a = append(a, "--all")
	}
	_, err := r.run(ctx, append(a, id, strconv.Itoa(int(sig)))...)
	return err
}

// delete removes runc's state of a stopped container (and its cgroup);
// force kills it first. A container runc does not know is not an error.
func (r runc) delete(ctx context.Context, id string, force bool) error {
	if _, err := os.Stat(filepath.Join(r.root, id)); os.IsNotExist(err) {
		return nil // runc keeps no state of it: spare an exec
	}
	a := []string{"delete"}
	if force {
		a = append(a, "--force")
	}
	_, err := r.run(ctx, append(a, id)...)
	if err != nil && strings.Contains(err.Error(), "does not exist") {
		return nil
	}
	return err
}

// shimScript is the shim: a shell that runs the container in the
// foreground with `runc run`, which waits for it and answers its
// exit status (128+N for a signal), and writes that status to a file. The
// shell is in a session of its own, so it outlives the daemon (kill -9,
// restart): a restarted daemon re-adopts the container through it, and a
// container that ended meanwhile left its status in the file. runc's own
// log goes to runc.log, where the daemon reads why a start failed.
//
// The status is written in place, with one write and no rename (no exec
// of mv): the daemon reads the file only once the shell has ended.
const shimScript = `"$0" "$@"; echo $? > exit`

// startShim starts runc run for the container in dir with stdout and
// stderr going to its output files, and returns the shim's pid. keep
// keeps runc's state (and the cgroup) after the process ends, for the
// daemon to read the OOM kill count before it deletes them; without it
// runc deletes them itself, sparing an exec of runc.
func (r runc) startShim(dir, id string, keep bool) (*os.Process, error) {
	if err := r.available(); err != nil {
		return nil, err
	}
	_ = os.Remove(filepath.Join(dir, "exit"))
	_ = os.Remove(filepath.Join(dir, "runc.log"))
	stdout, err := os.OpenFile(filepath.Join(dir, "stdout.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	defer stdout.Close()
	stderr, err := os.OpenFile(filepath.Join(dir, "stderr.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	defer stderr.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	_ = os.Remove(filepath.Join(dir, "pid"))
	run := []string{"--log", filepath.Join(dir, "runc.log"), "--log-format", "json", "run", "--bundle", dir, "--pid-file", filepath.Join(dir, "pid")}
	if keep {
		run = append(run, "--keep")
	}
	args := append([]string{"-c", shimScript, r.bin}, r.args(append(run, id)...)...)
	cmd := exec.Command("/bin/sh", args...)
	cmd.Dir = dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the container's shim: %w", err)
	}
	return cmd.Process, nil
}

// readExit reads the status the shim wrote and when it wrote it; ok is
// false while the shim has not written it.
func readExit(dir string) (code int, at time.Time, ok bool) {
	path := filepath.Join(dir, "exit")
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, time.Time{}, false
	}
	code, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, time.Time{}, false
	}
	if fi, err := os.Stat(path); err == nil {
		at = fi.ModTime()
	}
	return code, at, true
}

// startError reads runc's log for why the container's process did not
// start, and the exit status Docker gives that: 127 when the command does
// not exist, 126 when it cannot be run. ok is false when runc logged no
// start failure.
func startError(dir string) (msg string, code int, ok bool) {
	f, err := os.Open(filepath.Join(dir, "runc.log"))
	if err != nil {
		return "", 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Level == "error" {
			msg = l.Msg
		}
	}
	if msg == "" {
		return "", 0, false
	}
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return msg, 127, true
	case strings.Contains(msg, "permission denied"):
		return msg, 126, true
	}
	return msg, 125, true
}

// procStart returns a process's start time in clock ticks after boot
// (field 22 of /proc/PID/stat), which tells it from a later process that
// got the same pid; ok is false when there is no such process.
func procStart(pid int) (uint64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 {
		return 0, false
	}
	if fields[0] == "Z" {
		return 0, false // a zombie has ended
	}
	n, err := strconv.ParseUint(fields[19], 10, 64)
	return n, err == nil
}

// waitPid waits, without being its parent, for the process pid that
// started at start to end, or for ctx to end (pidfd_open and poll).
func waitPid(ctx context.Context, pid int, start uint64) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil
		}
		// No pidfd (out of descriptors, an old kernel): look at the
		// process's start time until it is gone, rather than take the
		// failure for its end.
		return pollPid(ctx, pid, start)
	}
	defer unix.Close(fd)
	// The pidfd now holds the process: check it is still the one meant.
	if s, ok := procStart(pid); !ok || s != start {
		return nil
	}
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 500)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll pidfd %d: %w", pid, err)
		}
		if n > 0 {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// pollPid waits for the process pid that started at start to end by
// reading its /proc entry every 100 ms, or for ctx to end.
func pollPid(ctx context.Context, pid int, start uint64) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if s, ok := procStart(pid); !ok || s != start {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// waitStarted waits until runc has written the container's pid file (its
// process exists and runc knows it) or the shim has ended, and returns the
// pid (0 when the shim ended first). It polls: runc signals nothing else.
func waitStarted(ctx context.Context, dir string, shimPid int, shimStart uint64) int {
	path := filepath.Join(dir, "pid")
	for delay := 100 * time.Microsecond; ; delay = min(2*delay, 2*time.Millisecond) {
		if b, err := os.ReadFile(path); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				return pid
			}
		}
		if s, ok := procStart(shimPid); !ok || s != shimStart {
			return 0
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(delay):
		}
	}
}
