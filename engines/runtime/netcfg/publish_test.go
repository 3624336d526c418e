package netcfg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// attached sets up a network in the test's namespace and attaches one
// container with an echo server on port 7000.
func attached(t *testing.T) (*Network, Endpoint) {
	t.Helper()
	_, n, ep := attachedIn(t)
	return n, ep
}

// attachedIn is attached, returning the test's namespace too.
func attachedIn(t *testing.T) (netns.NsHandle, *Network, Endpoint) {
	t.Helper()
	ns := inTestNS(t)
	n := newNetwork(t, testBridge, testSubnet)
	ep, err := n.Attach(t.Context(), "pub1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Detach(ep.ID) })
	echoServer(t, ep.NetnsPath, 7000)
	return ns, n, ep
}

var loopback0 = netip.MustParseAddrPort("127.0.0.1:0")

func TestPublishTCP(t *testing.T) {
	testNS, n, ep := attachedIn(t)
	fwd, err := n.Publish(t.Context(), "tcp", loopback0, netip.AddrPortFrom(ep.IP, 7000))
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	// The loopback of the test's namespace reaches the container: several
	// connections, one after the other and at once.
	for range 3 {
		echo(t, fwd.Addr().String())
	}
	// Goroutines on threads of their own in the test's namespace, whose
	// loopback the forward listens on.
	errs := make(chan error)
	for range 4 {
		go func() {
			errs <- inNamespace(testNS, func() error { return echoOnce(fwd.Addr().String()) })
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestPublishBusyPort(t *testing.T) {
	n, ep := attached(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := netip.MustParseAddrPort(ln.Addr().String())
	_, err = n.Publish(t.Context(), "tcp", busy, netip.AddrPortFrom(ep.IP, 7000))
	want := fmt.Sprintf("publish %s: address already in use", busy)
	if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, unix.EADDRINUSE) {
		t.Fatalf("publish on a busy port: %v, want %q wrapping EADDRINUSE", err, want)
	}
	// Published twice: the second is refused the same way.
	fwd, err := n.Publish(t.Context(), "tcp", loopback0, netip.AddrPortFrom(ep.IP, 7000))
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	again := netip.MustParseAddrPort(fwd.Addr().String())
	if _, err := n.Publish(t.Context(), "tcp", again, netip.AddrPortFrom(ep.IP, 7000)); !errors.Is(err, unix.EADDRINUSE) {
		t.Fatalf("publishing %s twice: %v, want address already in use", again, err)
	}
}

// Close ends the listener, every connection (even one still open) and
// all their goroutines, and leaves no file descriptor open.
func TestPublishCloseEndsGoroutines(t *testing.T) {
	n, ep := attached(t)
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)
	fwd, err := n.Publish(t.Context(), "tcp", loopback0, netip.AddrPortFrom(ep.IP, 7000))
	if err != nil {
		t.Fatal(err)
	}
	echo(t, fwd.Addr().String())
	// A connection left open while the forward closes.
	c, err := net.Dial("tcp", fwd.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitFor(t, "the open connection to reach the container", func() bool {
		fwd.mu.Lock()
		defer fwd.mu.Unlock()
		return len(fwd.conns) == 2
	})
	if err := fwd.Close(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("a client connection is still served after Close")
	}
	c.Close()
	waitFor(t, fmt.Sprintf("goroutines back to %d", goroutines), func() bool { return runtime.NumGoroutine() <= goroutines })
	waitFor(t, fmt.Sprintf("open fds back to %d", fds), func() bool { return openFDs(t) <= fds })
	if _, err := net.Dial("tcp", fwd.Addr().String()); err == nil {
		t.Error("the forward still listens after Close")
	}
	if err := fwd.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

// The context the forward was published with owns it: when it ends, so
// does the forward.
func TestPublishContextEnds(t *testing.T) {
	n, ep := attached(t)
	goroutines := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(t.Context())
	fwd, err := n.Publish(ctx, "tcp", loopback0, netip.AddrPortFrom(ep.IP, 7000))
	if err != nil {
		t.Fatal(err)
	}
	echo(t, fwd.Addr().String())
	cancel()
	waitFor(t, "the listener to close", func() bool {
		c, err := net.Dial("tcp", fwd.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	waitFor(t, fmt.Sprintf("goroutines back to %d", goroutines), func() bool { return runtime.NumGoroutine() <= goroutines })
}

func TestPublishUDP(t *testing.T) {
	n, ep := attached(t)
	// A UDP echo server in the container.
	var pc net.PacketConn
	inNS(t, ep.NetnsPath, func() (err error) {
		pc, err = net.ListenPacket("udp", ":7000")
		return err
	})
	served := make(chan struct{})
	go func() {
		defer close(served)
		buf := make([]byte, 1500)
		for {
			k, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:k], from)
		}
	}()
	defer func() {
		pc.Close()
		<-served
	}()

	goroutines := runtime.NumGoroutine()
	fwd, err := n.Publish(t.Context(), "udp", loopback0, netip.AddrPortFrom(ep.IP, 7000))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // two clients, two flows
		c, err := net.Dial("udp", fwd.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		msg := fmt.Sprintf("datagram %d", i)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		k, err := c.Read(buf)
		if err != nil || string(buf[:k]) != msg {
			t.Errorf("udp echo: %q, %v; want %q", buf[:k], err, msg)
		}
		c.Close()
	}
	fwd.Close()
	waitFor(t, fmt.Sprintf("goroutines back to %d", goroutines), func() bool { return runtime.NumGoroutine() <= goroutines })
}

func TestPublishBadArguments(t *testing.T) {
	n, ep := attached(t)
	if _, err := n.Publish(t.Context(), "sctp", loopback0, netip.AddrPortFrom(ep.IP, 7000)); err == nil {
		t.Error("publish sctp: no error")
	}
	if _, err := n.Publish(t.Context(), "tcp", netip.AddrPort{}, netip.AddrPortFrom(ep.IP, 7000)); err == nil {
		t.Error("publish with no host address: no error")
	}
}

// Closing the network closes its forwards: none outlives the namespace
// handle it dials through.
func TestNetworkCloseEndsForwards(t *testing.T) {
	n, ep := attached(t)
	goroutines := runtime.NumGoroutine()
	fwd, err := n.Publish(t.Context(), "tcp", loopback0, netip.AddrPortFrom(ep.IP, 7000))
	if err != nil {
		t.Fatal(err)
	}
	echo(t, fwd.Addr().String())
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", fwd.Addr().String()); err == nil {
		c.Close()
		t.Error("the forward still listens after the network closed")
	}
	waitFor(t, fmt.Sprintf("goroutines back to %d", goroutines), func() bool { return runtime.NumGoroutine() <= goroutines })
	if _, err := n.Publish(t.Context(), "tcp", loopback0, netip.AddrPortFrom(ep.IP, 7000)); err == nil {
		t.Error("publish on a closed network: no error")
	}
}
