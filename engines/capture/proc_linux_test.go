//go:build linux

package capture

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairnhq/cairn/journal"
)

// TestProcSourceRoot starts the real proc source and runs, as uid 65534,
// sh -c 'sleep 0.1; exit 3': the exec of sleep must come with its cmdline
// and uid, the exit of sh with status 3 and a duration.
func TestProcSourceRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("proc source needs root")
	}
	var mu sync.Mutex
	var got []journal.Body
	emit := func(b *journal.Body) bool {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, *b)
		return true
	}
	src := NewProcSource()
	src.SetIncludeSelf(true) // the command is this test's child
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := src.Start(ctx, SourceConfig{}, emit); err != nil {
		if errors.Is(err, ErrNotInitialNetns) {
			t.Skipf("proc connector unavailable: %v", err)
		}
		t.Fatalf("start: %v", err)
	}
	if src.table.len() == 0 {
		t.Error("process table not seeded")
	}

	cmd := exec.Command("sh", "-c", "sleep 0.1; exit 3")
	cmd.Dir = "/tmp"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("run: %v", err)
	}
	shPID := int64(cmd.Process.Pid)

	// Stop drains: everything queued is handed over before it returns.
	deadline := time.Now().Add(5 * time.Second)
	var execEv, exitEv *journal.Body
	for execEv == nil || exitEv == nil {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		for i := range got {
			b := &got[i]
			switch {
			case b.Kind == "capture.exec" && b.Proc.Name == "sleep" && b.Proc.PPID == shPID:
				execEv = b
			case b.Kind == "capture.exit" && b.Proc.PID == shPID:
				exitEv = b
			}
		}
		mu.Unlock()
	}
	if err := src.Stop(); err != nil {
		t.Fatal(err)
	}
	if execEv == nil {
		t.Fatalf("no exec of sleep (child of sh %d) among %d events", shPID, len(got))
	}
	if execEv.Evt.Type != "execve" || execEv.Proc.Cmdline != "sleep 0.1" || execEv.User.UID != 65534 ||
		execEv.Actor.UID != 65534 || execEv.Actor.Via != "system" || execEv.Container.ID == "" ||
		execEv.Proc.Cwd != "/tmp" || execEv.Subject == "" || execEv.Evt.Time == 0 {
		t.Errorf("exec event: %+v proc %+v user %+v evt %+v container %+v", execEv, execEv.Proc, execEv.User, execEv.Evt, execEv.Container)
	}
	if exitEv == nil {
		t.Fatalf("no exit of sh %d", shPID)
	}
	if exitEv.Evt.Type != "procexit" || exitEv.Data["exit_code"] != int64(3) {
		t.Errorf("exit event: %+v data %v", exitEv.Evt, exitEv.Data)
	}
	if d, ok := exitEv.Data["duration"].(int64); !ok || d < int64(100*time.Millisecond) {
		t.Errorf("exit duration %v, want ≥ 100ms", exitEv.Data["duration"])
	}
	if _, ok := src.table.get(shPID); ok {
		t.Error("sh still in the table after its exit")
	}
	t.Logf("%d events; exec %+v; exit data %v; kernel drops %d", len(got), *execEv.Proc, exitEv.Data, src.KernelDrops())
}

// TestProcSourceExcludesSelf checks that by default the test's own
// children are not reported.
func TestProcSourceExcludesSelf(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("proc source needs root")
	}
	var mu sync.Mutex
	var self int
	emit := func(b *journal.Body) bool {
		mu.Lock()
		defer mu.Unlock()
		if b.Proc.PPID == int64(os.Getpid()) || b.Proc.PID == int64(os.Getpid()) {
			self++
		}
		return true
	}
	src := NewProcSource()
	if err := src.Start(context.Background(), SourceConfig{}, emit); err != nil {
		if errors.Is(err, ErrNotInitialNetns) {
			t.Skipf("proc connector unavailable: %v", err)
		}
		t.Fatalf("start: %v", err)
	}
	if err := exec.Command("true").Run(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := src.Stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if self != 0 {
		t.Errorf("%d events about this process's children", self)
	}
}

// TestProcExecOfAGoneProcess: when /proc holds nothing for an exec'd pid
// (it exited within microseconds), the exec event says so rather than
// showing the parent's command, which the fork left in the table.
func TestProcExecOfAGoneProcess(t *testing.T) {
	var got []journal.Body
	src := NewProcSource()
	src.root = t.TempDir() // an empty /proc: every pid is gone
	src.table = newProcTable()
	src.users = map[int64]string{}
	src.emit = func(b *journal.Body) bool { got = append(got, *b); return true }
	src.table.put(procEntry{PID: 100, Name: "dash", Comm: "dash", Exe: "/usr/bin/dash", Cmdline: "dash -c loop", UID: 7})
	src.handle(procEvent{What: procEventFork, PID: 101, TGID: 101, ParentPID: 100, ParentTGID: 100}, 0)
	src.handle(procEvent{What: procEventExec, PID: 101, TGID: 101}, 0)
	if len(got) != 2 {
		t.Fatalf("%d events", len(got))
	}
	ex := got[1]
	if ex.Kind != "capture.exec" || ex.Proc.Name != "<NA>" || ex.Proc.Cmdline != "" || ex.Proc.Exe != "" || ex.Data["unresolved"] == nil {
		t.Fatalf("exec of a gone process: proc %+v data %v", ex.Proc, ex.Data)
	}
	if ex.Proc.PPID != 100 || ex.Actor.UID != 7 {
		t.Fatalf("what the fork told was lost: proc %+v actor %+v", ex.Proc, ex.Actor)
	}
}

func TestSyntheticStopsPromptlyAtAnyRate(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &synthetic{}
	if err := s.Start(ctx, SourceConfig{Rate: maxSyntheticRate}, func(*journal.Body) bool {
		time.Sleep(time.Microsecond) // slower than the rate asks
		return true
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the paced source did not stop")
	}
}
