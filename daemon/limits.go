package daemon

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/journal"
)

// Default connection caps. A uid other than root may hold at most
// DefaultMaxConnsPerUID connections across the daemon's listeners; all
// callers together at most the total, which start-up also bounds by the
// descriptors left after the journal's reserve.
const (
	DefaultMaxConns       = 8192
	DefaultMaxConnsPerUID = 256
	// fdReserve is kept free for everything but client connections:
	// pebble's table cache (journal.MaxOpenFiles per stream), NATS, the
	// listeners, /proc reads, capture's netlink sockets.
	fdReserve = 1024
)

// connLimits caps connections in total and per uid. Root's connections
// count toward the total only, so an operator can always reach the daemon
// while the total has room.
type connLimits struct {
	total, perUID int

	mu    sync.Mutex
	open  int
	byUID map[int]int
}

func newConnLimits(total, perUID int) *connLimits {
	return &connLimits{total: total, perUID: perUID, byUID: map[int]int{}}
}

// acquire takes a connection slot for uid, or says why there is none.
// release gives it back; it may be called once.
func (l *connLimits) acquire(uid int) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open >= l.total {
		return nil, wire.Errorf(wire.ResourceExhausted, "the daemon holds %d connections, its limit (--max-conns); close some and retry", l.open)
	}
	if uid != 0 && l.byUID[uid] >= l.perUID {
		return nil, wire.Errorf(wire.ResourceExhausted, "uid %d holds %d connections, the limit per user (--max-conns-per-uid); close some and retry", uid, l.byUID[uid])
	}
	l.open++
	l.byUID[uid]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.open--
			if l.byUID[uid]--; l.byUID[uid] == 0 {
				delete(l.byUID, uid)
			}
		})
	}, nil
}

// raiseNoFile lifts the soft descriptor limit to the hard one (and, as
// root, the hard one to the kernel's nr_open) and returns the soft limit
// now in force.
func raiseNoFile(log *slog.Logger) uint64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		log.Warn("read the descriptor limit", "err", err)
		return 1024
	}
	want := rl
	if unix.Geteuid() == 0 {
		if max := nrOpen(); max > want.Max {
			want.Max = max
		}
	}
	want.Cur = want.Max
	if want != rl {
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &want); err != nil {
			log.Warn("raise the descriptor limit", "from", rl.Cur, "to", want.Cur, "err", err)
			return rl.Cur
		}
	}
	return want.Cur
}

// nrOpen is the kernel's ceiling on a process's descriptor limit.
func nrOpen() uint64 {
	b, err := os.ReadFile("/proc/sys/fs/nr_open")
	if err != nil {
		return 0
	}
	var n uint64
	fmt.Sscan(string(b), &n)
	return min(n, 1<<20)
}

// connBudget is the total connection cap the descriptor limit allows.
func connBudget(nofile uint64, streams, configured int) int {
	room := int(nofile) - fdReserve - journal.MaxOpenFiles*streams
	if room < 64 {
		room = 64
	}
	return min(configured, room)
}

// acceptBackoff paces an accept loop that hits an error such as EMFILE:
// the delay doubles to a second and resets after a success, and the log
// line is written at most every ten seconds, with how many it stands for.
type acceptBackoff struct {
	delay      time.Duration
	lastLog    time.Time
	suppressed int
}

// failed waits before the next accept and logs, rate-limited.
func (b *acceptBackoff) failed(log *slog.Logger, listener string, err error) {
	if b.delay == 0 {
		b.delay = 5 * time.Millisecond
	} else if b.delay < time.Second {
		b.delay = min(2*b.delay, time.Second)
	}
	if now := time.Now(); now.Sub(b.lastLog) >= 10*time.Second {
		hint := ""
		if err == syscall.EMFILE || err == syscall.ENFILE {
			hint = "out of descriptors: lower --max-conns or raise the hard RLIMIT_NOFILE"
		}
		log.Warn("accept failed; backing off", "listener", listener, "err", err, "repeated", b.suppressed, "delay", b.delay, "hint", hint)
		b.lastLog, b.suppressed = now, 0
	} else {
		b.suppressed++
	}
	time.Sleep(b.delay)
}

// ok resets the delay after a successful accept.
func (b *acceptBackoff) ok() { b.delay = 0 }

// lookupGroup resolves --socket-group: "" is -1 (leave the group alone),
// a number is a gid, anything else a group name.
func lookupGroup(name string) (int, error) {
	if name == "" {
		return -1, nil
	}
	if gid, err := strconv.Atoi(name); err == nil && gid >= 0 {
		return gid, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("--socket-group %q: %w", name, err)
	}
	return strconv.Atoi(g.Gid)
}

// unwrapSyscall digs the errno out of an accept error, for the hint.
func unwrapSyscall(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

// refuseConn tells a connection over a limit why (an error answer with id
// 0), then reads what the client sent meanwhile so that closing does not
// reset the connection before the client has read the answer. It waits at
// most a quarter second on a client that neither reads nor closes.
func refuseConn(c *net.UnixConn, err error) {
	defer c.Close()
	var we *wire.Error
	if !errors.As(err, &we) {
		we = &wire.Error{Code: wire.ResourceExhausted, Message: err.Error()}
	}
	c.SetDeadline(time.Now().Add(250 * time.Millisecond))
	if _, err := c.Write(encodeError(0, *we)); err != nil {
		return
	}
	c.CloseWrite()
	io.Copy(io.Discard, io.LimitReader(c, wire.MaxLine))
}
