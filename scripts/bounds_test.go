package scripts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/journal"
)

func kvEvents(t testing.TB, n int) []*journal.Raw {
	t.Helper()
	evs := make([]journal.Event, n)
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()
	for i := range evs {
		evs[i] = journal.Event{Stream: journal.Audit, Time: base + int64(i)*int64(time.Millisecond), Body: journal.Body{
			Kind: "kv.put", Subject: fmt.Sprintf("key/%d", i%10), Node: "host-1",
			Actor: journal.Actor{UID: 1000 + i%3, User: []string{"ana", "bob", "cy"}[i%3], Via: "socket"},
			Data:  map[string]any{"key": fmt.Sprintf("key/%d", i%10), "value": "v", "version": int64(i)},
		}}
	}
	return chain(t, evs)
}

func loadSource(t *testing.T, lib *Library, src string) *Chisel {
	t.Helper()
	c, err := lib.LoadSource("./t.lua", src)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitGoroutines fails when the goroutine count does not come back to n.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left, want %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEndlessLoopStopped(t *testing.T) {
	before := runtime.NumGoroutine()
	lib := NewLibrary(Options{CallbackCPU: 100 * time.Millisecond})
	for _, tc := range []struct{ name, src string }{
		{"on_event", `description = "x"; function on_event() while true do end end`},
		{"on_init", `description = "x"; function on_init() local n = 0 while true do n = n + 1 end end`},
		{"pcall", `description = "x"; function on_event() while true do pcall(function() while true do end end) end end`},
		{"on_capture_end", `description = "x"; function on_capture_end() for i = 1, 1e15 do end end`},
		{"recursion in pcall", `description = "x"; local function f() pcall(f) pcall(f) end; function on_event() f() end`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := loadSource(t, lib, tc.src)
			start := time.Now()
			err := c.Run(context.Background(), &sliceFeed{raws: kvEvents(t, 3)}, RunOptions{})
			took := time.Since(start)
			if !errors.Is(err, ErrBudget) {
				t.Fatalf("err = %v, want ErrBudget", err)
			}
			if !strings.Contains(err.Error(), "ran for more than 100ms") {
				t.Errorf("err = %v", err)
			}
			if took > 2*time.Second {
				t.Errorf("stopped after %v", took)
			}
		})
	}
	// Top-level code runs at Load, under the same budget.
	if _, err := lib.LoadSource("./t.lua", `while true do end`); !errors.Is(err, ErrBudget) {
		t.Errorf("Load of an endless top level: %v", err)
	}
	// Run has returned, so its goroutine, its watchdog and the Lua VM are
	// gone: nothing keeps burning CPU.
	waitGoroutines(t, before)
}

func TestMemoryBomb(t *testing.T) {
	before := runtime.NumGoroutine()
	lib := NewLibrary(Options{MemoryLimit: 32 << 20, CallbackCPU: 20 * time.Second})
	for _, tc := range []struct{ name, src string }{
		{"table", `description = "x"; function on_event() local t = {} while true do t[#t + 1] = "entry " .. #t end end`},
		{"strings", `description = "x"; big = {}; function on_event() local s = string.rep("x", 1048576) while true do big[#big + 1] = s .. #big end end`},
		{"across events", `description = "x"; keep = {}; function on_event() for i = 1, 20000 do keep[#keep + 1] = {i, "x" .. i} end end`},
		{"doubling", `description = "x"; function on_event() local s = "x" while true do s = s .. s end end`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := loadSource(t, lib, tc.src)
			start := time.Now()
			err := c.Run(context.Background(), &sliceFeed{raws: kvEvents(t, 2000)}, RunOptions{})
			if !errors.Is(err, ErrMemory) {
				t.Fatalf("err = %v, want ErrMemory", err)
			}
			t.Logf("%v after %v", err, time.Since(start))
		})
	}
	waitGoroutines(t, before)
}

