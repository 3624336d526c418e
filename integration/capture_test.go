package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/client"
)

// captureEvent is a capture event as -o json and the client answer it.
type captureEvent struct {
	wireEvent
	Evt struct {
		Type string `json:"type"`
	} `json:"evt"`
}

func captureEvents(t *testing.T, c *client.Client, stmt string) []captureEvent {
	t.Helper()
	res := do(t, c, stmt)
	evs := make([]captureEvent, len(res.Events))
	for i, raw := range res.Events {
		if err := json.Unmarshal(raw, &evs[i]); err != nil {
			t.Fatalf("%s: event %s: %v", stmt, raw, err)
		}
	}
	return evs
}

// pollCapture reruns stmt until match finds an event or the deadline passes.
func pollCapture(t *testing.T, c *client.Client, stmt string, what string, match func(captureEvent) bool) captureEvent {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		evs := captureEvents(t, c, stmt)
		for _, ev := range evs {
			if match(ev) {
				return ev
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no event with %s after 20s; got %d events: %+v", stmt, what, len(evs), evs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// requireIP returns the path of ip(8), skipping when it is missing — except
// in CI, which runs as root with iproute2 installed.
func requireIP(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("ip")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("ip (iproute2) not found, and CI must run the capture net test: %v", err)
		}
		t.Skipf("ip (iproute2) not found: %v", err)
	}
	return p
}

func runIP(t *testing.T, ip string, args ...string) {
	t.Helper()
	if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestCaptureNet creates a network namespace, follows it with the net
// source, and finds the veth pair and the address made inside it. Nothing
// outside that namespace is touched.
func TestCaptureNet(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace; CI runs as root")
	}
	ip := requireIP(t)
	var rb [4]byte
	if _, err := rand.Read(rb[:]); err != nil {
		t.Fatal(err)
	}
	ns := "cairn-test-" + hex.EncodeToString(rb[:])
	runIP(t, ip, "netns", "add", ns)
	t.Cleanup(func() {
		if out, err := exec.Command(ip, "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", ns, err, out)
		}
	})

	d := startDaemon(t)
	c := dial(t, d)
	do(t, c, "capture start net ns="+ns)
	runIP(t, ip, "-n", ns, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
	runIP(t, ip, "-n", ns, "addr", "add", "10.250.0.1/24", "dev", "veth0")
	runIP(t, ip, "-n", ns, "link", "set", "veth0", "up")

	link := pollCapture(t, c, "events stream=capture kind=capture.link", "link_add of veth0", func(ev captureEvent) bool {
		return ev.Evt.Type == "link_add" && ev.Data["name"] == "veth0"
	})
	if link.Data["kind"] != "veth" || link.Data["ns"] != ns || link.Subject != "link/veth0" {
		t.Errorf("link event data %v subject %q, want kind veth, ns %s, subject link/veth0", link.Data, link.Subject, ns)
	}
	pollCapture(t, c, "events stream=capture kind=capture.link", "link_add of veth1", func(ev captureEvent) bool {
		return ev.Evt.Type == "link_add" && ev.Data["name"] == "veth1"
	})
	addr := pollCapture(t, c, "events stream=capture kind=capture.addr", "addr_add of 10.250.0.1/24", func(ev captureEvent) bool {
		return ev.Evt.Type == "addr_add" && ev.Data["cidr"] == "10.250.0.1/24"
	})
	if addr.Data["link"] != "veth0" {
		t.Errorf("addr event data %v, want link veth0", addr.Data)
	}
	// The CEL filter sees the same names.
	evs := captureEvents(t, c, `events stream=capture where 'evt.type == "link_add" && data.name == "veth1"'`)
	if len(evs) == 0 {
		t.Error(`where 'evt.type == "link_add" && data.name == "veth1"' found nothing`)
	}

	res := do(t, c, "capture status")
	found := false
	for _, raw := range res.Rows {
		var row struct {
			Source  string `json:"source"`
			Running bool   `json:"running"`
			Events  int64  `json:"events"`
		}
		if err := json.Unmarshal(raw, &row); err != nil {
			t.Fatal(err)
		}
		if row.Source == "net" {
			found = true
			if !row.Running || row.Events < 3 {
				t.Errorf("capture status net = %+v, want running with events", row)
			}
		}
	}
	if !found {
		t.Error("capture status has no net row")
	}
	// Already running: a clear error; then stop answers.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Do(ctx, "capture start net"); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second capture start net: %v, want already running", err)
	}
	do(t, c, "capture stop net")

	// A namespace that does not exist is refused with the reason.
	_, err := c.Do(ctx, "capture start net ns=cairn-test-none-"+hex.EncodeToString(rb[:]))
	var de *client.DaemonError
	if !errors.As(err, &de) || de.Code != "failed_precondition" {
		t.Errorf("capture start net in a missing namespace: %v, want failed_precondition", err)
	}
}

// TestCaptureOverload floods a tiny capture buffer with the synthetic
// source: events are dropped and a capture.drop event counts them, and
// audit writes keep succeeding meanwhile.
func TestCaptureOverload(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, withFlags("--capture-buffer", "64"))
	c := dial(t, d)
	do(t, c, "capture start synthetic")

	deadline := time.Now().Add(30 * time.Second)
	var drop captureEvent
	for i := 0; ; i++ {
		// Audit round trips while the capture stream is flooded.
		if _, err := tryEmit(c, fmt.Sprintf("emit app.overload n=%d", i)); err != nil {
			t.Fatalf("audit emit during a capture flood: %v", err)
		}
		evs := captureEvents(t, c, "events stream=capture kind=capture.drop limit=1")
		if len(evs) > 0 {
			drop = evs[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no capture.drop event after 30s of synthetic events into a buffer of 64")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if drop.Data["source"] != "synthetic" {
		t.Errorf("capture.drop data = %v, want source synthetic", drop.Data)
	}
	if n, ok := drop.Data["count"].(float64); !ok || n < 1 {
		t.Errorf("capture.drop count = %#v, want a positive number", drop.Data["count"])
	}
	for i := 0; i < 20; i++ {
		if _, err := tryEmit(c, fmt.Sprintf("emit app.overload n=%d", 1000+i)); err != nil {
			t.Fatalf("audit emit during a capture flood: %v", err)
		}
	}
	do(t, c, "capture stop")
	if got := len(events(t, c, "events kind=app.overload")); got < 21 {
		t.Errorf("%d audit events stored, want at least 21", got)
	}
}
