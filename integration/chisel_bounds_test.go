package integration

import (
	"bufio"
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/cairntest"
)

// Issue 11, finding 5: scripts escaped their bounds inside one Go call.
// A gsub bomb took the daemon from 0.9 to 6.3 GB; a backtracking
// string.find ignored the callback budget, burned a core long after the
// client left and blocked SIGTERM.

// TestChiselStringBombs: the gsub bomb and a backtracking find end with
// an error naming the limit or the budget, the daemon's peak RSS stays
// far from the bomb's, and it keeps serving.
func TestChiselStringBombs(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, withFlags("--chisel-memory-mb", "64", "--chisel-callback-time", "500ms"))
	c := dial(t, d)
	emit(t, c, "emit app.tick x")
	dir := t.TempDir()
	writeChisel(t, dir, "bomb", `description = "gsub bomb"; stream = "audit"
function on_event() local s = string.rep("x", 50 * 1048576) s:gsub("x", string.rep("%0", 32)) end`)
	writeChisel(t, dir, "backtrack", `description = "backtracking find"; stream = "audit"
function on_event() local s = string.rep("a", 30000) .. "!" string.find(s, string.rep("a*", 12) .. "b") end`)
	for name, want := range map[string]string{
		"bomb.lua":      "limit", // the gsub's result bound, or the memory walk's, whichever comes first
		"backtrack.lua": "ran for more than 500ms",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := cliCommand(ctx, d, "chisel", "./"+name, "kind=app.tick")
		cmd.Dir = dir
		r := runCLI(t, cmd)
		cancel()
		if r.Code == 0 || !strings.Contains(r.Stderr, want) {
			t.Errorf("chisel %s: exit %d, stderr %q; want an error saying %q", name, r.Code, r.Stderr, want)
		}
	}
	peak, err := cairntest.PeakRSS(d.Pid())
	if err != nil {
		t.Fatal(err)
	}
	// The bomb's string (50 MiB), the result up to the 64 MiB limit and
	// the daemon itself: far below the 6 GB the bomb reached unbounded.
	if peak > 512<<20 {
		t.Errorf("peak RSS %d MiB after the bombs, want under 512", peak>>20)
	}
	d.requireServing()
}

// TestSIGTERMStopsARunawayChisel: a chisel caught in a backtracking match,
// with a callback budget of an hour, does not keep the daemon from
// stopping on SIGTERM: the drain timeout ends the request, the matcher
// sees it, the daemon exits 0 and its journal verifies.
func TestSIGTERMStopsARunawayChisel(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, withFlags("--chisel-callback-time", "1h", "--drain-timeout", "1s"))
	c := dial(t, d)
	emit(t, c, "emit app.tick x")
	dir := t.TempDir()
	writeChisel(t, dir, "runaway", `description = "runaway"; stream = "audit"
function on_init() print("started") return true end
function on_event() local s = string.rep("a", 30000) .. "!" string.find(s, string.rep("a*", 12) .. "b") end`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := cliCommand(ctx, d, "chisel", "./runaway.lua", "kind=app.tick")
	cmd.Dir = dir
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "started\n" {
		t.Fatalf("the chisel did not start: %q %v", line, err)
	}
	// The match is running now; the daemon must still stop.
	if err := d.Daemon.Stop(syscall.SIGTERM, 20*time.Second); err != nil {
		t.Fatalf("SIGTERM during a runaway match: %v", err)
	}
	d.Restart()
	cliOK(t, d, "journal", "verify")
}
