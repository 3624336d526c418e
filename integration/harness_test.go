package integration

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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/internal/cairntest"
)

// cairnBin is the binary under test: $CAIRN_BIN, or one built by TestMain.
var cairnBin string

// binIsRace reports whether the binary under test was built with -race (it
// is when the tests are), which multiplies its memory use.
var binIsRace bool

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	if bin := os.Getenv("CAIRN_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			fmt.Fprintf(os.Stderr, "integration: CAIRN_BIN %q: %v\n", bin, err)
			return 1
		}
		cairnBin = abs
		// `go version -m` lists the build settings, -race=true among them.
		if out, err := exec.Command("go", "version", "-m", abs).Output(); err == nil {
			binIsRace = strings.Contains(string(out), "-race=true")
		}
		return runChecked(m)
	}
	dir, err := os.MkdirTemp("", "cairn-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// As make build does: cairnd with every engine, and the thin client
	// cairn beside it, which hands it the daemon and local statements.
	cairnBin = filepath.Join(dir, "cairn")
	for _, b := range []struct{ out, tags string }{{"cairnd", ""}, {"cairn", "thin"}} {
		args := []string{"build", "-o", filepath.Join(dir, b.out)}
		if b.tags != "" {
			args = append(args, "-tags", b.tags)
		}
		if raceEnabled {
			// A race-built daemon turns its data races into test failures
			// (exit code 66 on Stop, "DATA RACE" in its log).
			args = append(args, "-race")
			binIsRace = true
		}
		args = append(args, "github.com/cairnhq/cairn/cmd/cairn")
		cmd := exec.Command("go", args...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "integration: go %s: %v\n", strings.Join(args, " "), err)
			return 1
		}
	}
	return runChecked(m)
}

// runChecked runs the tests and then requires that none left a goroutine
// behind in this process (streams, clients and NATS connections included).
func runChecked(m *testing.M) int {
	code := m.Run()
	if code != 0 {
		return code
	}
	if err := goleak.Find(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: goroutines leaked by the tests: %v\n", err)
		return 1
	}
	return 0
}

// daemonProc is one `cairn daemon` process under test (internal/cairntest's
// Daemon), with helpers that fail the test instead of returning errors.
type daemonProc struct {
	*cairntest.Daemon
	t *testing.T
}

// daemonOpt adjusts a daemon before its first start.
type daemonOpt func(*daemonProc)

// withNATS sets --nats (default 127.0.0.1:0, a free port).
func withNATS(addr string) daemonOpt { return func(d *daemonProc) { d.NATS = addr } }

// withData uses dir as the data directory.
func withData(dir string) daemonOpt { return func(d *daemonProc) { d.Data = dir } }

// withSocket uses path as the socket.
func withSocket(path string) daemonOpt { return func(d *daemonProc) { d.Socket = path } }

// withFlags appends daemon flags (a flag given twice: the last wins).
func withFlags(flags ...string) daemonOpt {
	return func(d *daemonProc) { d.Extra = append(d.Extra, flags...) }
}

// shortTempDir returns a fresh directory with a short path: a unix socket
// address holds at most 107 bytes, which t.TempDir can exceed.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := cairntest.ShortTempDir("cairn-it-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// newDaemon prepares a daemon without starting it.
func newDaemon(t *testing.T, opts ...daemonOpt) *daemonProc {
	t.Helper()
	d := &daemonProc{Daemon: &cairntest.Daemon{Bin: cairnBin, NATS: "127.0.0.1:0", HTTP: "127.0.0.1:0", DNS: "127.0.0.1:0", Forward: "127.0.0.1:0"}, t: t}
	for _, o := range opts {
		o(d)
	}
	if d.Data == "" {
		d.Data = filepath.Join(t.TempDir(), "data")
	}
	if d.Socket == "" {
		d.Socket = filepath.Join(shortTempDir(t), "cairn.sock")
	}
	d.LogPath = filepath.Join(t.TempDir(), "daemon.log")
	t.Cleanup(func() {
		if d.Running() {
			d.Signal(syscall.SIGKILL)
			if err := d.WaitExit(15 * time.Second); err != nil {
				t.Errorf("after SIGKILL: %v", err)
			}
		}
		log := d.Log()
		if strings.Contains(log, "WARNING: DATA RACE") {
			t.Errorf("the daemon reported a data race")
		}
		if t.Failed() {
			t.Logf("daemon log (%s):\n%s", d.LogPath, log)
		}
	})
	return d
}

