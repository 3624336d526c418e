package infra

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestDriftWatcherStopsWithACheckPending(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := newDriftWatcher(ctx, e.m)
	d.changed("net", "nowhere")
	done := make(chan struct{})
	go func() { d.stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("stop hung with a check pending")
	}
	d.changed("net", "nowhere") // after stop: nothing
}

// TestDriftWatcherEndsAtStop: the drift watcher's subscriptions run
// under a context the module owns, even when the daemon's never ends: an
// import subscribes before it answers (on the caller's goroutine, not one
// nothing waits for), and after Stop no goroutine of the module is left.
func TestDriftWatcherEndsAtStop(t *testing.T) {
	e := &env{t: t, dir: t.TempDir(), drift: true}
	e.open()
	t.Cleanup(e.close)
	before := goleak.IgnoreCurrent() // the journal's own
	cfg := filepath.Join(t.TempDir(), "ws")
	writeConfig(t, cfg, map[string]string{"main.hcl": `
resource "net_link" "lo" {
  name = "lo"
  kind = "dummy"
}`})
	e.ok(fmt.Sprintf("infra import net_link.lo /lo %s", cfg))
	e.m.drift.mu.Lock()
	scopes := fmt.Sprint(e.m.drift.scopes)
	e.m.drift.mu.Unlock()
	if scopes != "map[net\x00:true]" {
		t.Fatalf("after the import the watcher follows %s, want the daemon's own namespace", scopes)
	}
	e.m.drift.changed("net", "") // a check due when the module stops
	// Stop alone, the daemon's context still live: nothing is left.
	if err := e.m.Stop(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, before)
}
