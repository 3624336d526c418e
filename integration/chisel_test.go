package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/client/wire"
)

// writeChisel writes a chisel into dir as NAME.lua.
func writeChisel(t *testing.T, dir, name, src string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name+".lua"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

// daemonError requires err to be a *client.DaemonError and returns it.
func daemonError(t *testing.T, stmt string, err error) *client.DaemonError {
	t.Helper()
	var de *client.DaemonError
	if !errors.As(err, &de) {
		t.Fatalf("%s: got %v (%T), want a daemon error", stmt, err, err)
	}
	return de
}

// countsChisel takes a kind as its argument, filters on it with CEL and
// counts the events per subject.
const countsChisel = `
description = "Counts the events of one kind per subject."; stream = "audit"
short_description = "Events of a kind per subject"
category = "Test"
args = {{name = "kind", description = "the kind to count", argtype = "string"}}

local kind, fsubject
local counts, total = {}, 0

function on_set_arg(name, val)
	kind = val
	return true
end

function on_init()
	chisel.set_filter('kind == "' .. kind .. '"')
	fsubject = chisel.request_field("subject")
	return true
end

function on_event()
	local s = evt.field(fsubject)
	counts[s] = (counts[s] or 0) + 1
	total = total + 1
end

function on_capture_end(ts_s, ts_ns, delta)
	for _, e in ipairs(cairn.top(counts)) do print(e.key .. "=" .. e.value) end
	print("total=" .. total)
end
`

// TestChiselFromChiselPath runs a user's chisel from --chisel-path over
// history: an argument, set_filter, on_event and on_capture_end.
func TestChiselFromChiselPath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeChisel(t, dir, "count_kind", countsChisel)
	d := startDaemon(t, withFlags("--chisel-path", dir))
	c := dial(t, d)
	for i := range 5 {
		emit(t, c, fmt.Sprintf("emit app.note web/%d i=%d", i%2, i))
	}
	emit(t, c, "emit app.other web/0")
	do(t, c, "kv put app/x 1")

	res := do(t, c, "chisel count_kind app.note")
	if got, want := strings.Join(res.Lines, "\n"), "web/0=3\nweb/1=2\ntotal=5"; got != want {
		t.Errorf("chisel count_kind app.note printed\n%s\nwant\n%s", got, want)
	}
	// The statement's own selection narrows what the chisel sees.
	res = do(t, c, "chisel count_kind app.note where 'subject == \"web/1\"'")
	if got, want := strings.Join(res.Lines, "\n"), "web/1=2\ntotal=2"; got != want {
		t.Errorf("with a where clause the chisel printed\n%s\nwant\n%s", got, want)
	}
	// The CLI prints the lines as they are.
	if out := cliOK(t, d, "chisel", "count_kind", "app.other"); out != "web/0=1\ntotal=1\n" {
		t.Errorf("cairn chisel count_kind app.other printed %q", out)
	}

	// chisel list and chisel info read the script's globals.
	list := strings.Join(rowStrings(do(t, c, "chisel list").Rows), "\n")
	if !strings.Contains(list, `"name":"count_kind"`) || !strings.Contains(list, "Events of a kind per subject") || !strings.Contains(list, filepath.Join(dir, "count_kind.lua")) {
		t.Errorf("chisel list does not show count_kind from %s:\n%s", dir, list)
	}
	info := strings.Join(do(t, c, "chisel info count_kind").Lines, "\n")
	if !strings.Contains(info, "usage: chisel count_kind kind") || !strings.Contains(info, "the kind to count") {
		t.Errorf("chisel info count_kind:\n%s", info)
	}

	// A missing argument is refused before any event is read.
	_, err := c.Do(context.Background(), "chisel count_kind")
	if de := daemonError(t, "chisel count_kind", err); !strings.Contains(de.Message, "kind") {
		t.Errorf("chisel count_kind without its argument: %v", de)
	}
}

