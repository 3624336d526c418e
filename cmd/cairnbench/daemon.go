package main

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

// daemonProc is one `cairn daemon` process started by the benchmark, as
// integration/harness_test.go starts it: its own data directory and
// socket, NATS on a free port.
type daemonProc struct {
	data, socket, logPath string
	cmd                   *exec.Cmd
	done                  chan struct{}
}

// newDaemon prepares a daemon on data (created if missing) with a socket in
// a short directory of its own (a socket path holds at most 107 bytes).
func (b *bench) newDaemon(data string) (*daemonProc, error) {
	sockDir, err := os.MkdirTemp("", "cairnbench-sock-")
	if err != nil {
		return nil, err
	}
	d := &daemonProc{data: data, socket: filepath.Join(sockDir, "cairn.sock"), logPath: filepath.Join(b.tmp, "daemon.log")}
	b.mu.Lock()
	b.daemons = append(b.daemons, d)
	b.mu.Unlock()
	return d, nil
}

// launch execs the daemon and returns at once.
func (d *daemonProc) launch(bin string) error {
	logf, err := os.OpenFile(d.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := []string{"daemon", "--data", d.data, "--socket", d.socket, "--nats", "127.0.0.1:0"}
	fmt.Fprintf(logf, "=== %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Never outlive the benchmark, whatever ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	d.cmd = cmd
	d.done = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(d.done)
	}()
	return nil
}

// start launches the daemon and returns the time from exec to its first
// successful status answer, polling the socket every millisecond.
func (d *daemonProc) start(ctx context.Context, bin string) (time.Duration, wire.StatusRow, error) {
	t0 := time.Now()
	if err := d.launch(bin); err != nil {
		return 0, wire.StatusRow{}, err
	}
	deadline := t0.Add(30 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-d.done:
			return 0, wire.StatusRow{}, fmt.Errorf("daemon exited before answering status (%v); see %s", d.cmd.ProcessState, d.logPath)
		default:
		}
		st, err := d.status(ctx)
		if err == nil {
			if st.PID != d.cmd.Process.Pid {
				return 0, st, fmt.Errorf("status answered by pid %d, not the daemon started (%d): is another daemon on %s?", st.PID, d.cmd.Process.Pid, d.socket)
			}
			return time.Since(t0), st, nil
		}
		lastErr = err
		time.Sleep(time.Millisecond)
	}
	return 0, wire.StatusRow{}, fmt.Errorf("daemon did not answer status within 30s: %v", lastErr)
}

// status dials the socket and runs status once.
func (d *daemonProc) status(ctx context.Context) (wire.StatusRow, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, d.socket)
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
	return st, json.Unmarshal(res.Rows[0], &st)
}

func (d *daemonProc) running() bool {
	if d.cmd == nil {
		return false
	}
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// stop sends sig and waits for the process to exit.
func (d *daemonProc) stop(sig syscall.Signal) error {
	if !d.running() {
		return nil
	}
	if err := d.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
		return fmt.Errorf("daemon did not exit within 20s of %v", sig)
	}
	if sig == syscall.SIGTERM && !d.cmd.ProcessState.Success() {
		return fmt.Errorf("daemon exited with %v after SIGTERM; see %s", d.cmd.ProcessState, d.logPath)
	}
	return nil
}

// rssKB returns VmRSS of the daemon in KiB.
func (d *daemonProc) rssKB() (int64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(d.cmd.Process.Pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, errors.New("no VmRSS in /proc/PID/status")
}

// cleanup kills every daemon still running and removes their socket dirs.
func (b *bench) cleanup() {
	b.mu.Lock()
	ds := b.daemons
	b.daemons = nil
	b.mu.Unlock()
	for _, d := range ds {
		if d.running() {
			_ = d.stop(syscall.SIGTERM)
		}
		_ = os.RemoveAll(filepath.Dir(d.socket))
	}
}

// daemonClient starts a daemon on a fresh data directory named name under
// the run's temporary directory and returns a client of it.
func (b *bench) daemonClient(ctx context.Context, name string) (*client.Client, error) {
	d, err := b.newDaemon(filepath.Join(b.tmp, name))
	if err != nil {
		return nil, err
	}
	if _, _, err := d.start(ctx, b.cfg.bin); err != nil {
		return nil, err
	}
	return client.Dial(ctx, d.socket)
}
