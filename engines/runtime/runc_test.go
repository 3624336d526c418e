package runtime

import (
	"context"
	"os/exec"
	"testing"
	"time"
)

// TestWaitPidAndPollPid: both ways of waiting for a process that is not
// the caller's to reap end when it ends, not before, and not for another
// process that got its pid (a different start time).
func TestWaitPidAndPollPid(t *testing.T) {
	for name, wait := range map[string]func(context.Context, int, uint64) error{"pidfd": waitPid, "poll": pollPid} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command("sleep", "60")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			start, ok := procStart(cmd.Process.Pid)
			if !ok {
				t.Fatal("no start time for a running process")
			}
			if err := wait(context.Background(), cmd.Process.Pid, start+1); err != nil {
				t.Fatalf("another process's start time: %v", err) // returns at once: not the one meant
			}
			done := make(chan error, 1)
			go func() { done <- wait(context.Background(), cmd.Process.Pid, start) }()
			select {
			case err := <-done:
				t.Fatalf("returned while the process runs: %v", err)
			case <-time.After(300 * time.Millisecond):
			}
			_ = cmd.Process.Kill()
			_ = cmd.Wait() // reaped: its /proc entry goes
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}