// A chisel well within its memory is not stopped, however long it runs.
func TestMemoryWithinLimit(t *testing.T) {
	lib := NewLibrary(Options{MemoryLimit: 32 << 20})
	c := loadSource(t, lib, `description = "x"
		counts = {}
		function on_event() for i = 1, 100 do local s = string.rep("y", 1000) .. i; counts[i] = s end end`)
	if err := c.Run(context.Background(), &sliceFeed{raws: kvEvents(t, 1000)}, RunOptions{}); err != nil {
		t.Fatal(err)
	}
}

// blockingFeed hands out events sent on ch and blocks until ctx ends.
type blockingFeed struct{ ch chan *journal.Raw }

func (f *blockingFeed) Next(ctx context.Context) (*journal.Raw, error) {
	select {
	case r, ok := <-f.ch:
		if !ok {
			return nil, io.EOF
		}
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func TestCancel(t *testing.T) {
	before := runtime.NumGoroutine()
	lib := NewLibrary(Options{CallbackCPU: time.Minute})
	for _, tc := range []struct {
		name string
		src  string
		live bool
	}{
		{"in a callback", `description = "x"; function on_event() while true do end end`, false},
		{"waiting for events", `description = "x"; function on_event() end`, false},
		{"live", `description = "x"; function on_init() chisel.set_interval_ns(5e6) return true end; function on_interval() end`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := loadSource(t, lib, tc.src)
			ctx, cancel := context.WithCancel(context.Background())
			feed := &blockingFeed{ch: make(chan *journal.Raw, 1)}
			feed.ch <- kvEvents(t, 1)[0]
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx, feed, RunOptions{Live: tc.live}) }()
			time.Sleep(50 * time.Millisecond)
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) || err != context.Canceled {
					t.Fatalf("err = %v, want context.Canceled", err)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
		})
	}
	waitGoroutines(t, before)
}

func TestLive(t *testing.T) {
	before := runtime.NumGoroutine()
	lib := NewLibrary(Options{})
	c := loadSource(t, lib, `description = "live"
		local n = 0
		function on_capture_start() chisel.set_interval_ns(20e6) return true end
		function on_event() n = n + 1 end
		function on_interval(ts_s, ts_ns, delta)
			print("tick " .. n .. " " .. tostring(delta > 10e6 and delta < 1e9) .. " " .. tostring(sysdig.is_live()))
			n = 0
		end
		function on_capture_end(ts_s, ts_ns, delta) print("end " .. n) end`)
	feed := &blockingFeed{ch: make(chan *journal.Raw)}
	var mu sync.Mutex
	var lines []string
	out := func(s string) error { mu.Lock(); defer mu.Unlock(); lines = append(lines, s); return nil }
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background(), feed, RunOptions{Live: true, Output: out}) }()
	for _, r := range kvEvents(t, 3) {
		feed.ch <- r
	}
	time.Sleep(110 * time.Millisecond)
	feed.ch <- kvEvents(t, 1)[0]
	close(feed.ch) // the end of a live feed: on_capture_end runs
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lines) < 4 || lines[0] != "tick 3 true true" || lines[len(lines)-1] != "end 1" {
		t.Fatalf("lines = %q", lines)
	}
	for _, l := range lines[1 : len(lines)-1] {
		if l != "tick 0 true true" {
			t.Fatalf("lines = %q", lines)
		}
	}
	waitGoroutines(t, before)
}

func TestOutputError(t *testing.T) {
	lib := NewLibrary(Options{})
	c := loadSource(t, lib, `description = "x"; function on_event() print("line") end`)
	gone := errors.New("client gone")
	n := 0
	err := c.Run(context.Background(), &sliceFeed{raws: kvEvents(t, 100)}, RunOptions{Output: func(string) error {
		n++
		return gone
	}})
	if !errors.Is(err, gone) || n != 1 {
		t.Fatalf("err = %v after %d lines", err, n)
	}
}

