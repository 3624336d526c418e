package cgstat

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// requireRoot skips a test that creates cgroups when not root, unless CI
// is set, where the test must run.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test creates cgroups and must run as root in CI")
	}
	t.Skip("skipped: creating cgroups needs root (run the tests as root; CI=true makes this a failure)")
}

// testCgroup is a real v1 cgroup created for one test under the root of
// each controller cgstat reads.
type testCgroup struct {
	path string
	dirs map[string]string // controller to directory
}

// newTestCgroup creates /cairn-test-<random> under memory, cpu, cpuacct,
// pids and blkio. Cleanup kills what is left in it and removes it.
func newTestCgroup(t *testing.T) *testCgroup {
	t.Helper()
	requireRoot(t)
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		t.Skip("skipped: this test creates cgroup v1 groups and the host runs cgroup v2")
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	mounts := parseV1Mounts(mi)
	tc := &testCgroup{path: "/cairn-test-" + randomHex(t), dirs: map[string]string{}}
	for _, ctl := range []string{"memory", "cpu", "cpuacct", "pids", "blkio"} {
		m, ok := mounts[ctl]
		if !ok {
			t.Fatalf("no cgroup v1 %s controller mounted", ctl)
		}
		dir := m.Path(tc.path)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		tc.dirs[ctl] = dir
	}
	t.Cleanup(func() { tc.remove(t) })
	return tc
}

func randomHex(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// remove kills every process still in the cgroup and removes its
// directories, which the kernel allows once no process is left.
func (tc *testCgroup) remove(t *testing.T) {
	deadline := time.Now().Add(10 * time.Second)
	for ctl, dir := range tc.dirs {
		for {
			b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			pids, _ := parsePids(b)
			for _, pid := range pids {
				if p, err := os.FindProcess(pid); err == nil {
					_ = p.Kill()
				}
			}
			err := os.Remove(dir)
			if err == nil || errors.Is(err, fs.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("remove %s cgroup %s: %v", ctl, dir, err)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// set writes value to file of controller's directory.
func (tc *testCgroup) set(t *testing.T, controller, file, value string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(tc.dirs[controller], file), []byte(value), 0); err != nil {
		t.Fatalf("set %s %s: %v", file, value, err)
	}
}

// start runs script with sh in the cgroup. The script only begins once
// the shell has been moved in (it first reads a line the test writes
// after the move), so everything it runs is charged to the cgroup.
func (tc *testCgroup) start(t *testing.T, script string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sh", "-c", "read _; "+script)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for _, dir := range tc.dirs {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
			t.Fatalf("move pid %d into %s: %v", cmd.Process.Pid, dir, err)
		}
	}
	if _, err := io.WriteString(in, "go\n"); err != nil {
		t.Fatal(err)
	}
	return cmd
}

func TestStatsOfRealCgroup(t *testing.T) {
	tc := newTestCgroup(t)
	tc.set(t, "memory", "memory.limit_in_bytes", strconv.Itoa(32<<20))
	tc.set(t, "pids", "pids.max", "50")
	cmd := tc.start(t, "(while :; do :; done) & cat /dev/zero | head -c 100000000 > /dev/null; exec sleep 30")

	c, err := Open(tc.path)
	if err != nil {
		t.Fatal(err)
	}
	first, err := c.Stats(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	var last Stats
	for deadline := time.Now().Add(10 * time.Second); ; {
		time.Sleep(200 * time.Millisecond)
		if last, err = c.Stats(cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
		if last.CPUUsage > first.CPUUsage+50e6 && last.PidsCurrent == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU usage did not grow by 50ms, or the shell did not reach sleep, in 10s: first %+v, last %+v", first, last)
		}
	}
	if last.MemoryLimit != 32<<20 || last.PidsLimit != 50 {
		t.Errorf("limits: memory %d, pids %d; want %d, 50", last.MemoryLimit, last.PidsLimit, 32<<20)
	}
	if last.MemoryUsage == 0 || last.MemoryUsage > 32<<20 {
		t.Errorf("memory usage %d, want within (0, 32MiB]", last.MemoryUsage)
	}
	if last.OnlineCPUs < 1 || last.SystemUsage <= first.SystemUsage {
		t.Errorf("host CPU: %d online, system usage %d then %d", last.OnlineCPUs, first.SystemUsage, last.SystemUsage)
	}
	if p := CPUPercent(first, last); p <= 0 {
		t.Errorf("CPUPercent = %v, want > 0 with a busy loop running", p)
	}
	row := last.Row(strings.Repeat("ab", 32), "busy", &first)
	if !strings.HasSuffix(row.MemUsage, " / 32MiB") || row.PIDs != strconv.FormatUint(last.PidsCurrent, 10) {
		t.Errorf("row %q", row.Columns())
	}
	t.Logf("row %q", row.Columns())

	pids, err := c.Pids()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pids, cmd.Process.Pid) || len(pids) < 2 {
		t.Fatalf("Pids = %v, want the shell %d and its busy loop", pids, cmd.Process.Pid)
	}
	header, rows, err := Top(pids)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(header, TopHeader) {
		t.Errorf("header %q", header)
	}
	// The shell execs sleep at the end; the busy loop is a forked subshell
	// and keeps the shell's command line.
	var sawSleep, sawLoop bool
	for _, r := range rows {
		if len(r) != len(header) {
			t.Fatalf("row %q has %d columns", r, len(r))
		}
		if r[0] != "root" {
			t.Errorf("UID %q, want root", r[0])
		}
		switch {
		case r[7] == "sleep 30":
			sawSleep = sawSleep || r[1] == strconv.Itoa(cmd.Process.Pid)
		case strings.HasPrefix(r[7], "sh -c read _; (while"):
			sawLoop = r[2] == strconv.Itoa(cmd.Process.Pid)
		}
	}
	if !sawSleep || !sawLoop || len(rows) != len(pids) {
		t.Errorf("Top rows %q for pids %v: want the shell's pid running sleep 30 and its child the loop", rows, pids)
	}
	t.Logf("top %q", rows)

	n, err := c.OOMKills()
	if err != nil || n != 0 {
		t.Errorf("OOMKills = %d, %v; want 0", n, err)
	}
}

func TestOOMKills(t *testing.T) {
	tc := newTestCgroup(t)
	tc.set(t, "memory", "memory.limit_in_bytes", strconv.Itoa(16<<20))
	// The command substitution keeps 50 MB in the shell's memory.
	cmd := tc.start(t, `x=$(head -c 50000000 /dev/zero | tr "\0" a); echo ${#x}`)
	// The kernel picks the victim (the shell, or head or tr behind it), so
	// how the shell ends is not the test; the count of kills is.
	_ = cmd.Wait()
	c, err := Open(tc.path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.OOMKills()
	if err != nil || n < 1 {
		t.Errorf("OOMKills = %d, %v; want at least 1", n, err)
	}
}

func TestOpenMissing(t *testing.T) {
	if _, err := Open("/cairn-test-does-not-exist-" + randomHex(t)); err == nil {
		t.Error("Open found a cgroup that does not exist")
	}
	if _, err := Open("relative"); err == nil {
		t.Error("Open accepted a relative path")
	}
}
