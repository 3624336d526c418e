// Package peercred finds who is calling over a loopback TCP connection:
// the uid owning the caller's socket, as the kernel knows it through
// NETLINK_INET_DIAG. The daemon's HTTP listener and the etcd API use it, so
// a network write has an actor just as a socket write does.
package peercred

import (
	"errors"
	"fmt"
	"net"
	"os/user"
	"strconv"
	"sync"

	"github.com/vishvananda/netlink"

	"github.com/cairnhq/cairn/journal"
)

// ErrNoOwner reports that the kernel knows the caller's socket but not who
// owns it any more: the process closed it (an orphaned or TIME_WAIT socket
// reports root, so its uid must not be believed).
var ErrNoOwner = errors.New("the caller's socket has no owner (closed)")

// Owner returns the uid owning the TCP socket at the other end of a
// connection accepted on this host. ours is the accepted connection's local
// address, theirs its remote one: the socket looked up is the caller's,
// whose local address is theirs and remote ours. It fails when no such
// socket exists in this network namespace (another host, a container).
func Owner(ours, theirs *net.TCPAddr) (uid int, err error) {
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
		return -1, ErrNoOwner
	}
	return int(sock.UID), nil
}

// TCPActor is the actor of what a caller at remote causes, the connection
// having been accepted at local, through the listener via ("http",
// "etcd"). For a loopback caller the uid is the kernel's owner of its
// socket; otherwise, or when the kernel does not know, it is -1. The gid is
// never known (-1) and the pid is 0: finding them would mean walking every
// process's descriptors.
func TCPActor(local, remote net.Addr, via string) journal.Actor {
	a := journal.Actor{UID: -1, GID: -1, Via: via, Addr: remote.String()}
	l, lok := local.(*net.TCPAddr)
	r, rok := remote.(*net.TCPAddr)
	if !lok || !rok || !r.IP.IsLoopback() {
		return a
	}
	if uid, err := Owner(l, r); err == nil {
		a.UID, a.User = uid, UserName(uid)
	}
	return a
}

var names sync.Map // uid -> name

// UserName is uid's login name, or "" when it has none; looked up once
// per uid.
func UserName(uid int) string {
	if v, ok := names.Load(uid); ok {
		return v.(string)
	}
	name := ""
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		name = u.Username
	}
	names.Store(uid, name)
	return name
}
