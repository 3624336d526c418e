package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// skipIfNoPtrace skips when the CLI reported that the kernel refuses ptrace
// (yama, seccomp, a container without CAP_SYS_PTRACE).
func skipIfNoPtrace(t *testing.T, stderr string) {
	t.Helper()
	if strings.Contains(stderr, "ptrace is not permitted") {
		t.Skipf("ptrace is refused on this machine: %s", strings.TrimSpace(stderr))
	}
}

// TestCaptureRunTopFiles is the acceptance for the trace source:
// `capture run -- sh -c 'cat IN > OUT'` stores the syscalls, and
// topfiles_bytes lists IN and OUT with 64 KiB each (GNU cat copies with
// copy_file_range, which counts for both files). The events' actor is the
// CLI that sent them.
func TestCaptureRunTopFiles(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "IN"), filepath.Join(dir, "OUT")
	if err := os.WriteFile(in, []byte(strings.Repeat("cairn-trace\n", 65536/12+1)[:65536]), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := cliCommand(ctx, d, "capture", "run", "--", "sh", "-c", "cat IN > OUT")
	cmd.Dir = dir
	r := runCLI(t, cmd)
	skipIfNoPtrace(t, r.Stderr)
	if r.Code != 0 {
		t.Fatalf("capture run: exit %d\n%s", r.Code, r.Stderr)
	}
	if b, err := os.ReadFile(out); err != nil || len(b) != 65536 {
		t.Fatalf("OUT: %d bytes, %v", len(b), err)
	}

	// capture run answers once the events are stored: no polling.
	lines := strings.Split(strings.TrimSpace(cliOK(t, d, "chisel", "topfiles_bytes")), "\n")
	want := []string{
		"Bytes               Filename",
		strings.Repeat("-", 80),
		"64.00KB             " + in,
		"64.00KB             " + out,
	}
	if len(lines) < len(want) {
		t.Fatalf("topfiles_bytes:\n%s", strings.Join(lines, "\n"))
	}
	// IN and OUT tie; other files (libraries the loader reads) come after.
	got := append([]string{}, lines[:4]...)
	if got[2] > got[3] {
		got[2], got[3] = got[3], got[2]
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("topfiles_bytes line %d = %q, want %q\n%s", i+1, got[i], want[i], strings.Join(lines, "\n"))
		}
	}

	type ev struct {
		Actor struct {
			PID int `json:"pid"`
		} `json:"actor"`
		Proc struct {
			Name string `json:"name"`
		} `json:"proc"`
		Data map[string]any `json:"data"`
	}
	execs := parseNDJSON[ev](t, cliOK(t, d, "-o", "json", "events", "stream=capture", "where", `kind == "capture.exec" && proc.name == "cat"`))
	if len(execs) != 1 || execs[0].Actor.PID != r.Pid {
		t.Errorf("exec of cat: %+v, want one with actor.pid %d (the CLI)", execs, r.Pid)
	}
	copies := parseNDJSON[ev](t, cliOK(t, d, "-o", "json", "events", "stream=capture", "where", `evt.type in ["copy_file_range", "write"] && fd.name == "`+out+`" && evt.res > 0`))
	if len(copies) == 0 {
		t.Error("no write to OUT recorded")
	}
}

// TestCaptureRunExitCodeAndWhere checks that the CLI exits with the traced
// command's code, and that where keeps only the matching events.
func TestCaptureRunExitCodeAndWhere(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	_, errOut, code := cli(t, d, "capture", "run", "--", "sh", "-c", "exit 7")
	skipIfNoPtrace(t, errOut)
	if code != 7 {
		t.Fatalf("capture run -- sh -c 'exit 7': exit %d, want 7\n%s", code, errOut)
	}
	_, errOut, code = cli(t, d, "capture", "run", "where", `evt.type == "procexit"`, "--", "sh", "-c", "true; exit 3")
	if code != 3 {
		t.Fatalf("exit %d, want 3\n%s", code, errOut)
	}
	type ev struct {
		Evt struct {
			Type string `json:"type"`
		} `json:"evt"`
		Data map[string]any `json:"data"`
	}
	all := parseNDJSON[ev](t, cliOK(t, d, "-o", "json", "events", "stream=capture", "where", `proc.cmdline == "sh -c true; exit 3"`))
	if len(all) != 1 || all[0].Evt.Type != "procexit" || all[0].Data["exit_code"] != float64(3) {
		t.Errorf("with where: %+v, want only the procexit with exit_code 3", all)
	}
	// A bad filter is a usage error, and nothing runs.
	if _, errOut, code := cli(t, d, "capture", "run", "where", "proc.nmae == 1", "--", "true"); code != 2 {
		t.Errorf("bad where: exit %d, want 2\n%s", code, errOut)
	}
}
