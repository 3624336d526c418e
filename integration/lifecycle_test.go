package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/client/wire"
)

// waitExit waits for a daemon that is expected to give up by itself.
func (d *daemonProc) waitExit(within time.Duration) *os.ProcessState {
	d.t.Helper()
	select {
	case <-d.Done:
		return d.State
	case <-time.After(within):
		d.t.Fatalf("daemon still running after %v; it should have refused to start", within)
		return nil
	}
}

// TestSecondDaemon starts a second daemon on the same socket and then on the
// same data directory: each must refuse clearly while the first serves on.
func TestSecondDaemon(t *testing.T) {
	t.Parallel()
	first := startDaemon(t)

	sameSocket := newDaemon(t, withSocket(first.Socket))
	sameSocket.launch()
	if st := sameSocket.waitExit(30 * time.Second); st.ExitCode() == 0 {
		t.Errorf("a second daemon on the socket of a live one exited 0")
	}
	if log := sameSocket.Log(); !strings.Contains(log, first.Socket) || !strings.Contains(log, "already") {
		t.Errorf("the refusal does not say the socket %s is already served:\n%s", first.Socket, log)
	}
	if st := first.requireServing(); st.PID != first.Pid() {
		t.Fatalf("the socket is now answered by pid %d, not the first daemon %d", st.PID, first.Pid())
	}

	sameData := newDaemon(t, withData(first.Data))
	sameData.launch()
	if st := sameData.waitExit(30 * time.Second); st.ExitCode() == 0 {
		t.Errorf("a second daemon on the data directory of a live one exited 0")
	}
	if log := sameData.Log(); !strings.Contains(log, "data directory") {
		t.Errorf("the refusal does not mention the data directory:\n%s", log)
	}
	if _, err := os.Stat(sameData.Socket); err == nil {
		t.Errorf("the refused daemon left a socket at %s", sameData.Socket)
	}
	first.requireServing()
	c := dial(t, first)
	emit(t, c, "emit app.still alive")
	first.Stop()
}

