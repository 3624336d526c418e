//go:build linux

package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	RegisterSource("conn", func() Source { return newConnSource("/proc") })
}

var (
	_ StatsSource = (*connSource)(nil)
	_ Describer   = (*connSource)(nil)
)

// connSource follows TCP connections and connected UDP sockets through
// sock_diag: a dump of the live sockets every interval, and the kernel's
// destroy notifications in between, so that a connection that opens and
// closes between two polls is still seen, with its final byte counts.
type connSource struct {
	procRoot string
	emit     Emit
	log      *slog.Logger
	interval time.Duration

	destroyFD int // bound to the destroy groups; owned by the reader

	mu        sync.Mutex // guards what follows: the poller and the reader share them
	dumpFD    int
	seq       uint32
	tr        *connTracker
	owners    map[uint64]connOwner // socket inode → process, from the last /proc scan
	lastLists time.Time            // the last listener refresh a notification asked for
	buf       []byte

	cancel context.CancelFunc
	wg     sync.WaitGroup

	kernelDrops atomic.Int64
	errs        atomic.Int64
}

// connOwner is the process that holds a socket.
type connOwner struct {
	pid  int64
	name string
}

func newConnSource(procRoot string) *connSource {
	return &connSource{procRoot: procRoot, destroyFD: -1, dumpFD: -1}
}

func (s *connSource) Description() string {
	return "TCP connections and connected UDP sockets from sock_diag: connect/accept and close with bytes sent and received (interval= between polls; closes in between come from destroy notifications)"
}

// KernelDrops counts overflows of the destroy notification socket (ENOBUFS).
func (s *connSource) KernelDrops() int64 { return s.kernelDrops.Load() }

// Start subscribes to the destroy notifications, then polls once and
// returns, so every connection open at that point has its connect event.
func (s *connSource) Start(ctx context.Context, cfg SourceConfig, emit Emit) error {
	if s.cancel != nil {
		return errors.New("conn source already started")
	}
	if os.Geteuid() != 0 {
		return errors.New("conn source needs root (sock_diag's socket destroy notifications require CAP_NET_ADMIN); run the daemon as root")
	}
	s.log = cfg.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.interval = cfg.Interval
	if s.interval <= 0 {
		s.interval = time.Second
	}
	s.emit = emit
	var lo, hi uint16
	if b, err := os.ReadFile(filepath.Join(s.procRoot, "sys/net/ipv4/ip_local_port_range")); err == nil {
		lo, hi, _ = parsePortRange(b)
	}
	s.tr = newConnTracker(lo, hi)
	s.owners = map[uint64]connOwner{}
	s.buf = make([]byte, 256<<10)

	var err error
	if s.destroyFD, err = openDestroySocket(); err != nil {
		return err
	}
	if s.dumpFD, err = openDiagSocket(); err != nil {
		s.closeFDs()
		return err
	}
	if err := s.poll(); err != nil {
		s.closeFDs()
		return err
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(2)
	go s.readDestroys(ctx)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(s.interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := s.poll(); err != nil {
					s.errs.Add(1)
					s.log.Warn("capture conn: poll", "err", err)
				}
			}
		}
	}()
	return nil
}

// Stop ends polling, hands over the notifications already queued, and
// returns.
func (s *connSource) Stop() error {
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	s.wg.Wait()
	s.closeFDs()
	return nil
}

func (s *connSource) closeFDs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, fd := range []*int{&s.destroyFD, &s.dumpFD} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

// openDiagSocket opens a NETLINK_SOCK_DIAG socket for dumps.
func openDiagSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return -1, fmt.Errorf("open sock_diag socket: %w", err)
	}
	// A dump that stalls must not hold the poller for ever.
	tv := unix.NsecToTimeval((5 * time.Second).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("set sock_diag receive timeout: %w", err)
	}
	return fd, nil
}

