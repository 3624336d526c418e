package peercred

import (
	"errors"
	"net"
	"os"
	"testing"

	"github.com/vishvananda/netlink"
)

// pair is both ends of a loopback TCP connection on network ("tcp4",
// "tcp6"): the dialed one and the accepted one.
func pair(t testing.TB, network, addr string) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("no %s loopback here: %v", network, err)
	}
	defer ln.Close()
	client, err = net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

// TestOwnerExact: the exact lookup answers what netlink's dump finds for
// the same socket, over IPv4 and IPv6 loopback, and fails for a socket
// that does not exist.
func TestOwnerExact(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{{"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}} {
		t.Run(tc.network, func(t *testing.T) {
			_, srv := pair(t, tc.network, tc.addr)
			ours, theirs := srv.LocalAddr().(*net.TCPAddr), srv.RemoteAddr().(*net.TCPAddr)
			uid, err := Owner(ours, theirs)
			if err != nil {
				t.Fatal(err)
			}
			if uid != os.Geteuid() {
				t.Errorf("Owner = %d, want this process's uid %d", uid, os.Geteuid())
			}
			dump, err := netlink.SocketGet(theirs, ours)
			if err != nil {
				t.Fatal(err)
			}
			if int(dump.UID) != uid {
				t.Errorf("Owner = %d, the dump says %d", uid, dump.UID)
			}
			gone := &net.TCPAddr{IP: theirs.IP, Port: ours.Port} // no socket from our own port to itself
			if _, err := Owner(ours, gone); err == nil || errors.Is(err, ErrNoOwner) {
				t.Errorf("Owner of a socket that does not exist: %v, want a lookup error", err)
			}
		})
	}
}

// BenchmarkOwner is one lookup: the exact request against netlink's dump
// (which walks every TCP socket of the host).
func BenchmarkOwner(b *testing.B) {
	_, srv := pair(b, "tcp4", "127.0.0.1:0")
	ours, theirs := srv.LocalAddr().(*net.TCPAddr), srv.RemoteAddr().(*net.TCPAddr)
	b.Run("exact", func(b *testing.B) {
		for b.Loop() {
			if _, err := Owner(ours, theirs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("dump", func(b *testing.B) {
		for b.Loop() {
			if _, err := netlink.SocketGet(theirs, ours); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestOwnerNotAListener: with no connected socket for the four-tuple, the
// kernel's exact lookup falls back to a listener on the caller's address,
// which is not the caller's: Owner says it knows no owner.
func TestOwnerNotAListener(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	other, err := net.Listen("tcp4", "127.0.0.1:0") // a port nobody connects from
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	uid, err := Owner(other.Addr().(*net.TCPAddr), ln.Addr().(*net.TCPAddr))
	if err == nil {
		t.Fatalf("Owner answered uid %d: the listener's, not a caller's", uid)
	}
}
