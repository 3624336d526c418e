package kv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

// clock is an injectable clock shared by the journal and the store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Microsecond) // commit times stay strictly increasing
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a Store on an in-memory journal that can be restarted.
type env struct {
	t      testing.TB
	fs     vfs.FS
	clock  *clock
	j      *journal.Journal
	s      *Store
	cancel context.CancelFunc
	table  *dsl.Table
	nextID int64
	tick   time.Duration
	dir    string
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func newEnv(t testing.TB) *env {
	e := &env{t: t, fs: vfs.NewMem(), clock: &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, tick: time.Hour}
	e.open()
	t.Cleanup(e.close)
	return e
}

func (e *env) open() {
	e.t.Helper()
	e.s = New(Options{Now: e.clock.Now, Logger: quietLog, ExpiryEvery: e.tick})
	e.s.newID = func() int64 { e.nextID++; return e.nextID }
	j, err := journal.Open(journal.Options{
		Dir: e.dataDir(), FS: e.fs, Node: "test", Logger: quietLog, Now: e.clock.Now,
		Engines: map[string][]journal.Engine{journal.Audit: {e.s.Engine()}},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.j = j
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	if err := e.s.Start(ctx, j); err != nil {
		e.t.Fatal(err)
	}
	e.table = dsl.NewTable()
	for _, v := range verbs(e.s) {
		e.table.Register(v.Spec)
	}
}

func (e *env) dataDir() string {
	if e.dir != "" {
		return e.dir
	}
	return "data"
}

func (e *env) close() {
	if e.j == nil {
		return
	}
	e.cancel()
	e.s.Stop()
	if err := e.j.Close(); err != nil {
		e.t.Error(err)
	}
	e.j = nil
}

func (e *env) restart() { e.close(); e.open() }

// fakeRequest is the engines.Request a handler sees, recording answers.
type fakeRequest struct {
	st  *dsl.Statement
	out []string
	mu  sync.Mutex
}

func (r *fakeRequest) Statement() *dsl.Statement { return r.st }
func (r *fakeRequest) Actor() journal.Actor {
	return journal.Actor{UID: 1000, GID: 1000, PID: 42, User: "alice", Via: "socket"}
}
func (r *fakeRequest) add(prefix string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.out = append(r.out, prefix+string(b))
	r.mu.Unlock()
	return nil
}
func (r *fakeRequest) Row(v any) error     { return r.add("", v) }
func (r *fakeRequest) Event(v any) error   { return r.add("event ", v) }
func (r *fakeRequest) Line(s string) error { return r.add("line ", s) }

// run runs DSL statements through the verbs' handlers and returns their
// answers, one per line; an error is "error CODE: MESSAGE".
func (e *env) run(ctx context.Context, src string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(src), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		fmt.Fprintf(&b, "> %s\n", line)
		stmts, err := dsl.Parse(line, e.table)
		if err != nil {
			fmt.Fprintf(&b, "parse error: %v\n", err)
			continue
		}
		for _, st := range stmts {
			req := &fakeRequest{st: st}
			err := e.handler(st.Spec.Verb)(ctx, req)
			for _, o := range req.out {
				b.WriteString(o + "\n")
			}
			if err != nil {
				b.WriteString(errString(err) + "\n")
			}
		}
	}
	return b.String()
}

func errString(err error) string {
	if pe, ok := err.(*engines.PosError); ok {
		return fmt.Sprintf("error %s: %s", pe.Code, pe.Error())
	}
	return fmt.Sprintf("error %s: %v", wire.CodeOf(err), err)
}

func (e *env) handler(verb string) engines.Handler {
	for _, v := range verbs(e.s) {
		if v.Verb == verb {
			return v.Run
		}
	}
	e.t.Fatalf("no verb %q", verb)
	return nil
}

// projection returns every key and value of the kv projection.
func (e *env) projection() map[string]string {
	sn := e.j.Stream(journal.Audit).Snapshot()
	defer sn.Close()
	m := map[string]string{}
	if err := sn.Iter(Name, nil, nil, func(k, v []byte) error {
		m[string(k)] = string(v)
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return m
}