// openDestroySocket opens a sock_diag socket bound to the four destroy
// groups (TCP and UDP, IPv4 and IPv6).
func openDestroySocket() (int, error) {
	fd, err := openDiagSocket()
	if err != nil {
		return -1, err
	}
	// A burst of closes (a load balancer's reload) overflows the default.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("set sock_diag receive timeout: %w", err)
	}
	var groups uint32
	for _, g := range []uint32{sknlgrpInetTCPDestroy, sknlgrpInetUDPDestroy, sknlgrpInet6TCPDestroy, sknlgrpInet6UDPDestroy} {
		groups |= 1 << (g - 1)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return -1, fmt.Errorf("subscribe to sock_diag destroy notifications: %w (needs CAP_NET_ADMIN; run the daemon as root)", err)
		}
		return -1, fmt.Errorf("subscribe to sock_diag destroy notifications: %w (the kernel needs CONFIG_INET_DIAG, Linux 4.9 or later)", err)
	}
	return fd, nil
}

// dump lists the sockets of family and protocol in states. The caller
// holds s.mu.
func (s *connSource) dump(family, protocol uint8, states uint32) ([]diagSock, error) {
	s.seq++
	return diagDump(s.dumpFD, s.buf, s.seq, family, protocol, states)
}

// diagDump lists, through the sock_diag socket fd, the sockets of family
// and protocol in states, reading answers into buf.
func diagDump(fd int, buf []byte, seq uint32, family, protocol uint8, states uint32) ([]diagSock, error) {
	req := inetDiagRequest(family, protocol, states, seq)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("sock_diag dump request: %w", err)
	}
	var out []diagSock
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return out, fmt.Errorf("read sock_diag dump: %w", err)
		}
		var done bool
		out, done, err = parseInetDiag(buf[:n], protocol, out)
		if err != nil {
			return out, err
		}
		if done {
			return out, nil
		}
	}
}

// socketByInode finds the TCP or UDP socket of an inode, IPv4 or IPv6, in
// any state, with sock_diag (which needs no privilege to list sockets).
func socketByInode(inode uint64) (diagSock, bool) {
	fd, err := openDiagSocket()
	if err != nil {
		return diagSock{}, false
	}
	defer unix.Close(fd)
	buf := make([]byte, 64<<10)
	var seq uint32
	for _, proto := range []uint8{ipprotoTCP, ipprotoUDP} {
		for _, fam := range []uint8{afInet, afInet6} {
			seq++
			socks, err := diagDump(fd, buf, seq, fam, proto, ^uint32(0))
			if err != nil {
				continue
			}
			for _, k := range socks {
				if k.Inode == inode {
					return k, true
				}
			}
		}
	}
	return diagSock{}, false
}

// tcpDumpStates are the TCP states a poll asks for: all but TIME_WAIT and
// the request sockets of a handshake under way, which have no tcp_info.
const tcpDumpStates = ^uint32(1<<tcpTimeWait | 1<<tcpSynRecv | 1<<12)

// poll lists the live sockets, emits connect for the new ones and close
// for those gone without a notification.
func (s *connSource) poll() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var socks, tcp []diagSock
	for _, fam := range []uint8{afInet, afInet6} {
		t, err := s.dump(fam, ipprotoTCP, tcpDumpStates)
		if err != nil {
			return err
		}
		tcp = append(tcp, t...)
		// A connected UDP socket is ESTABLISHED; bound ones are not followed.
		u, err := s.dump(fam, ipprotoUDP, 1<<tcpEstablished)
		if err != nil {
			return err
		}
		socks = append(socks, u...)
	}
	s.tr.setListeners(ipprotoTCP, tcp)
	socks = append(socks, tcp...)
	opened, closed := s.tr.poll(socks)
	s.resolveOwners(opened)
	now := time.Now()
	for _, e := range opened {
		s.emit(connBody(ConnConnectKind, e.role, e, now))
	}
	for _, e := range closed {
		s.emit(connBody(ConnCloseKind, "close", e, now))
	}
	return nil
}