func TestUnsafe(t *testing.T) {
	dir := t.TempDir()
	lib := NewLibrary(Options{AllowUnsafe: true})
	var lines []string
	c := loadSource(t, lib, `description = "x"
		function on_capture_end()
			print(type(io.open), type(os.execute), type(os.getenv), type(debug), type(coroutine), type(os.exit))
			local f = io.open(os.getenv("DIR") .. "/out", "w"); f:write("written"); f:close()
			io.write("to the client\n")
		end`)
	t.Setenv("DIR", dir)
	if err := c.Run(context.Background(), &sliceFeed{}, RunOptions{Output: collect(&lines)}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(lines, "|"); got != "function\tfunction\tfunction\ttable\ttable\tfunction|to the client" {
		t.Errorf("output %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "out")); string(b) != "written" {
		t.Errorf("file holds %q", b)
	}
}

// The same chisel runs several times at once, each run with its own
// states (run with -race).
func TestConcurrentRuns(t *testing.T) {
	lib := NewLibrary(Options{})
	c, err := lib.Load("topkinds")
	if err != nil {
		t.Fatal(err)
	}
	raws := kvEvents(t, 500)
	var wg sync.WaitGroup
	outs := make([][]string, 4)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(context.Background(), &sliceFeed{raws: raws}, RunOptions{Output: collect(&outs[i])}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, o := range outs {
		if strings.Join(o, "\n") != "Events              Kind\n"+strings.Repeat("-", 80)+"\n500                 kv.put" {
			t.Fatalf("output %q", o)
		}
	}
}

func TestLibrary(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{
		"echo.lua":   `description = "shadowed by the built-in"`,
		"mine.lua":   "description = \"mine\"\nshort_description = \"my chisel\"\ncategory = \"Test\"\nstream = \"capture\"\nargs = {{name = \"n\", description = \"how many\", argtype = \"int\", optional = true}}\nfunction on_set_arg() return true end",
		"bad.lua":    "description = \"bad\"\nlocal x = nil + 1",
		"helper.lua": "local M = {}\nreturn M",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lib := NewLibrary(Options{Paths: []string{filepath.Join(dir, "missing"), dir}})
	infos, err := lib.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range infos {
		names = append(names, i.Name)
	}
	if got := strings.Join(names, " "); got != "bad counts_by echo logs_by mine netstat proc_exec_time ps spy_changes spy_users table_generator topconns topfiles_bytes topkeys topkinds topprocs_cpu topprocs_file topprocs_net toptags" {
		t.Fatalf("List names %q", got)
	}
	for _, i := range infos {
		switch i.Name {
		case "bad":
			if !strings.Contains(i.Error, filepath.Join(dir, "bad.lua")+":2:") {
				t.Errorf("bad: %+v", i)
			}
		case "echo":
			if i.Source != "builtin" {
				t.Errorf("echo: %+v", i)
			}
		case "mine":
			want := Info{Name: "mine", Category: "Test", ShortDescription: "my chisel", Description: "mine", Stream: "capture",
				Args: []Arg{{Name: "n", Description: "how many", Type: "int", Optional: true}}, Source: filepath.Join(dir, "mine.lua")}
			if fmt.Sprint(i) != fmt.Sprint(want) {
				t.Errorf("mine: %+v", i)
			}
		default:
			if i.Source != "builtin" || i.ShortDescription == "" || i.Category == "" || i.Error != "" {
				t.Errorf("%s: %+v", i.Name, i)
			}
		}
	}
	if i, err := lib.Info("table_generator"); err != nil || i.Usage() != "keys keydescs value valuedesc [filter] [top_number] [value_units]" {
		t.Errorf("Info(table_generator) = %+v, %v", i, err)
	}
	if _, err := lib.Info("spy_change"); err == nil || !strings.Contains(err.Error(), "did you mean spy_changes?") {
		t.Errorf("Info(spy_change): %v", err)
	}
	if _, err := lib.Load("helper"); err == nil || !strings.Contains(err.Error(), "is a module") {
		t.Errorf("Load(helper): %v", err)
	}
	if _, err := lib.Load("../etc/passwd"); err == nil {
		t.Error("Load of a path succeeded")
	}
}
