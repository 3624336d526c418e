package daemon

import (
	"net"
	"os"
	"testing"

	"github.com/cairnhq/cairn/internal/ascaller"
)

// loopbackPair returns both ends of a loopback TCP connection: the one
// dialed by dial and the one the listener accepted.
func loopbackPair(t *testing.T, dial func(addr string) (net.Conn, error)) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = dial(ln.Addr().String())
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

func dialTCP(addr string) (net.Conn, error) { return net.Dial("tcp", addr) }

// dialAs dials with a socket created under uid's filesystem credentials,
// which is whom the kernel records as the socket's owner.
func dialAs(uid int) func(string) (net.Conn, error) {
	return func(addr string) (c net.Conn, err error) {
		err = ascaller.Do(ascaller.Cred{UID: uid, GID: uid}, func() error {
			c, err = net.Dial("tcp", addr)
			return err
		})
		return c, err
	}
}

func TestInetOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("owning a socket as another uid needs root (setfsuid); run the tests as root to cover the inet_diag lookup")
	}
	for _, tc := range []struct {
		name string
		dial func(string) (net.Conn, error)
		want int
	}{
		{"root", dialTCP, 0},
		{"nobody", dialAs(65534), 65534},
		{"uid 1234 without a name", dialAs(1234), 1234},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, srv := loopbackPair(t, tc.dial)
			a := httpActor(srv.LocalAddr(), srv.RemoteAddr())
			if a.UID != tc.want || a.Via != "http" || a.Addr != srv.RemoteAddr().String() || a.PID != 0 || a.GID != -1 {
				t.Fatalf("actor %+v, want uid %d via http from %s, gid -1, pid 0", a, tc.want, srv.RemoteAddr())
			}
			if tc.want == 65534 && a.User == "" {
				t.Errorf("actor %+v: no user name for uid 65534", a)
			}
		})
	}
}

// TestInetOwnerClosed: once the caller closed its socket the kernel keeps
// it orphaned (FIN_WAIT2) and reports no owner, or root on older kernels;
// either way the uid is unknown, never root.
func TestInetOwnerClosed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("owning a socket as another uid needs root (setfsuid); run the tests as root to cover the inet_diag lookup")
	}
	cl, srv := loopbackPair(t, dialAs(65534))
	cl.Close()
	if a := httpActor(srv.LocalAddr(), srv.RemoteAddr()); a.UID != -1 {
		t.Fatalf("actor of a closed caller %+v, want uid -1", a)
	}
}

// TestInetOwnerRemote: a caller that is not on loopback is not looked up.
func TestInetOwnerRemote(t *testing.T) {
	local := &net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 8500}
	remote := &net.TCPAddr{IP: net.ParseIP("10.0.0.2"), Port: 40000}
	a := httpActor(local, remote)
	if a.UID != -1 || a.GID != -1 || a.Via != "http" || a.Addr != "10.0.0.2:40000" || a.User != "" {
		t.Fatalf("remote actor %+v, want uid -1 gid -1 via http addr 10.0.0.2:40000", a)
	}
}
