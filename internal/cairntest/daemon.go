// Package cairntest starts and drives the real cairn binary for the
// integration tests and the benchmarks: one harness, so what a test proves
// about a daemon and what a benchmark measures are the same process started
// the same way.
//
// The core returns errors (the benchmark's way); integration/ wraps it in
// helpers that fail the test.
package cairntest

import (
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

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/client/wire"
)

// Daemon is one `cairn daemon` process, restartable with the same data
// directory and socket.
type Daemon struct {
	Bin     string   // the cairn binary
	Data    string   // --data
	Socket  string   // --socket
	NATS    string   // --nats (default 127.0.0.1:0, a free port)
	HTTP    string   // --http (default 127.0.0.1:0)
	DNS     string   // --dns (default 127.0.0.1:0)
	Forward string   // --forward (default 127.0.0.1:0: never the fixed 24224, which parallel daemons share)
	Extra   []string // more daemon flags
	Env     []string // the process environment; nil inherits
	NoFlags bool     // run `cairn daemon` with only the Extra flags
	LogPath string   // the daemon's stdout and stderr, appended at each start
	// DieWithParent kills the daemon when the process that started it dies
	// (the benchmark: it must never outlive the run).
	DieWithParent bool

	Cmd    *exec.Cmd
	Done   chan struct{}    // closed when the process has exited
	State  *os.ProcessState // how it exited, once Done is closed
	Starts int

	Status wire.StatusRow // the status row of the last start
}

// ShortTempDir makes a fresh directory with a short path: a unix socket
// address holds at most 107 bytes, which a test's temporary directory can
// exceed.
func ShortTempDir(prefix string) (string, error) {
	return os.MkdirTemp("", prefix)
}

// New prepares a daemon on data with a socket in socketDir.
func New(bin, data, socketDir, logPath string) *Daemon {
	return &Daemon{Bin: bin, Data: data, Socket: filepath.Join(socketDir, "cairn.sock"), NATS: "127.0.0.1:0", HTTP: "127.0.0.1:0", DNS: "127.0.0.1:0", Forward: "127.0.0.1:0", LogPath: logPath}
}

// Args are the daemon's command-line arguments.
func (d *Daemon) Args() []string {
	if d.NoFlags {
		return append([]string{"daemon"}, d.Extra...)
	}
	args := []string{"daemon", "--data", d.Data, "--socket", d.Socket, "--nats", d.NATS, "--log-level", "debug"}
	if d.HTTP != "" {
		args = append(args, "--http", d.HTTP)
	}
	if d.DNS != "" {
		args = append(args, "--dns", d.DNS)
	}
	if d.Forward != "" {
		args = append(args, "--forward", d.Forward)
	}
	return append(args, d.Extra...)
}

// Launch starts the process and returns at once.
func (d *Daemon) Launch() error {
	if d.Running() {
		return errors.New("daemon already running")
	}
	d.Starts++
	logf, err := os.OpenFile(d.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== start %d: cairn %s\n", d.Starts, strings.Join(d.Args(), " "))
	cmd := exec.Command(d.Bin, d.Args()...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = d.Env
	if d.DieWithParent {
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	d.Cmd, d.Done, d.State = cmd, make(chan struct{}), nil
	go func() {
		cmd.Wait()
		d.State = cmd.ProcessState
		close(d.Done)
	}()
	return nil
}

// Start launches the daemon and waits, polling every poll, until it
// answers status (d.Status), at most timeout. It returns the time from exec
// to that answer.
func (d *Daemon) Start(ctx context.Context, timeout, poll time.Duration) (time.Duration, error) {
	t0 := time.Now()
	if err := d.Launch(); err != nil {
		return 0, err
	}
	deadline := t0.Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-d.Done:
			return 0, fmt.Errorf("daemon exited before it was ready (%v); log:\n%s", d.State, d.Log())
		default:
		}
		st, err := d.TryStatus(ctx)
		if err == nil {
			if st.PID != d.Cmd.Process.Pid {
				return 0, fmt.Errorf("status answered by pid %d, but the daemon started is pid %d: is another daemon on %s?", st.PID, d.Cmd.Process.Pid, d.Socket)
			}
			d.Status = st
			return time.Since(t0), nil
		}
		lastErr = err
		time.Sleep(poll)
	}
	return 0, fmt.Errorf("daemon did not answer status within %v: %v", timeout, lastErr)
}

// TryStatus dials the socket and runs status once.
func (d *Daemon) TryStatus(ctx context.Context) (wire.StatusRow, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, d.Socket)
	if err != nil {
		return wire.StatusRow{}, err
	}
	defer c.Close()
	res, err := c.Do(ctx, "status")
	if err != nil {
		return wire.StatusRow{}, err
	}
	if len(res.Rows) != 1 {
		return wire.StatusRow{}, fmt.Errorf("status answered %d rows", len(res.Rows))
	}
	var st wire.StatusRow
	if err := json.Unmarshal(res.Rows[0], &st); err != nil {
		return wire.StatusRow{}, fmt.Errorf("status row %s: %w", res.Rows[0], err)
	}
	return st, nil
}

// Running reports whether the process is alive.
func (d *Daemon) Running() bool {
	if d.Cmd == nil {
		return false
	}
	select {
	case <-d.Done:
		return false
	default:
		return true
	}
}

// Signal sends sig to the process; one that has exited is not an error.
func (d *Daemon) Signal(sig syscall.Signal) error {
	if err := d.Cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %v to daemon: %w", sig, err)
	}
	return nil
}

// WaitExit waits at most timeout for the process to exit.
func (d *Daemon) WaitExit(timeout time.Duration) error {
	select {
	case <-d.Done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("daemon pid %d did not exit within %v", d.Cmd.Process.Pid, timeout)
	}
}

// Stop sends sig and waits for the exit; after SIGTERM the exit code must
// be 0. A daemon that outlives timeout is killed.
func (d *Daemon) Stop(sig syscall.Signal, timeout time.Duration) error {
	if !d.Running() {
		return nil
	}
	if err := d.Signal(sig); err != nil {
		return err
	}
	if err := d.WaitExit(timeout); err != nil {
		d.Signal(syscall.SIGKILL)
		<-d.Done
		return fmt.Errorf("%w after %v", err, sig)
	}
	if sig == syscall.SIGTERM && !d.State.Success() {
		return fmt.Errorf("daemon exited with %v after SIGTERM, want exit code 0; see %s", d.State, d.LogPath)
	}
	return nil
}

// Log returns what the daemon has written so far.
func (d *Daemon) Log() string {
	b, err := os.ReadFile(d.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

// Dial connects a client to the daemon.
func (d *Daemon) Dial(ctx context.Context) (*client.Client, error) {
	return client.Dial(ctx, d.Socket)
}

// RSS returns the resident set size (VmRSS) of process pid in bytes.
func RSS(pid int) (int64, error) { return procStatus(pid, "VmRSS") }

// PeakRSS returns the peak resident set size (VmHWM) of process pid in
// bytes: what it reached at its largest, even between two looks.
func PeakRSS(pid int) (int64, error) { return procStatus(pid, "VmHWM") }

// procStatus reads a "Field:  N kB" line of /proc/PID/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("%s line %q", field, line)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s line %q: %w", field, line, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}