// TestSIGTERM stops the daemon with SIGTERM while a tail is open: the tail
// ends, the daemon exits 0, and the journal records start, stop, start.
func TestSIGTERM(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	c := dial(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The tail starts at an event already stored: once that event has come
	// through, the tail has caught up and is live.
	row := emit(t, c, "emit app.ping before-stop")
	st, err := c.Stream(ctx, fmt.Sprintf("tail kind=app.* from=%d", row.Seq))
	if err != nil {
		t.Fatal(err)
	}
	answers := pump(st)
	select {
	case it := <-answers:
		var ev wireEvent
		if it.err != nil || json.Unmarshal(it.a.Event, &ev) != nil || ev.Seq != row.Seq {
			t.Fatalf("tail answered %+v (%v), want the event at seq %d", it.a, it.err, row.Seq)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("tail did not deliver the emitted event within 30s")
	}

	d.Stop()
	err = waitEnd(t, answers, 10*time.Second)
	var ue *client.UnreachableError
	if !errors.Is(err, io.EOF) && !client.IsCanceled(err) && !errors.As(err, &ue) {
		t.Errorf("the tail open during SIGTERM ended with %v", err)
	}
	t.Logf("tail open during SIGTERM ended with: %v", err)

	d.Restart()
	c2 := dial(t, d)
	var kinds []string
	for _, ev := range events(t, c2, "events kind=daemon.*") {
		kinds = append(kinds, ev.Kind)
	}
	if want := []string{"daemon.start", "daemon.stop", "daemon.start"}; !slices.Equal(kinds, want) {
		t.Errorf("daemon events %v, want %v", kinds, want)
	}
	all := events(t, c2, "events")
	requireGapless(t, all, 1)
	d.Stop()
}

// TestSocketMode checks the socket's mode and owner.
func TestSocketMode(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	fi, err := os.Lstat(d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("%s is %v, not a socket", d.Socket, fi.Mode())
	}
	if perm := fi.Mode().Perm(); perm != 0o660 {
		t.Errorf("socket mode %#o, want 0660", perm)
	}
	sys := fi.Sys().(*syscall.Stat_t)
	if int(sys.Uid) != os.Geteuid() || int(sys.Gid) != os.Getegid() {
		t.Errorf("socket owner %d:%d, want %d:%d", sys.Uid, sys.Gid, os.Geteuid(), os.Getegid())
	}
	if os.Geteuid() == 0 && (sys.Uid != 0 || sys.Gid != 0) {
		t.Errorf("socket of a root daemon owned by %d:%d, want root:root", sys.Uid, sys.Gid)
	}
	d.Stop()
	if _, err := os.Lstat(d.Socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still there after a clean stop: %v", err)
	}
}

// TestDefaultPaths runs `cairn daemon` without --data and --socket, as root:
// it must serve on /run/cairn/cairn.sock, where the CLI finds it unasked.
func TestDefaultPaths(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("the default paths /run/cairn/cairn.sock and /var/lib/cairn are root's; run the tests as root to cover them")
	}
	const socket, data = "/run/cairn/cairn.sock", "/var/lib/cairn"
	if c, err := net.DialTimeout("unix", socket, time.Second); err == nil {
		c.Close()
		t.Skipf("a daemon already serves %s; not starting another on the default paths", socket)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAIRN_DATA=") && !strings.HasPrefix(kv, client.SocketEnv+"=") {
			env = append(env, kv)
		}
	}
	d := newDaemon(t, withSocket(socket), withData(data), withFlags("--nats", "127.0.0.1:0"))
	d.NoFlags = true
	d.Env = env
	d.start()
	if d.Status.Socket != socket || d.Status.Data != data {
		t.Errorf("status socket %q data %q, want %q and %q", d.Status.Socket, d.Status.Data, socket, data)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := cliCommand(ctx, nil, "-o", "json", "status")
	cmd.Env = env
	r := runCLI(t, cmd)
	if r.Code != 0 {
		t.Fatalf("cairn status without --socket: exit %d\n%s", r.Code, r.Stderr)
	}
	rows := parseNDJSON[wire.StatusRow](t, r.Stdout)
	if len(rows) != 1 || rows[0].PID != d.Pid() {
		t.Errorf("cairn status without --socket printed %s, want the row of pid %d", r.Stdout, d.Pid())
	}
	d.Stop()
}

// TestDaemonHugePagesTunable: `cairn daemon` hands cairnd glibc's
// huge-page tunable for pebble's memtables (README, "Daemon flags"), and
// a caller's own glibc.malloc.hugetlb stands. The daemon's environment is
// read from /proc, where glibc's start-up leaves only the first of several
// tunables in view, so a list of them is TestHandOffEnv's to check.
func TestDaemonHugePagesTunable(t *testing.T) {
	if _, err := os.Stat(filepath.Join(filepath.Dir(cairnBin), "cairnd")); err != nil {
		t.Skipf("%s is not the thin client with cairnd beside it: %v", cairnBin, err)
	}
	for _, c := range []struct{ set, want string }{
		{"", "glibc.malloc.hugetlb=1"},
		{"glibc.malloc.hugetlb=0", "glibc.malloc.hugetlb=0"},
	} {
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "GLIBC_TUNABLES=") {
				env = append(env, kv)
			}
		}
		if c.set != "" {
			env = append(env, "GLIBC_TUNABLES="+c.set)
		}
		d := newDaemon(t)
		d.Env = env
		d.start()
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", d.Pid()))
		if err != nil {
			t.Fatal(err)
		}
		got := "(unset)"
		for _, kv := range strings.Split(string(b), "\x00") {
			if v, ok := strings.CutPrefix(kv, "GLIBC_TUNABLES="); ok {
				got = v
			}
		}
		if got != c.want {
			t.Errorf("GLIBC_TUNABLES=%q: the daemon has %q, want %q", c.set, got, c.want)
		}
		d.Stop()
	}
}
