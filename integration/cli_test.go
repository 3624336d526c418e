package integration

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/client"
)

// TestStatusAndEmit drives status, emit and events through the CLI and the
// Go client, and checks that emitted events carry typed data and the
// identity of the process that emitted them.
func TestStatusAndEmit(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)

	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	if d.Status.Node != host {
		t.Errorf("status node = %q, want the hostname %q", d.Status.Node, host)
	}
	if out := cliOK(t, d, "status"); !strings.Contains(out, host) {
		t.Errorf("cairn status does not mention the node %q:\n%s", host, out)
	}

	// The shell word q='"7"' reaches the CLI as q="7".
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := runCLI(t, cliCommand(ctx, d, "-o", "json", "emit", "app.note", "web", "x=1", "y=true", "z=two words", `q="7"`))
	if r.Code != 0 {
		t.Fatalf("cairn emit: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	rows := parseNDJSON[emitRow](t, r.Stdout)
	if len(rows) != 1 || rows[0].Seq <= 0 || rows[0].Stream != "audit" || len(rows[0].Hash) != 64 {
		t.Fatalf("cairn -o json emit printed %q, want one row with stream audit, a seq and a hash", r.Stdout)
	}

	evs := parseNDJSON[wireEvent](t, cliOK(t, d, "-o", "json", "events", "kind=app.*"))
	if len(evs) != 1 {
		t.Fatalf("events kind=app.*: %d events, want 1: %+v", len(evs), evs)
	}
	ev := evs[0]
	if ev.Kind != "app.note" || ev.Subject != "web" || ev.Stream != "audit" || ev.Seq != rows[0].Seq || ev.Hash != rows[0].Hash {
		t.Errorf("event %+v does not match the emit (seq %d, hash %s)", ev, rows[0].Seq, rows[0].Hash)
	}
	if ev.Node != host {
		t.Errorf("event node = %q, want %q", ev.Node, host)
	}
	if _, err := time.Parse(time.RFC3339Nano, ev.Time); err != nil {
		t.Errorf("event time %q is not RFC 3339: %v", ev.Time, err)
	}
	if v, ok := ev.Data["x"].(float64); !ok || v != 1 {
		t.Errorf("data.x = %#v, want the number 1", ev.Data["x"])
	}
	if v, ok := ev.Data["y"].(bool); !ok || !v {
		t.Errorf("data.y = %#v, want the boolean true", ev.Data["y"])
	}
	if v, ok := ev.Data["z"].(string); !ok || v != "two words" {
		t.Errorf("data.z = %#v, want the string \"two words\"", ev.Data["z"])
	}
	// A value written with quotes stays a string, never the number 7.
	if v, ok := ev.Data["q"].(string); !ok || strings.Trim(v, `"`) != "7" {
		t.Errorf("data.q = %#v, want a string holding 7", ev.Data["q"])
	}
	if ev.Actor.PID != r.Pid {
		t.Errorf("actor.pid = %d, want %d (the CLI process that emitted)", ev.Actor.PID, r.Pid)
	}
	if ev.Actor.UID != os.Getuid() || ev.Actor.GID != os.Getgid() || ev.Actor.Via != "socket" {
		t.Errorf("actor = %+v, want uid %d gid %d via socket", ev.Actor, os.Getuid(), os.Getgid())
	}

	// Through the Go client the actor is this test process.
	c := dial(t, d)
	row := emit(t, c, "emit app.api client n=2")
	apiEvs := events(t, c, "events kind=app.api")
	if len(apiEvs) != 1 || apiEvs[0].Seq != row.Seq {
		t.Fatalf("events kind=app.api = %+v, want the one emitted at seq %d", apiEvs, row.Seq)
	}
	if a := apiEvs[0].Actor; a.PID != os.Getpid() || a.UID != os.Getuid() || a.Via != "socket" {
		t.Errorf("client-emitted actor = %+v, want pid %d uid %d via socket", a, os.Getpid(), os.Getuid())
	}
	if v, ok := apiEvs[0].Data["n"].(float64); !ok || v != 2 {
		t.Errorf("data.n = %#v, want the number 2", apiEvs[0].Data["n"])
	}
}

// TestActorPerConnection checks that each connection's events record its
// own peer: two CLI processes give two different pids, each their own.
func TestActorPerConnection(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	pids := map[string]int{}
	for _, subject := range []string{"one", "two"} {
		r := runCLI(t, cliCommand(ctx, d, "emit", "app.who", subject))
		if r.Code != 0 {
			t.Fatalf("emit %s: exit %d: %s", subject, r.Code, r.Stderr)
		}
		pids[subject] = r.Pid
	}
	if pids["one"] == pids["two"] {
		t.Fatalf("both CLI runs had pid %d; cannot tell connections apart", pids["one"])
	}
	c := dial(t, d)
	evs := events(t, c, "events kind=app.who")
	if len(evs) != 2 {
		t.Fatalf("events kind=app.who: %+v", evs)
	}
	for _, ev := range evs {
		if ev.Actor.PID != pids[ev.Subject] || ev.Actor.UID != os.Getuid() {
			t.Errorf("event %q: actor %+v, want pid %d uid %d", ev.Subject, ev.Actor, pids[ev.Subject], os.Getuid())
		}
		if want := commOf(cairnBin); ev.Actor.Comm != want {
			t.Errorf("event %q: actor.comm = %q, want %q (the CLI binary)", ev.Subject, ev.Actor.Comm, want)
		}
	}

	// What the daemon does by itself is the system's doing, in its own name.
	starts := events(t, c, "events kind=daemon.start")
	if len(starts) != 1 || starts[0].Actor.Via != "system" || starts[0].Actor.PID != d.Pid() {
		t.Errorf("daemon.start = %+v, want one event by the system actor with pid %d", starts, d.Pid())
	}
}

// commOf is the kernel's comm of a process running the binary at path: its
// base name cut to 15 bytes.
func commOf(path string) string {
	base := filepath.Base(path)
	if len(base) > 15 {
		base = base[:15]
	}
	return base
}

// TestUnreachable checks the typed error of the client and exit code 3 of
// the CLI when nothing listens on the socket.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	socket := filepath.Join(shortTempDir(t), "nobody.sock")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, socket)
	var ue *client.UnreachableError
	if !errors.As(err, &ue) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("Dial(%s) = %#v, want *client.UnreachableError", socket, err)
	}
	if ue.Socket != socket {
		t.Errorf("UnreachableError.Socket = %q, want %q", ue.Socket, socket)
	}

	r := runCLI(t, cliCommand(ctx, nil, "--socket", socket, "status"))
	if r.Code != 3 {
		t.Errorf("cairn status with no daemon: exit %d, want 3\n%s", r.Code, r.Stderr)
	}
	if !strings.Contains(r.Stderr, socket) {
		t.Errorf("stderr does not name the socket %s:\n%s", socket, r.Stderr)
	}
}
