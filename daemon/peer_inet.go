package daemon

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"

	"github.com/cairnhq/cairn/journal"
)

// errNoOwner reports that the kernel knows the caller's socket but not who
// owns it any more: the process closed it (an orphaned or TIME_WAIT socket
// reports root, so its uid must not be believed).
var errNoOwner = errors.New("the caller's socket has no owner (closed)")

// inetOwner returns the uid owning the TCP socket at the other end of a
// connection accepted on this host, asking the kernel through
// NETLINK_INET_DIAG. ours is the accepted connection's local address,
// theirs its remote one: the socket looked up is the caller's, whose local
// address is theirs and remote ours. It fails when no such socket exists in
// this network namespace (the caller is on another host or in a container).
func inetOwner(ours, theirs *net.TCPAddr) (uid int, err error) {
	var sock *netlink.Socket
	for range 3 {
		sock, err = netlink.SocketGet(theirs, ours)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return -1, fmt.Errorf("inet_diag %s -> %s: %w", theirs, ours, err)
	}
	if sock.INode == 0 {
		return -1, errNoOwner
	}
	return int(sock.UID), nil
}

// httpActor is the actor of what an HTTP caller at remote causes, the
// connection having been accepted at local. For a loopback caller the uid
// is the kernel's owner of its socket; otherwise, or when the kernel does
// not know, the uid is -1. The gid is never known (-1) and the pid is 0:
// finding them would mean walking every process's descriptors.
func httpActor(local, remote net.Addr) journal.Actor {
	a := journal.Actor{UID: -1, GID: -1, Via: "http", Addr: remote.String()}
	l, lok := local.(*net.TCPAddr)
	r, rok := remote.(*net.TCPAddr)
	if !lok || !rok || !r.IP.IsLoopback() {
		return a
	}
	if uid, err := inetOwner(l, r); err == nil {
		a.UID, a.User = uid, userName(uid)
	}
	return a
}
