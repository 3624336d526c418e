package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/internal/peercred"
)

// ErrAlreadyRunning reports that a live daemon answers on the socket path.
var ErrAlreadyRunning = errors.New("another cairn daemon is already serving this socket")

// socketListener is the daemon's socket. Closing it removes the socket
// file, if it is still the one this listener made.
type socketListener struct {
	*net.UnixListener
	path string
	ino  uint64
}

// Close stops listening and removes the socket file.
func (l *socketListener) Close() error {
	err := l.UnixListener.Close()
	if fi, serr := os.Lstat(l.path); serr == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Ino == l.ino {
			os.Remove(l.path)
		}
	}
	return err
}

// listenSocket listens on a unix socket at path, created with mode 0660.
//
// It never removes a live daemon's socket: it dials first and refuses if
// something answers, and it refuses to remove a path that is not a socket.
// The socket is bound in a private directory beside path, opened to the
// group there, and renamed into place: no moment exists when others could
// connect, and no process-wide umask is touched.
//
// gid, when not -1, becomes the socket's group, so its members may connect.
func listenSocket(path string, gid int) (*socketListener, error) {
	dir := filepath.Dir(path)
	if err := ensureSocketDir(dir); err != nil {
		return nil, err
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
	tmp, err := os.MkdirTemp(dir, ".cairn-sock-")
	if err != nil {
		return nil, fmt.Errorf("create socket: %w", err)
	}
	defer os.RemoveAll(tmp)
	tmpPath := filepath.Join(tmp, "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmpPath, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	l.SetUnlinkOnClose(false)
	fail := func(err error) (*socketListener, error) {
		l.Close()
		return nil, err
	}
	if err := os.Chmod(tmpPath, 0o660); err != nil {
		return fail(fmt.Errorf("chmod socket: %w", err))
	}
	if gid != -1 {
		if err := os.Lchown(tmpPath, -1, gid); err != nil {
			return fail(fmt.Errorf("give the socket to group %d (--socket-group): %w", gid, err))
		}
	}
	fi, err := os.Lstat(tmpPath)
	if err != nil {
		return fail(fmt.Errorf("stat socket: %w", err))
	}
	if err := os.Rename(tmpPath, path); err != nil {
		return fail(fmt.Errorf("place socket at %s: %w", path, err))
	}
	return &socketListener{UnixListener: l, path: path, ino: fi.Sys().(*syscall.Stat_t).Ino}, nil
}

// ensureSocketDir creates the socket's directory if needed and refuses one
// that another user could use to plant or swap the socket: it must belong
// to us or to root and not be writable by others (unless sticky, as /tmp).
func ensureSocketDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create socket directory: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("socket directory: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok {
		return fmt.Errorf("socket directory %s is not a directory", dir)
	}
	if int(st.Uid) != os.Geteuid() && st.Uid != 0 {
		return fmt.Errorf("socket directory %s belongs to uid %d, not to us (%d) or root; choose another --socket", dir, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0 {
		return fmt.Errorf("socket directory %s is writable by others (%v); choose another --socket or remove those bits", dir, fi.Mode().Perm())
	}
	return nil
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
	Groups        []int // supplementary groups at connect (SO_PEERGROUPS)
}

// peerOf reads a unix connection's peer credentials once.
func peerOf(c *net.UnixConn) (Peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var cerr error
	var groups []int
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		groups = peerGroups(int(fd))
	}); err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	if cerr != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", cerr)
	}
	p := Peer{UID: int(cred.Uid), GID: int(cred.Gid), PID: int(cred.Pid), Groups: groups}
	p.User = peercred.UserName(p.UID)
	p.Comm = procComm(p.PID)
	return p, nil
}

// peerGroups reads the supplementary groups the peer had when it connected
// (SO_PEERGROUPS, Linux 4.13+), or nil when the kernel does not say.
func peerGroups(fd int) []int {
	buf := make([]uint32, 64)
	for {
		n := uint32(len(buf) * 4)
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		switch {
		case errno == unix.ERANGE && int(n) > len(buf)*4:
			buf = make([]uint32, n/4)
			continue
		case errno != 0:
			return nil
		}
		groups := make([]int, n/4)
		for i := range groups {
			groups[i] = int(buf[i])
		}
		return groups
	}
}