// startDaemon starts a daemon with a fresh data directory and socket and
// waits until it answers status.
func startDaemon(t *testing.T, opts ...daemonOpt) *daemonProc {
	t.Helper()
	d := newDaemon(t, opts...)
	d.start()
	return d
}

// launch starts the process without waiting for it to be ready.
func (d *daemonProc) launch() {
	d.t.Helper()
	if err := d.Launch(); err != nil {
		d.t.Fatal(err)
	}
}

// start launches the daemon and waits until it answers status.
func (d *daemonProc) start() {
	d.t.Helper()
	if _, err := d.Start(context.Background(), 20*time.Second, 20*time.Millisecond); err != nil {
		d.t.Fatal(err)
	}
}

// tryStatus dials the socket and runs status once.
func (d *daemonProc) tryStatus() (wire.StatusRow, error) {
	return d.TryStatus(context.Background())
}

// requireServing fails the test unless the daemon answers status.
func (d *daemonProc) requireServing() wire.StatusRow {
	d.t.Helper()
	st, err := d.tryStatus()
	if err != nil {
		d.t.Fatalf("daemon no longer answers status: %v", err)
	}
	return st
}

func (d *daemonProc) running() bool { return d.Running() }

func (d *daemonProc) signal(sig syscall.Signal) {
	if err := d.Signal(sig); err != nil {
		d.t.Error(err)
	}
}

// Pid returns the daemon's process id.
func (d *daemonProc) Pid() int { return d.Cmd.Process.Pid }

// Kill SIGKILLs the daemon and waits for it to die.
func (d *daemonProc) Kill() {
	d.t.Helper()
	d.signal(syscall.SIGKILL)
	if err := d.WaitExit(15 * time.Second); err != nil {
		d.t.Fatalf("after SIGKILL: %v", err)
	}
}

// Stop sends SIGTERM and requires exit code 0 within 15s.
func (d *daemonProc) Stop() {
	d.t.Helper()
	if err := d.Daemon.Stop(syscall.SIGTERM, 15*time.Second); err != nil {
		d.t.Fatal(err)
	}
}

// Restart starts the daemon again with the same data directory and socket.
func (d *daemonProc) Restart() {
	d.t.Helper()
	if d.running() {
		d.t.Fatal("Restart: the daemon is still running")
	}
	d.start()
}

// wireEvent is an event as `-o json` prints it and NATS carries it.
type wireEvent struct {
	Stream  string         `json:"stream"`
	Seq     int64          `json:"seq"`
	Time    string         `json:"time"`
	Kind    string         `json:"kind"`
	Subject string         `json:"subject"`
	Node    string         `json:"node"`
	Actor   wireActor      `json:"actor"`
	Data    map[string]any `json:"data"`
	Prev    string         `json:"prev"`
	Hash    string         `json:"hash"`
}

type wireActor struct {
	UID  int    `json:"uid"`
	GID  int    `json:"gid"`
	PID  int    `json:"pid"`
	User string `json:"user"`
	Comm string `json:"comm"`
	Via  string `json:"via"`
}

// emitRow is the row `emit` answers.
type emitRow struct {
	Stream string `json:"stream"`
	Seq    int64  `json:"seq"`
	Time   string `json:"time"`
	Hash   string `json:"hash"`
}

// cliResult is the outcome of one CLI run.
type cliResult struct {
	Stdout, Stderr string
	Code           int
	Pid            int
}

// cliCommand prepares `cairn --socket S ARGS…` against d (d nil: no --socket).
func cliCommand(ctx context.Context, d *daemonProc, args ...string) *exec.Cmd {
	full := args
	if d != nil {
		full = append([]string{"--socket", d.Socket}, args...)
	}
	return exec.CommandContext(ctx, cairnBin, full...)
}

