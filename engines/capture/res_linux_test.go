package capture

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/filter"
)

// collect is an Emit that keeps every body.
type collect struct {
	mu     sync.Mutex
	bodies []*journal.Body
}

func (c *collect) emit(b *journal.Body) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bodies = append(c.bodies, b)
	return true
}

func (c *collect) snapshot() []*journal.Body {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*journal.Body(nil), c.bodies...)
}

// TestResSourceSamplesSelf runs the source over the real /proc for a few
// short intervals and finds this test process in it.
func TestResSourceSamplesSelf(t *testing.T) {
	// Use some CPU first: cpu_s counts clock ticks (10 ms), and a test
	// run alone may not have spent one yet.
	for start := time.Now(); time.Since(start) < 30*time.Millisecond; {
	}
	s, ok := newSource("res")
	if !ok {
		t.Fatal("res source not registered")
	}
	var c collect
	if err := s.Start(context.Background(), SourceConfig{Interval: 50 * time.Millisecond}, c.emit); err != nil {
		t.Fatal(err)
	}
	// Start returns after the first pass: this process is already there.
	first := len(c.snapshot())
	if first == 0 {
		t.Fatal("Start returned before the first sample")
	}
	time.Sleep(130 * time.Millisecond)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	bodies := c.snapshot()
	time.Sleep(80 * time.Millisecond)
	if n := len(c.snapshot()); n != len(bodies) {
		t.Fatalf("%d events after Stop returned", n-len(bodies))
	}

	notSwitch, err := filter.Compile(`evt.type != "switch"`)
	if err != nil {
		t.Fatal(err)
	}
	self := int64(os.Getpid())
	var mine []*journal.Body
	cgroups := 0
	for _, b := range bodies {
		switch b.Kind {
		case ResSampleKind:
			if b.Evt.Type != "" || b.Evt.Time == 0 || b.Proc == nil || b.Container == nil || b.Container.ID == "" {
				t.Fatalf("malformed sample %+v", b)
			}
			// sysdig's topscalls counts evt.type!=switch: not samples.
			if notSwitch.MatchEvent(&journal.Event{Stream: journal.Capture, Body: *b}) {
				t.Fatalf("a sample counts as a syscall: %+v", b.Evt)
			}
			if b.Proc.PID == self {
				mine = append(mine, b)
			}
		case ResCgroupSampleKind:
			cgroups++
			if b.Evt.Type != "" || b.Data["path"] == nil || b.Container == nil {
				t.Fatalf("malformed cgroup sample %+v", b)
			}
		default:
			t.Fatalf("unexpected kind %q", b.Kind)
		}
	}
	if len(mine) < 2 {
		t.Fatalf("%d samples of this process (pid %d) in %d events, want at least 2", len(mine), self, len(bodies))
	}
	first0, last := mine[0], mine[len(mine)-1]
	if first0.Proc.PPID != int64(os.Getppid()) || first0.Proc.Name == "" || first0.Subject != "pid/"+strconv.FormatInt(self, 10) {
		t.Errorf("proc %+v subject %q", first0.Proc, first0.Subject)
	}
	for _, key := range []string{"rss", "fds", "threads"} {
		if v, _ := last.Data[key].(int64); v <= 0 {
			t.Errorf("%s = %v, want > 0 (data %v)", key, last.Data[key], last.Data)
		}
	}
	if _, ok := first0.Data["cpu_delta_s"]; ok {
		t.Error("first pass of a process present at start has cpu_delta_s")
	}
	if d, ok := last.Data["cpu_delta_s"].(float64); !ok || d < 0 {
		t.Errorf("later pass: cpu_delta_s %v", last.Data["cpu_delta_s"])
	}
	if cpu, _ := last.Data["cpu_s"].(float64); cpu <= 0 {
		t.Errorf("cpu_s %v", last.Data["cpu_s"])
	}
	if os.Geteuid() == 0 {
		if _, ok := last.Data["io_read"].(int64); !ok {
			t.Errorf("root: no io_read in %v", last.Data)
		}
	}
	var rs resSource
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		rs.mounts = parseCgroupMounts(b)
	}
	if rs.cgroupVersion() != 0 && cgroups == 0 {
		t.Errorf("cgroup v%d mounted, no cgroup sample", rs.cgroupVersion())
	}
	t.Logf("%d events, %d cgroup samples, this process: %v", len(bodies), cgroups, last.Data)
}

// TestResCountDir checks the getdents count against os.ReadDir.
func TestResCountDir(t *testing.T) {
	dir := t.TempDir()
	for i := range 300 {
		if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(i)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n, err := countDir(dir, make([]byte, 512)) // several getdents calls
	if err != nil || n != 300 {
		t.Errorf("countDir = %d, %v; want 300", n, err)
	}
	ents, _ := os.ReadDir("/proc/self/fd")
	if n, err := countDir("/proc/self/fd", make([]byte, 8<<10)); err != nil || n < 3 || n > int64(len(ents))+1 {
		t.Errorf("fds of this process: %d, %v; ReadDir saw %d", n, err, len(ents))
	}
}

// BenchmarkResSample measures one pass over every process and cgroup.
// CAIRN_RES_PROCS=500 first starts sleeping children until the host has
// that many processes, so the target (500 processes every second
// under 3% of one core, i.e. a pass under 30 ms) is measured as stated.
func BenchmarkResSample(b *testing.B) {
	if want, _ := strconv.Atoi(os.Getenv("CAIRN_RES_PROCS")); want > 0 {
		have := countProcs(b)
		var kids []*exec.Cmd
		b.Cleanup(func() {
			for _, k := range kids {
				k.Process.Kill()
				k.Wait()
			}
		})
		for ; have < want; have++ {
			k := exec.Command("sleep", "600")
			if err := k.Start(); err != nil {
				b.Fatal(err)
			}
			kids = append(kids, k)
		}
	}
	s := newResSource("/proc")
	var events, procs int
	err := s.Start(context.Background(), SourceConfig{Interval: time.Hour}, func(body *journal.Body) bool {
		events++
		if body.Kind == ResSampleKind {
			procs++
		}
		return true
	})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Stop()
	events, procs = 0, 0
	b.ResetTimer()
	for b.Loop() {
		s.sample()
	}
	b.StopTimer()
	perPass := float64(procs) / float64(b.N)
	b.ReportMetric(perPass, "procs/pass")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(procs), "ns/proc")
	// CPU share of one core at one pass a second, for 500 processes.
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(procs)*500/1e9*100, "%core@500procs/s")
}

func countProcs(b *testing.B) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			n++
		}
	}
	return n
}