func rowStrings(rows []json.RawMessage) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = string(r)
	}
	return out
}

// TestChiselLiveInterval runs a chisel with on_interval live while events
// are emitted, then cancels it.
func TestChiselLiveInterval(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeChisel(t, dir, "ticker", `
description = "Prints the events seen every second."; stream = "audit"
local n = 0
function on_init() chisel.set_interval_s(1) return true end
function on_event() n = n + 1 end
function on_interval(ts_s, ts_ns, delta)
	print(string.format("tick %d events delta=%d", n, delta))
	n = 0
end
`)
	d := startDaemon(t, withFlags("--chisel-path", dir))
	c := dial(t, d)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := c.Stream(ctx, "chisel ticker live")
	if err != nil {
		t.Fatal(err)
	}
	answers := pump(st)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	w := dial(t, d)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := tryEmit(w, fmt.Sprintf("emit app.live live/%d", i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()

	var ticks []string
	var events int
	deadline := time.After(20 * time.Second)
	for len(ticks) < 2 || events == 0 {
		select {
		case it := <-answers:
			if it.err != nil {
				t.Fatalf("the live chisel ended early: %v", it.err)
			}
			if !it.a.HasLine || !strings.HasPrefix(it.a.Line, "tick ") {
				t.Fatalf("the live chisel answered %+v, want tick lines", it.a)
			}
			ticks = append(ticks, it.a.Line)
			var n, delta int64
			if _, err := fmt.Sscanf(it.a.Line, "tick %d events delta=%d", &n, &delta); err != nil {
				t.Fatalf("tick line %q: %v", it.a.Line, err)
			}
			// Live, delta is the interval as the clock measured it.
			if delta < int64(500*time.Millisecond) || delta > int64(3*time.Second) {
				t.Errorf("tick line %q: delta %d ns, want about 1 s", it.a.Line, delta)
			}
			events += int(n)
		case <-deadline:
			t.Fatalf("within 20s the live chisel printed %d tick lines (%q) and counted %d events", len(ticks), ticks, events)
		}
	}
	close(stop)
	wg.Wait()

	if err := st.Cancel(); err != nil {
		t.Fatal(err)
	}
	if err := waitEnd(t, answers, 10*time.Second); !errors.Is(err, io.EOF) && !client.IsCanceled(err) {
		t.Fatalf("after Cancel the live chisel ended with %v, want done or canceled", err)
	}
	do(t, c, "status")
	d.requireServing()
}

// cpuSeconds reads a process's user+system CPU time from /proc/PID/stat.
func cpuSeconds(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// comm (field 2) is parenthesized and may hold spaces: count from the
	// last ')'. utime and stime are fields 14 and 15, in clock ticks.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%d/stat: %q", pid, s)
	}
	const clkTck = 100 // USER_HZ, 100 on every Linux ABI Go supports
	return float64(utime+stime) / clkTck
}

// TestChiselInfiniteLoop stops endless loops — one plain, one that tries
// to swallow the stop with pcall — within the 5 s budget, while the daemon
// keeps answering; then the daemon stops using CPU.
func TestChiselInfiniteLoop(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeChisel(t, dir, "spin", `
description = "Never returns."; stream = "audit"
function on_event() local i = 0 while true do i = i + 1 end end
`)
	writeChisel(t, dir, "spin_pcall", `
description = "Never returns, and catches what would stop it."; stream = "audit"
function on_event()
	while true do pcall(function() while true do end end) end
end
`)
	d := startDaemon(t, withFlags("--chisel-path", dir))
	c := dial(t, d)
	emit(t, c, "emit app.note x")

	type outcome struct {
		err     error
		elapsed time.Duration
	}
	run := func(stmt string) <-chan outcome {
		ch := make(chan outcome, 1)
		go func() {
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := c.Do(ctx, stmt)
			ch <- outcome{err, time.Since(start)}
		}()
		return ch
	}
	spin, spinPcall := run("chisel spin"), run("chisel spin_pcall")

	// During the loops, the daemon answers status promptly.
	time.Sleep(500 * time.Millisecond)
	for range 3 {
		start := time.Now()
		d.requireServing()
		do(t, c, "events count")
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("status during the loops took %v", el)
		}
		time.Sleep(time.Second)
	}

	for stmt, ch := range map[string]<-chan outcome{"chisel spin": spin, "chisel spin_pcall": spinPcall} {
		var o outcome
		select {
		case o = <-ch:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s still runs after 30s; the budget is 5s", stmt)
		}
		de := daemonError(t, stmt, o.err)
		if de.Code != "resource_exhausted" || !strings.Contains(de.Message, "on_event") || !strings.Contains(de.Message, "5s") || !strings.Contains(de.Message, "stopped") {
			t.Errorf("%s: error %q (code %s), want resource_exhausted naming on_event and the 5s budget", stmt, de.Message, de.Code)
		}
		if o.elapsed < 4*time.Second || o.elapsed > 15*time.Second {
			t.Errorf("%s was stopped after %v, want about 5s", stmt, o.elapsed)
		}
	}

	// Stopped means stopped: no goroutine keeps spinning.
	before := cpuSeconds(t, d.Pid())
	time.Sleep(time.Second)
	if used := cpuSeconds(t, d.Pid()) - before; used >= 0.3 {
		t.Errorf("the daemon used %.2fs of CPU in the second after the loops were stopped, want < 0.3s", used)
	}
	d.requireServing()
	// And a chisel runs normally afterwards.
	if res := do(t, c, "chisel topkinds"); len(res.Lines) == 0 {
		t.Error("chisel topkinds printed nothing after the loops")
	}
}

