package daemon

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

// publishModule keeps the Publish the daemon hands it.
type publishModule struct {
	publish func(subject string, msg []byte) error
}

func (m *publishModule) Name() string                         { return "pub" }
func (m *publishModule) Flags(*flag.FlagSet)                  {}
func (m *publishModule) Engines() map[string][]journal.Engine { return nil }
func (m *publishModule) Verbs() []engines.Verb                { return nil }
func (m *publishModule) Stop() error                          { return nil }
func (m *publishModule) Start(_ context.Context, h engines.Host) error {
	m.publish = h.Publish
	return nil
}

// TestModulePublish: a module's Publish reaches a NATS subscriber on its
// subject; a stream's subjects (cairn.audit.>), subjects outside cairn.
// and wildcards are refused; with --nats off a module has no Publish.
func TestModulePublish(t *testing.T) {
	run := func(natsAddr string) (*Server, *publishModule) {
		dir, err := os.MkdirTemp("", "cairn-d-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		ctx, stop := context.WithCancel(context.Background())
		mod := &publishModule{}
		ready := make(chan *Server, 1)
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, Config{
				DataDir: filepath.Join(dir, "data"), Socket: filepath.Join(dir, "s"),
				NATS: natsAddr, NATSAuth: "none", HTTP: "off",
				Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
				Modules: []engines.Module{mod},
			}, func(s *Server) { ready <- s })
		}()
		t.Cleanup(func() { stop(); <-done })
		select {
		case s := <-ready:
			return s, mod
		case err := <-done:
			t.Fatalf("daemon did not start: %v", err)
		}
		return nil, nil
	}
	if _, mod := run("off"); mod.publish != nil {
		t.Fatal("a module has Publish with --nats off")
	}
	s, mod := run("127.0.0.1:0")
	nc, err := nats.Connect(s.natsURL(), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("cairn.alerts.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := mod.publish("cairn.alerts.Hot", []byte(`{"status":"firing"}`)); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(10 * time.Second)
	if err != nil || m.Subject != "cairn.alerts.Hot" || string(m.Data) != `{"status":"firing"}` {
		t.Fatalf("message %+v, %v", m, err)
	}
	for subject, want := range map[string]string{
		"cairn.audit.alert.firing": "carries the audit stream's events only",
		"alerts.Hot":               "under cairn.>",
		"cairn.alerts.*":           "literal subjects",
	} {
		if err := mod.publish(subject, []byte("x")); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("publish on %s: %v, want %q", subject, err, want)
		}
	}
}
