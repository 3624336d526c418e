// Package peercred finds who is calling over a loopback TCP connection:
// the uid owning the caller's socket, as the kernel knows it through
// NETLINK_INET_DIAG. The daemon's HTTP listener and the etcd API use it, so
// a network write has an actor just as a socket write does.
package peercred

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os/user"
	"strconv"
	"sync"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

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
//
// The lookup is one exact SOCK_DIAG_BY_FAMILY request for the four-tuple:
// the kernel finds the socket in its hash (inet_diag_find_one_icsk), where
// a dump (netlink.SocketGet) walks every TCP socket of the host, a
// millisecond each time on a host with a large hash table.
func Owner(ours, theirs *net.TCPAddr) (uid int, err error) {
	req, err := diagRequest(theirs, ours)
	if err != nil {
		return -1, err
	}
	msgs, err := req.Execute(unix.NETLINK_INET_DIAG, nl.SOCK_DIAG_BY_FAMILY)
	if err != nil {
		return -1, fmt.Errorf("inet_diag %s -> %s: %w", theirs, ours, err)
	}
	if len(msgs) != 1 {
		return -1, fmt.Errorf("inet_diag %s -> %s: %d answers, want one", theirs, ours, len(msgs))
	}
	u, inode, err := diagOwner(msgs[0])
	if err != nil {
		return -1, fmt.Errorf("inet_diag %s -> %s: %w", theirs, ours, err)
	}
	if inode == 0 {
		return -1, ErrNoOwner
	}
	// The exact lookup falls back to a listener on the caller's address
	// when its connected socket is gone: that is someone else's socket.
	if msgs[0][1] == tcpListen {
		return -1, ErrNoOwner
	}
	return int(u), nil
}

// tcpListen is TCP_LISTEN, idiag_state of a listening socket.
const tcpListen = 10

// diagRequest is the exact request (no NLM_F_DUMP) for the TCP socket whose
// local address is src and remote dst: struct inet_diag_req_v2.
func diagRequest(src, dst *net.TCPAddr) (*nl.NetlinkRequest, error) {
	b := make([]byte, 56)
	switch {
	case src.IP.To4() != nil && dst.IP.To4() != nil:
		b[0] = unix.AF_INET
		copy(b[8+4:], src.IP.To4())
		copy(b[8+4+16:], dst.IP.To4())
	case src.IP.To16() != nil && dst.IP.To16() != nil:
		b[0] = unix.AF_INET6
		copy(b[8+4:], src.IP.To16())
		copy(b[8+4+16:], dst.IP.To16())
	default:
		return nil, fmt.Errorf("inet_diag %s -> %s: not an IP address pair", src, dst)
	}
	b[1] = unix.IPPROTO_TCP
	ne := nl.NativeEndian()
	ne.PutUint32(b[4:], 0xffffffff) // every state
	binary.BigEndian.PutUint16(b[8:], uint16(src.Port))
	binary.BigEndian.PutUint16(b[10:], uint16(dst.Port))
	// b[44:48] the interface: any; the cookie: none.
	ne.PutUint32(b[48:], nl.TCPDIAG_NOCOOKIE)
	ne.PutUint32(b[52:], nl.TCPDIAG_NOCOOKIE)
	req := nl.NewNetlinkRequest(nl.SOCK_DIAG_BY_FAMILY, 0)
	req.AddRawData(b)
	return req, nil
}

// diagOwner reads the uid and the inode of struct inet_diag_msg.
func diagOwner(m []byte) (uid, inode uint32, err error) {
	if len(m) < 72 {
		return 0, 0, fmt.Errorf("an answer of %d bytes, want at least 72", len(m))
	}
	ne := nl.NativeEndian()
	return ne.Uint32(m[64:]), ne.Uint32(m[68:]), nil
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