// TestChiselSandbox runs os.exit and looks for io.popen and os.execute:
// os.exit ends the run, not the daemon, and the dangerous functions are
// absent.
func TestChiselSandbox(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeChisel(t, dir, "quit", `
description = "Tries to stop the daemon."; stream = "audit"
function on_init() os.exit(1) return true end
`)
	writeChisel(t, dir, "probe", `
description = "Looks for what a sandbox removes."; stream = "audit"
function on_capture_end()
	print("io.popen=" .. type(io.popen), "os.execute=" .. type(os.execute), "os.exit=" .. type(os.exit),
		"io.open=" .. type(io.open), "dofile=" .. type(dofile))
end
`)
	d := startDaemon(t, withFlags("--chisel-path", dir))
	c := dial(t, d)
	pid := d.Pid()

	_, err := c.Do(context.Background(), "chisel quit")
	de := daemonError(t, "chisel quit", err)
	if !strings.Contains(de.Message, "quit.lua:3") || !strings.Contains(de.Message, "on_init") {
		t.Errorf("chisel quit: %q, want the error at quit.lua:3 in on_init", de.Message)
	}
	if st := d.requireServing(); st.PID != pid {
		t.Fatalf("status is answered by pid %d, want the daemon %d", st.PID, pid)
	}
	if _, errOut, code := cli(t, d, "chisel", "quit"); code == 0 || !strings.Contains(errOut, "quit.lua:3") {
		t.Errorf("cairn chisel quit: exit %d, stderr %q", code, errOut)
	}

	res := do(t, c, "chisel probe")
	if got, want := strings.Join(res.Lines, "\n"), "io.popen=nil\tos.execute=nil\tos.exit=function\tio.open=nil\tdofile=nil"; got != want {
		t.Errorf("chisel probe printed %q, want %q", got, want)
	}
	d.requireServing()
}