// runCLI runs a prepared CLI command and returns its output, exit code and pid.
func runCLI(t *testing.T, cmd *exec.Cmd) cliResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	pid := cmd.Process.Pid
	err := cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run %v: %v", cmd.Args, err)
	}
	if !cmd.ProcessState.Exited() {
		t.Fatalf("%v did not exit normally (%v); stderr:\n%s", cmd.Args, cmd.ProcessState, stderr.String())
	}
	return cliResult{Stdout: stdout.String(), Stderr: stderr.String(), Code: cmd.ProcessState.ExitCode(), Pid: pid}
}

// cli runs the binary as a client of d and returns stdout, stderr and the
// exit code.
func cli(t *testing.T, d *daemonProc, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := runCLI(t, cliCommand(ctx, d, args...))
	return r.Stdout, r.Stderr, r.Code
}

// cliOK runs the CLI and requires exit code 0.
func cliOK(t *testing.T, d *daemonProc, args ...string) string {
	t.Helper()
	out, errOut, code := cli(t, d, args...)
	if code != 0 {
		t.Fatalf("cairn %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// parseNDJSON decodes every line of -o json output into a T.
func parseNDJSON[T any](t *testing.T, out string) []T {
	t.Helper()
	var vs []T
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 8<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("output line %q is not the expected JSON: %v", sc.Text(), err)
		}
		vs = append(vs, v)
	}
	return vs
}

// dial connects a client to d, closed at the end of the test.
func dial(t *testing.T, d *daemonProc) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// do runs a statement with a deadline and fails the test on error.
func do(t *testing.T, c *client.Client, stmt string) *client.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := c.Do(ctx, stmt)
	if err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
	return res
}

// emit runs an emit statement and returns the acknowledged row.
func emit(t *testing.T, c *client.Client, stmt string) emitRow {
	t.Helper()
	res := do(t, c, stmt)
	if len(res.Rows) != 1 {
		t.Fatalf("%s: %d rows, want 1", stmt, len(res.Rows))
	}
	var row emitRow
	if err := json.Unmarshal(res.Rows[0], &row); err != nil || row.Seq <= 0 {
		t.Fatalf("%s: row %s: %v", stmt, res.Rows[0], err)
	}
	return row
}

// tryEmit is emit for goroutines other than the test's: it returns errors.
func tryEmit(c *client.Client, stmt string) (emitRow, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := c.Do(ctx, stmt)
	if err != nil {
		return emitRow{}, fmt.Errorf("%s: %w", stmt, err)
	}
	var row emitRow
	if len(res.Rows) != 1 || json.Unmarshal(res.Rows[0], &row) != nil || row.Seq <= 0 {
		return emitRow{}, fmt.Errorf("%s: answered rows %s, want one emit row", stmt, res.Rows)
	}
	return row, nil
}

// events runs an events statement and decodes its events.
func events(t *testing.T, c *client.Client, stmt string) []wireEvent {
	t.Helper()
	res := do(t, c, stmt)
	evs := make([]wireEvent, len(res.Events))
	for i, raw := range res.Events {
		if err := json.Unmarshal(raw, &evs[i]); err != nil {
			t.Fatalf("%s: event %s: %v", stmt, raw, err)
		}
	}
	return evs
}

// requireGapless fails unless the events' seqs run first, first+1, ….
func requireGapless(t *testing.T, evs []wireEvent, first int64) {
	t.Helper()
	for i, ev := range evs {
		if want := first + int64(i); ev.Seq != want {
			t.Fatalf("event #%d has seq %d, want %d (seqs must be gapless from %d)", i, ev.Seq, want, first)
		}
	}
}

// rssBytes returns a process's resident set size from /proc.
func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	n, err := cairntest.RSS(pid)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// collect runs fn in n goroutines and waits for them.
func collect(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(i)
		}()
	}
	wg.Wait()
}
