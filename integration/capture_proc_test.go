package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestCaptureProc is the acceptance for the proc source: a command
// run as another user shows up as execve with its cmdline and uid, and as
// procexit with its exit code and duration.
func TestCaptureProc(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the proc connector needs root; CI runs as root")
	}
	t.Parallel()
	d := startDaemon(t)
	c := dial(t, d)
	if _, err := c.Do(t.Context(), "capture start proc"); err != nil {
		if strings.Contains(err.Error(), "initial network namespace") {
			t.Skipf("this machine's proc connector is out of reach: %v", err)
		}
		t.Fatalf("capture start proc: %v", err)
	}

	cmd := exec.Command("sh", "-c", "sleep 0.1; exit 3")
	cmd.Dir = "/tmp"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if err := cmd.Run(); err == nil || cmd.ProcessState.ExitCode() != 3 {
		t.Fatalf("sh exited %v, want exit code 3", err)
	}

	type procEvent struct {
		Seq  int64 `json:"seq"`
		Proc struct {
			Name    string `json:"name"`
			PID     int64  `json:"pid"`
			Cmdline string `json:"cmdline"`
		} `json:"proc"`
		User struct {
			UID int64 `json:"uid"`
		} `json:"user"`
		Data map[string]any `json:"data"`
	}
	find := func(where string) procEvent {
		t.Helper()
		pollCapture(t, c, "events stream=capture where '"+where+"'", where, func(captureEvent) bool { return true })
		var pe procEvent
		res := do(t, c, "events stream=capture where '"+where+"' limit=1")
		if len(res.Events) != 1 || json.Unmarshal(res.Events[0], &pe) != nil {
			t.Fatalf("%s: %s", where, res.Events)
		}
		return pe
	}
	ex := find(`evt.type == "execve" && proc.name == "sleep"`)
	if ex.User.UID != 65534 || !strings.Contains(ex.Proc.Cmdline, "sleep 0.1") {
		t.Errorf("execve of sleep: %+v, want uid 65534 and cmdline with sleep 0.1", ex)
	}
	// proc.name is the executable's name: sh may be dash or bash.
	exit := find(`evt.type == "procexit" && data.exit_code == 3 && proc.cmdline.contains("exit 3")`)
	if d, _ := exit.Data["duration"].(float64); d <= 0 {
		t.Errorf("procexit of sh: duration %v, want > 0", exit.Data["duration"])
	}
	if _, err := c.Do(t.Context(), "capture stop proc"); err != nil {
		t.Fatalf("capture stop proc: %v", err)
	}
}