// TestChiselScriptErrors checks what a broken script answers: the Lua
// error with file:line, a suggestion for a misspelt field, and the CLI's
// exit code.
func TestChiselScriptErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeChisel(t, dir, "broken", "description = \"x\"\n\nfunction on_event(\n  local = 1\nend\n")
	writeChisel(t, dir, "misspelt", `
description = "Asks for a field that does not exist."; stream = "audit"
function on_init()
	chisel.request_field("proc.nmae")
	return true
end
`)
	writeChisel(t, dir, "badfilter", `
description = "Sets a filter that does not compile."; stream = "audit"
function on_init()
	chisel.set_filter('proc.nmae == "x"')
	return true
end
`)
	writeChisel(t, dir, "boom", `
description = "Fails on its first event."; stream = "audit"
function on_event()
	local t = nil
	return t.x
end
`)
	d := startDaemon(t, withFlags("--chisel-path", dir))
	c := dial(t, d)
	emit(t, c, "emit app.note x")

	cases := []struct {
		name string
		want []string // in the message
		code wire.Code
		exit int
	}{
		// A script error is bad input, as bad CEL is: invalid_argument, exit 2.
		{"misspelt", []string{"misspelt.lua:4", "on_init", `"proc.nmae"`, "did you mean proc.name"}, "invalid_argument", 2},
		{"badfilter", []string{"badfilter.lua:4", "proc.nmae", "proc.name"}, "invalid_argument", 2},
		{"boom", []string{"boom.lua:5", "on_event"}, "invalid_argument", 2},
		// A syntax error is answered with file:line:column.
		{"broken", []string{"broken.lua:4:7", "syntax error near 'local'"}, "invalid_argument", 2},
	}
	for _, tc := range cases {
		stmt := "chisel " + tc.name
		_, err := c.Do(context.Background(), stmt)
		de := daemonError(t, stmt, err)
		for _, w := range tc.want {
			if !strings.Contains(de.Message, w) {
				t.Errorf("%s: error %q lacks %q", stmt, de.Message, w)
			}
		}
		_, errOut, code := cli(t, d, "chisel", tc.name)
		if de.Code != tc.code || code != tc.exit {
			t.Errorf("%s: code %s, CLI exit %d; want %s and exit %d", stmt, de.Code, code, tc.code, tc.exit)
		}
		if code == 0 || !strings.Contains(errOut, tc.want[0]) {
			t.Errorf("cairn %s: exit %d, stderr %q", stmt, code, errOut)
		}
		t.Logf("%s: %s (%s, exit %d)", stmt, de.Message, de.Code, code)
	}
	// A chisel that does not exist: not_found, exit 1.
	_, err := c.Do(context.Background(), "chisel nosuch")
	if de := daemonError(t, "chisel nosuch", err); de.Code != "not_found" {
		t.Errorf("chisel nosuch: code %s (%q), want not_found", de.Code, de.Message)
	}
	// The broken chisel is listed with its error, not hidden.
	list := strings.Join(rowStrings(do(t, c, "chisel list").Rows), "\n")
	if !strings.Contains(list, `"name":"broken"`) || !strings.Contains(list, "broken.lua:4") {
		t.Errorf("chisel list does not show broken with its error:\n%s", list)
	}
	d.requireServing()
}

