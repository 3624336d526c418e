package daemon

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

// logsModule declares a capture-like stream of its own and an HTTP route
// that writes to it, as Fluentd's in_http will: the two seams a new engine
// plugs into.
type logsModule struct{ j *journal.Journal }

func (m *logsModule) Name() string                         { return "logs" }
func (m *logsModule) Flags(*flag.FlagSet)                  {}
func (m *logsModule) Engines() map[string][]journal.Engine { return nil }
func (m *logsModule) Verbs() []engines.Verb                { return nil }
func (m *logsModule) Stop() error                          { return nil }
func (m *logsModule) Start(_ context.Context, h engines.Host) error {
	m.j = h.Journal
	return nil
}

func (m *logsModule) Streams() []journal.StreamSpec {
	return []journal.StreamSpec{{Name: "logs", Class: journal.CaptureLike, Retention: journal.Retention{MaxAge: time.Hour}}}
}

func (m *logsModule) HTTPRoutes() []engines.Route {
	return []engines.Route{{Pattern: "POST /logs/{tag}", Handler: http.HandlerFunc(m.serveLog)}}
}

func (m *logsModule) serveLog(w http.ResponseWriter, r *http.Request) {
	actor, _ := engines.ActorFrom(r.Context())
	msg, _ := io.ReadAll(r.Body)
	_, err := m.j.Stream("logs").Append(r.Context(), &journal.Body{
		Kind: "logs.record", Subject: r.PathValue("tag"), Actor: actor, Data: map[string]any{"message": string(msg)},
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

var (
	_ engines.StreamDeclarer = (*logsModule)(nil)
	_ engines.HTTPRouter     = (*logsModule)(nil)
)

// TestModuleStreamAndRoute runs a daemon with a module that declares the
// stream "logs" and a route writing to it: a POST lands in logs with the
// caller as actor, and the socket's verbs read, verify and list the stream.
func TestModuleStreamAndRoute(t *testing.T) {
	dir, err := os.MkdirTemp("", "cairn-d-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	ready := make(chan *Server, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{
			DataDir: filepath.Join(dir, "data"),
			Socket:  filepath.Join(dir, "s"),
			NATS:    "off",
			HTTP:    "127.0.0.1:0",
			Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
			Modules: []engines.Module{&logsModule{}},
		}, func(s *Server) { ready <- s })
	}()
	var s *Server
	select {
	case s = <-ready:
	case err := <-done:
		t.Fatalf("daemon did not start: %v", err)
	}

	resp, err := http.Post("http://"+s.httpAddr()+"/logs/web", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /logs/web: %s", resp.Status)
	}

	c, err := client.Dial(ctx, filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Do(ctx, "events stream=logs")
	if err != nil {
		t.Fatal(err)
	}
	var ev journal.Event
	if len(res.Events) != 1 || json.Unmarshal(res.Events[0], &ev) != nil {
		t.Fatalf("events stream=logs: %s", res.Events)
	}
	if ev.Stream != "logs" || ev.Kind != "logs.record" || ev.Subject != "web" || ev.Actor.Via != "http" || ev.Actor.UID != os.Geteuid() {
		t.Fatalf("logs event %+v, want logs.record about web, actor uid %d via http", ev, os.Geteuid())
	}
	if _, err := c.Do(ctx, "journal verify stream=logs"); err != nil {
		t.Fatalf("journal verify stream=logs: %v", err)
	}
	res, err = c.Do(ctx, "status")
	if err != nil {
		t.Fatal(err)
	}
	var st wire.StatusRow
	if err := json.Unmarshal(res.Rows[0], &st); err != nil || st.Streams["logs"].LastSeq != 1 || st.HTTP != s.httpAddr() {
		t.Fatalf("status %s: want streams.logs.last_seq 1 and http %s", res.Rows[0], s.httpAddr())
	}
	if _, err := c.Do(ctx, "events stream=nope"); err == nil || !strings.Contains(err.Error(), "streams are audit, capture, logs") {
		t.Fatalf("events stream=nope: %v, want the streams listed", err)
	}

	stop()
	if err := <-done; err != nil {
		t.Fatalf("daemon stopped with %v", err)
	}
}
