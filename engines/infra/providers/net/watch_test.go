package netprovider

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

func TestScope(t *testing.T) {
	p := New()
	for _, typ := range []string{"net_link", "net_address", "net_route"} {
		if scope, ok := p.Scope(typ, provider.Values{"namespace": "ns1"}); !ok || scope != "ns1" {
			t.Errorf("%s: %q %t", typ, scope, ok)
		}
		if scope, ok := p.Scope(typ, provider.Values{}); !ok || scope != "" {
			t.Errorf("%s in the daemon's namespace: %q %t", typ, scope, ok)
		}
	}
	if _, ok := p.Scope("net_namespace", provider.Values{"name": "ns1"}); ok {
		t.Error("net_namespace is watched")
	}
}

// waitChange waits up to a second for a change in scope.
func waitChange(t *testing.T, ch <-chan provider.Change, scope, what string) {
	t.Helper()
	deadline := time.After(time.Second)
	for {
		select {
		case c := <-ch:
			if c.Scope == scope {
				return
			}
		case <-deadline:
			t.Fatalf("no change in %q within 1s of %s", scope, what)
		}
	}
}

// drain empties ch of what earlier changes queued.
func drain(ch <-chan provider.Change) {
	for {
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond):
			return
		}
	}
}

func TestWatchSeesChangesByHand(t *testing.T) {
	ns := testNS(t)
	other := testNS(t)
	ip(t, "-n", ns, "link", "add", "br0", "type", "bridge")
	before := goleak.IgnoreCurrent()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan provider.Change, 1000)
	errs := New().Watch(ctx, []string{ns, other, ns}, func(c provider.Change) { ch <- c })
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	ip(t, "-n", ns, "link", "set", "br0", "mtu", "9000")
	waitChange(t, ch, ns, "ip link set br0 mtu 9000")
	drain(ch)
	ip(t, "-n", ns, "addr", "add", "10.0.0.1/24", "dev", "br0")
	waitChange(t, ch, ns, "ip addr add")
	drain(ch)
	ip(t, "-n", other, "link", "set", "lo", "up")
	waitChange(t, ch, other, "ip link set lo up")
	drain(ch)
	ip(t, "-n", other, "route", "add", "10.5.0.0/16", "dev", "lo")
	waitChange(t, ch, other, "ip route add")

	cancel()
	goleak.VerifyNone(t, before)
}

func TestWatchMissingNamespace(t *testing.T) {
	ns := testNS(t)
	missing := nsName()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := make(chan provider.Change, 100)
	// "" is the daemon's own namespace: watched, though nothing here
	// changes it.
	errs := New().Watch(ctx, []string{missing, ns, ""}, func(c provider.Change) { ch <- c })
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), missing) {
		t.Fatalf("errors %v, want one naming %s", errs, missing)
	}
	ip(t, "-n", ns, "link", "set", "lo", "up")
	waitChange(t, ch, ns, "ip link set lo up")
}