// TestChiselBuiltinsOverKV pipes kv events into topkeys and runs topkinds,
// then runs a local script through the CLI with a relative path.
func TestChiselBuiltinsOverKV(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	c := dial(t, d)
	for i := range 3 {
		do(t, c, fmt.Sprintf("kv put app/db/url v%d", i))
	}
	do(t, c, "kv put app/a 1")
	do(t, c, "kv put app/a 2")
	do(t, c, "kv put app/b 1")
	do(t, c, "kv del app/b")
	emit(t, c, "emit app.note app/db/url")

	lines := do(t, c, "events kind=kv.* | chisel topkeys").Lines
	requireTable(t, "events kind=kv.* | chisel topkeys", lines, "Writes", "Key",
		[][2]string{{"3", "app/db/url"}, {"2", "app/a"}, {"2", "app/b"}})

	lines = do(t, c, "chisel topkinds").Lines
	requireTable(t, "chisel topkinds", lines, "Events", "Kind",
		[][2]string{{"6", "kv.put"}, {"1", "app.note"}, {"1", "daemon.start"}, {"1", "kv.delete"}})
	lines = do(t, c, "chisel topkinds 'kind.startsWith(\"kv.\")' 1").Lines
	requireTable(t, "chisel topkinds FILTER 1", lines, "Events", "Kind", [][2]string{{"6", "kv.put"}})

	// A local script, named relative to the CLI's working directory.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "local.lua"), []byte(`
description = "Counts the events of a kind."; stream = "audit"
args = {{name = "kind", description = "a kind", argtype = "string"}}
local kind, n = nil, 0
function on_set_arg(name, val) kind = val return true end
function on_init() chisel.set_filter('kind == "' .. kind .. '"') return true end
function on_event() n = n + 1 end
function on_capture_end() print(kind .. ": " .. n) end
`), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := cliCommand(ctx, d, "chisel", "./local.lua", "kv.put")
	cmd.Dir = dir
	r := runCLI(t, cmd)
	if r.Code != 0 || r.Stdout != "kv.put: 6\n" {
		t.Errorf("cairn chisel ./local.lua kv.put (in %s): exit %d, stdout %q, stderr %q", dir, r.Code, r.Stdout, r.Stderr)
	}
	// With a selection after the argument.
	cmd = cliCommand(ctx, d, "chisel", "./local.lua", "kv.put", "subject=app/a")
	cmd.Dir = dir
	if r := runCLI(t, cmd); r.Code != 0 || r.Stdout != "kv.put: 2\n" {
		t.Errorf("cairn chisel ./local.lua kv.put subject=app/a: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
}

// requireTable checks a table_generator table: a header, a rule, then
// VALUE KEY rows in order.
func requireTable(t *testing.T, stmt string, lines []string, valueTitle, keyTitle string, rows [][2]string) {
	t.Helper()
	var got [][2]string
	headerSeen := false
	for _, l := range lines {
		f := strings.Fields(l)
		switch {
		case len(f) == 2 && f[0] == valueTitle && f[1] == keyTitle:
			headerSeen = true
		case strings.HasPrefix(l, "---"), len(f) == 0:
		case len(f) == 2:
			got = append(got, [2]string{f[0], f[1]})
		default:
			t.Errorf("%s: unexpected line %q", stmt, l)
		}
	}
	if !headerSeen || fmt.Sprint(got) != fmt.Sprint(rows) {
		t.Errorf("%s printed\n%s\nwant header %s %s and rows %v", stmt, strings.Join(lines, "\n"), valueTitle, keyTitle, rows)
	}
}

// TestChiselLiveSince: a live chisel given since= first catches up on the
// events since then, as tail does, and then follows new ones.
func TestChiselLiveSince(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	c := dial(t, d)
	for i := 0; i < 3; i++ {
		emit(t, c, fmt.Sprintf("emit note.old old%d", i))
	}
	for _, stmt := range []string{"chisel echo live since=1h", "tail since=1h | chisel echo"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		s, err := c.Stream(ctx, stmt)
		if err != nil {
			t.Fatal(err)
		}
		emit(t, c, "emit note.new new-"+strings.Fields(stmt)[0])
		want := []string{"old0", "old1", "old2", "new-" + strings.Fields(stmt)[0]}
		var got []string
		for len(got) < len(want) {
			a, err := s.Next()
			if err != nil {
				t.Fatalf("%s: %v after %q", stmt, err, got)
			}
			if !a.HasLine {
				continue
			}
			for _, w := range want {
				if strings.Contains(a.Line, w) {
					got = append(got, w)
				}
			}
		}
		s.Cancel()
		cancel()
		for i, w := range want {
			if got[i] != w {
				t.Fatalf("%s printed %q, want %q in order", stmt, got, want)
			}
		}
	}
}
