package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// ErrAlreadyRunning reports that a live daemon answers on the socket path.
var ErrAlreadyRunning = errors.New("another cairn daemon is already serving this socket")

// listenSocket listens on a unix socket at path, created with mode 0660.
//
// It never removes a live daemon's socket: it dials first and refuses if
// something answers, and it refuses to remove a path that is not a socket.
func listenSocket(path string) (*net.UnixListener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create socket directory: %w", err)
	}
	stale, err := probeSocket(path)
	if err != nil {
		return nil, err
	}
	if stale {
		// A socket nobody answers on is left over from a daemon that died.
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	}

	// Create the socket with no group/other bits at all, then open it to the
	// group: there is never a moment when others could connect.
	old := unix.Umask(0o177)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	l.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("chmod socket %s: %w", path, err)
	}
	return l, nil
}

// checkSocket refuses a path where a live daemon answers or that is not a
// socket, without changing anything.
func checkSocket(path string) error {
	_, err := probeSocket(path)
	return err
}

// probeSocket reports whether path holds a stale socket (one nobody answers
// on); it fails when a live daemon answers there or the path is not a socket.
func probeSocket(path string) (stale bool, err error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("inspect socket path %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return false, fmt.Errorf("socket path %s exists and is not a socket (%s); remove it or choose another --socket", path, fi.Mode().Type())
	}
	c, derr := net.DialTimeout("unix", path, time.Second)
	if derr == nil {
		c.Close()
		return false, fmt.Errorf("%w: %s (stop it first, or use another --socket)", ErrAlreadyRunning, path)
	}
	return true, nil
}

// Peer is the identity of the process at the other end of a connection, as
// the kernel reports it (SO_PEERCRED).
type Peer struct {
	UID, GID, PID int
	User, Comm    string
}

// peerOf reads a unix connection's peer credentials once.
func peerOf(c *net.UnixConn) (Peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	if cerr != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", cerr)
	}
	p := Peer{UID: int(cred.Uid), GID: int(cred.Gid), PID: int(cred.Pid)}
	p.User = userName(p.UID)
	p.Comm = procComm(p.PID)
	return p, nil
}
