package main

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/internal/cairntest"
)

// daemonProc is one `cairn daemon` the benchmark runs: internal/cairntest's
// Daemon, the one the integration tests start, with NATS and HTTP on free
// ports and no life beyond the benchmark's.
type daemonProc struct{ *cairntest.Daemon }

// newDaemon prepares a daemon on data (created if missing) with a socket in
// a short directory of its own.
func (b *bench) newDaemon(data string) (*daemonProc, error) {
	sockDir, err := cairntest.ShortTempDir("cairnbench-sock-")
	if err != nil {
		return nil, err
	}
	d := &daemonProc{cairntest.New(b.cfg.bin, data, sockDir, filepath.Join(b.tmp, "daemon.log"))}
	d.DieWithParent = true
	d.Extra = []string{"--log-level", "info"} // as an operator runs it: no debug lines in the measured path
	b.mu.Lock()
	b.daemons = append(b.daemons, d)
	b.mu.Unlock()
	return d, nil
}

// profileAs adds --cpuprofile FILE.part when CAIRNBENCH_DAEMON_PROFILE=FILE
// is set: the daemon's own CPU profile of that part, for performance work.
func (d *daemonProc) profileAs(part string) {
	if p := os.Getenv("CAIRNBENCH_DAEMON_PROFILE"); p != "" {
		d.Extra = append(d.Extra, "--cpuprofile", p+"."+part)
	}
}

// start launches the daemon and returns the time from exec to its first
// successful status answer, polling the socket every millisecond.
func (d *daemonProc) start(ctx context.Context) (time.Duration, wire.StatusRow, error) {
	took, err := d.Start(ctx, 30*time.Second, time.Millisecond)
	return took, d.Status, err
}

// stop sends sig and waits for the process to exit.
func (d *daemonProc) stop(sig syscall.Signal) error { return d.Stop(sig, 20*time.Second) }

// rssKB returns VmRSS of the daemon in KiB.
func (d *daemonProc) rssKB() (int64, error) {
	n, err := cairntest.RSS(d.Cmd.Process.Pid)
	return n >> 10, err
}

// cleanup kills every daemon still running and removes their socket dirs.
func (b *bench) cleanup() {
	b.mu.Lock()
	ds := b.daemons
	b.daemons = nil
	b.mu.Unlock()
	for _, d := range ds {
		if d.Running() {
			_ = d.stop(syscall.SIGTERM)
		}
		_ = os.RemoveAll(filepath.Dir(d.Socket))
	}
}

// daemonClient starts a daemon on a fresh data directory named name under
// the run's temporary directory and returns a client of it.
func (b *bench) daemonClient(ctx context.Context, name string) (*client.Client, error) {
	d, err := b.newDaemon(filepath.Join(b.tmp, name))
	if err != nil {
		return nil, err
	}
	if _, _, err := d.start(ctx); err != nil {
		return nil, err
	}
	return d.Dial(ctx)
}