// resolveOwners finds the process of each new socket, scanning /proc once
// when one is not known from the last scan.
func (s *connSource) resolveOwners(es []*connEntry) {
	scanned := false
	for _, e := range es {
		if e.sock.Inode == 0 {
			continue
		}
		o, ok := s.owners[e.sock.Inode]
		if !ok && !scanned {
			s.owners, scanned = scanSocketOwners(s.procRoot), true
			o, ok = s.owners[e.sock.Inode]
		}
		if ok {
			e.pid, e.name = o.pid, o.name
		}
	}
}

// scanSocketOwners maps every socket inode held open to its process, as
// ss -p and netstat -p do: through the /proc/PID/fd links.
func scanSocketOwners(procRoot string) map[uint64]connOwner {
	owners := map[uint64]connOwner{}
	dirs, err := os.ReadDir(procRoot)
	if err != nil {
		return owners
	}
	for _, d := range dirs {
		pid, err := strconv.ParseInt(d.Name(), 10, 64)
		if err != nil {
			continue
		}
		dir := filepath.Join(procRoot, d.Name())
		fds, err := os.ReadDir(filepath.Join(dir, "fd"))
		if err != nil {
			continue // gone, or a kernel thread
		}
		var owner *connOwner
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(dir, "fd", fd.Name()))
			if err != nil {
				continue
			}
			ino, ok := parseSocketLink(link)
			if !ok {
				continue
			}
			if owner == nil {
				exe, _ := os.Readlink(filepath.Join(dir, "exe"))
				comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
				owner = &connOwner{pid: pid, name: procName(exe, string(trimNewline(comm)))}
			}
			if _, dup := owners[ino]; !dup { // shared after fork: the parent (lower pid, listed first) owns it
				owners[ino] = *owner
			}
		}
	}
	return owners
}

func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		return b[:n-1]
	}
	return b
}

// readDestroys reads the destroy notifications until ctx ends, then hands
// over those already queued.
func (s *connSource) readDestroys(ctx context.Context) {
	defer s.wg.Done()
	buf := make([]byte, 256<<10)
	var socks []diagSock
	for {
		flags := 0
		stopping := ctx.Err() != nil
		if stopping {
			flags = unix.MSG_DONTWAIT
		}
		n, _, err := unix.Recvfrom(s.destroyFD, buf, flags)
		if err != nil {
			switch {
			case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
				if stopping {
					return
				}
			case errors.Is(err, unix.ENOBUFS):
				s.kernelDrops.Add(1)
			default:
				s.errs.Add(1)
				s.log.Warn("capture conn: read destroy notifications", "err", err)
				return
			}
			continue
		}
		socks, _, err = parseInetDiag(buf[:n], 0, socks[:0])
		if err != nil {
			s.errs.Add(1)
		}
		for _, sk := range socks {
			s.destroyed(sk)
		}
	}
}

// destroyed emits the close of one socket (and its connect first when no
// poll saw it).
func (s *connSource) destroyed(sk diagSock) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, isNew := s.tr.destroyed(sk)
	if e == nil {
		return
	}
	now := time.Now()
	if isNew {
		if _, known := s.tr.role(sk); !known && sk.Protocol == ipprotoTCP && time.Since(s.lastLists) > 100*time.Millisecond && s.dumpFD >= 0 {
			// A listener opened since the last poll may own it: ask.
			s.lastLists = time.Now()
			var ls []diagSock
			for _, fam := range []uint8{afInet, afInet6} {
				l, err := s.dump(fam, ipprotoTCP, 1<<tcpListen)
				if err != nil {
					s.errs.Add(1)
					break
				}
				ls = append(ls, l...)
			}
			s.tr.setListeners(ipprotoTCP, ls)
			e.role, _ = s.tr.role(sk)
		}
		s.emit(connBody(ConnConnectKind, e.role, e, now))
	}
	s.emit(connBody(ConnCloseKind, "close", e, now))
}
