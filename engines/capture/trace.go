package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/cairnhq/cairn/journal"
)

// The trace "source" is `cairn capture run -- CMD`: the CLI traces one
// command with ptrace, as the caller's user, and sends what it decodes to
// the daemon (capture ingest). This file is the pure part: the syscall
// table, the descriptor table and the decoding of one syscall into events.

// Kinds of the events the tracer emits.
const (
	TraceSyscallKind = "capture.syscall"
	TraceExecKind    = "capture.exec"
	TraceCloneKind   = "capture.clone"
	TraceExitKind    = "capture.exit"
)

// ErrTraceDenied is returned by Trace when the kernel refuses ptrace
// (yama ptrace_scope, a seccomp policy, a container without CAP_SYS_PTRACE).
var ErrTraceDenied = errors.New("ptrace is not permitted here")

// TraceOptions are what Trace runs and where its events go.
type TraceOptions struct {
	Args                  []string // the command and its arguments
	Stdin, Stdout, Stderr *os.File
	Decoder               *Decoder // nil: a new one over /proc
	// Emit receives every event, on the tracing goroutine, in order.
	Emit func(*journal.Body)
}

// Syscall is one system call as the tracer saw it, from its entry stop to
// its exit stop (x86_64: orig_rax is Nr, rdi, rsi, rdx, r10, r8, r9 are
// Args, rax at exit is Ret).
type Syscall struct {
	PID   int
	Nr    uint64
	Args  [6]uint64
	Ret   int64
	Entry int64 // ns since the epoch
	Exit  int64
}

// Tracee is what decoding needs from the traced processes that it cannot
// compute: the kernel's name of a descriptor (readlink /proc/PID/fd/N),
// the memory of the process (the fds pipe(2) writes) and the process
// itself. Tests provide a fake.
type Tracee interface {
	FDName(pid, fd int) string
	ReadMem(pid int, addr uint64, n int) ([]byte, error)
	Proc(pid int) journal.Proc
	// Socket describes the TCP or UDP socket of an inode (sock_diag).
	Socket(inode uint64) (diagSock, bool)
}

// Syscall argument roles of the table.
type sysKind int

const (
	sysIO     sysKind = iota // fd in Args[0], bytes in Ret
	sysOpen                  // Ret is a new fd
	sysClose                 // Args[0] closed
	sysDup                   // Args[0] copied to Ret
	sysDup2                  // Args[0] copied to Args[1]
	sysFcntl                 // F_DUPFD: Args[0] copied to Ret
	sysPipe                  // two fds written at Args[0]
	sysSocket                // Ret is a socket of domain Args[0]
	sysAccept                // Ret is a socket like Args[0]
	sysFD                    // an fd in Args[0], no bytes (connect, bind, listen, shutdown)
	sysCopy                  // bytes from InArg's fd to OutArg's fd
	sysExec                  // execve, execveat
	sysClone                 // clone, fork, vfork, clone3
	sysChdir                 // chdir (a path in Args[0]), fchdir (an fd)
)

// sysInfo is one entry of the syscall table.
type sysInfo struct {
	name  string  // sysdig's evt.type
	kind  sysKind //
	dir   string  // sysIO: "r" or "w" (sysdig's evt.io_dir)
	in    int     // sysCopy: the argument holding the source fd
	out   int     // sysCopy: the argument holding the destination fd
	fdArg int     // sysDup2: the argument holding the new fd
}

// x86_64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl); the
// table is written out rather than taken from x/sys so that decoding stays
// pure and testable on any GOARCH.
var sysTable = map[uint64]sysInfo{
	0:   {name: "read", kind: sysIO, dir: "r"},
	1:   {name: "write", kind: sysIO, dir: "w"},
	2:   {name: "open", kind: sysOpen},
	3:   {name: "close", kind: sysClose},
	17:  {name: "pread", kind: sysIO, dir: "r"},
	18:  {name: "pwrite", kind: sysIO, dir: "w"},
	19:  {name: "readv", kind: sysIO, dir: "r"},
	20:  {name: "writev", kind: sysIO, dir: "w"},
	22:  {name: "pipe", kind: sysPipe},
	32:  {name: "dup", kind: sysDup},
	33:  {name: "dup2", kind: sysDup2, fdArg: 1},
	40:  {name: "sendfile", kind: sysCopy, out: 0, in: 1},
	41:  {name: "socket", kind: sysSocket},
	42:  {name: "connect", kind: sysFD},
	43:  {name: "accept", kind: sysAccept},
	44:  {name: "sendto", kind: sysIO, dir: "w"},
	45:  {name: "recvfrom", kind: sysIO, dir: "r"},
	46:  {name: "sendmsg", kind: sysIO, dir: "w"},
	47:  {name: "recvmsg", kind: sysIO, dir: "r"},
	48:  {name: "shutdown", kind: sysFD},
	49:  {name: "bind", kind: sysFD},
	50:  {name: "listen", kind: sysFD},
	56:  {name: "clone", kind: sysClone},
	57:  {name: "fork", kind: sysClone},
	58:  {name: "vfork", kind: sysClone},
	59:  {name: "execve", kind: sysExec},
	72:  {name: "fcntl", kind: sysFcntl},
	80:  {name: "chdir", kind: sysChdir},
	81:  {name: "fchdir", kind: sysChdir},
	85:  {name: "creat", kind: sysOpen},
	257: {name: "openat", kind: sysOpen},
	275: {name: "splice", kind: sysCopy, in: 0, out: 2},
	288: {name: "accept", kind: sysAccept}, // accept4: sysdig calls both accept
	292: {name: "dup3", kind: sysDup2, fdArg: 1},
	293: {name: "pipe", kind: sysPipe}, // pipe2
	295: {name: "preadv", kind: sysIO, dir: "r"},
	296: {name: "pwritev", kind: sysIO, dir: "w"},
	299: {name: "recvmmsg", kind: sysFD},
	307: {name: "sendmmsg", kind: sysFD},
	322: {name: "execve", kind: sysExec}, // execveat
	326: {name: "copy_file_range", kind: sysCopy, in: 0, out: 2},
	327: {name: "preadv2", kind: sysIO, dir: "r"},
	328: {name: "pwritev2", kind: sysIO, dir: "w"},
	435: {name: "clone3", kind: sysClone},
	437: {name: "openat2", kind: sysOpen},
}

// SyscallName returns sysdig's name of an x86_64 syscall number, or "" for
// one the tracer does not decode.
func SyscallName(nr uint64) string { return sysTable[nr].name }

// fcntl commands that duplicate a descriptor.
const (
	traceFDupFD        = 0
	traceFDupFDCloexec = 1030
)

// errInProgress is EINPROGRESS: a non-blocking connect under way, whose
// ends the kernel already knows.
const errInProgress = 115

// Socket domains.
const (
	traceAFUnix    = 1
	traceAFInet    = 2
	traceAFInet6   = 10
	traceAFNetlink = 16
)

// fdEntry is what the tracer knows of one open descriptor.
type fdEntry struct {
	name string
	typ  string // sysdig's fd.type: file, directory, ipv4, ipv6, unix, pipe, event, netlink, …
	// An IP socket's addresses, once resolved: server is whether this end
	// is the server (it listens, or accepted the connection).
	sock   *diagSock
	server bool
}

// fd is what an event says of the entry: its name and type, and an IP
// socket's ends as sysdig names them (s the server, c the client).
func (e fdEntry) fd() *journal.FD {
	if e.name == "" && e.typ == "" {
		return nil
	}
	f := &journal.FD{Name: e.name, Type: e.typ}
	if k := e.sock; k != nil {
		f.L4Proto = l4proto(k.Protocol)
		srv, cli := k.Local, k.Remote
		if !e.server && k.Remote.IsValid() && k.Remote.Port() != 0 {
			srv, cli = k.Remote, k.Local
		}
		f.SIP, f.SPort = srv.Addr().String(), int64(srv.Port())
		if cli.IsValid() && cli.Port() != 0 {
			f.CIP, f.CPort = cli.Addr().String(), int64(cli.Port())
		}
	}
	return f
}

// resolve names an IP socket by its ends, sysdig's way
// (cip:cport->sip:sport; a listener by its own address), asking the
// kernel once the socket has them. Any other entry is left as it is.
func (d *Decoder) resolve(pid, fd int, e fdEntry, server bool) fdEntry {
	if e.typ != "ipv4" && e.typ != "ipv6" {
		return e
	}
	name := e.name
	if !strings.HasPrefix(name, "socket:[") {
		name = d.t.FDName(pid, fd)
	}
	inode, ok := parseSocketLink(name)
	if !ok {
		return e
	}
	k, ok := d.t.Socket(inode)
	if !ok || !k.Local.IsValid() {
		return e
	}
	e.sock, e.server = &k, server
	f := e.fd()
	switch {
	case f.CIP != "":
		e.name = joinHostPort(f.CIP, f.CPort) + "->" + joinHostPort(f.SIP, f.SPort)
	default:
		e.name = joinHostPort(f.SIP, f.SPort)
	}
	return e
}

func joinHostPort(ip string, port int64) string {
	if strings.Contains(ip, ":") {
		return "[" + ip + "]:" + strconv.FormatInt(port, 10)
	}
	return ip + ":" + strconv.FormatInt(port, 10)
}

// FDTable is the descriptor table of one process (threads share one).
type FDTable map[int]fdEntry

// Decoder turns the syscalls of a traced process tree into capture
// events. It keeps a descriptor table per process, copied at fork and
// forgotten at exec (descriptors that survive are named again lazily from
// /proc), so an fd carries the name it had when it was opened.
type Decoder struct {
	t       Tracee
	tables  map[int]FDTable // by pid (tid): threads share the map
	procs   map[int]journal.Proc
	threads map[int]bool  // tids that are not their process's leader
	started map[int]int64 // when each process was first seen (its fork, or its first syscall)
	User    *journal.User // the tracing user, set on every event
	Node    string
	// Snaplen is how many bytes of each buffer read or written are kept,
	// as data.data (sysdig's evt.buffer); 0 keeps none.
	Snaplen int
}

// DefaultSnaplen is sysdig's: the first 80 bytes of each I/O buffer.
// MaxSnaplen bounds what one event may carry.
const (
	DefaultSnaplen = 80
	MaxSnaplen     = 64 << 10
)

// NewDecoder returns a Decoder that asks t what decoding cannot compute.
func NewDecoder(t Tracee) *Decoder {
	return &Decoder{t: t, tables: map[int]FDTable{}, procs: map[int]journal.Proc{}, threads: map[int]bool{}, started: map[int]int64{}, Snaplen: DefaultSnaplen}
}

func (d *Decoder) table(pid int) FDTable {
	tb := d.tables[pid]
	if tb == nil {
		tb = FDTable{}
		d.tables[pid] = tb
	}
	return tb
}

// lookup returns the entry of fd, naming it from the kernel when the table
// does not know it (a descriptor inherited from before the trace).
func (d *Decoder) lookup(pid, fd int) fdEntry {
	tb := d.table(pid)
	if e, ok := tb[fd]; ok {
		return e
	}
	e := entryFromName(d.t.FDName(pid, fd))
	if e.name != "" {
		tb[fd] = e
	}
	return e
}

// entryFromName classifies a /proc/PID/fd link target as sysdig does.
func entryFromName(name string) fdEntry {
	switch {
	case name == "":
		return fdEntry{}
	case strings.HasPrefix(name, "/"):
		return fdEntry{name: name, typ: "file"}
	case strings.HasPrefix(name, "pipe:"):
		return fdEntry{name: name, typ: "pipe"}
	case strings.HasPrefix(name, "socket:"):
		return fdEntry{name: name, typ: "socket"}
	case strings.HasPrefix(name, "anon_inode:"):
		k := strings.Trim(strings.TrimPrefix(name, "anon_inode:"), "[]")
		switch k {
		case "eventfd":
			return fdEntry{name: name, typ: "event"}
		case "signalfd", "inotify", "timerfd", "eventpoll":
			return fdEntry{name: name, typ: k}
		}
		return fdEntry{name: name, typ: "unknown"}
	}
	return fdEntry{name: name, typ: "unknown"}
}

// Clone flags the decoder reads.
const (
	cloneFiles  = 0x400
	cloneThread = 0x10000
)

// Fork records a new task of the tree and returns its capture.clone event,
// about the child as sysdig's is, or nil for a thread. The child gets a
// descriptor table: the parent's own when they share it (CLONE_FILES),
// else a copy; its process is its parent's until it execs.
func (d *Decoder) Fork(parent, child int, flags uint64, t int64) *journal.Body {
	pt := d.table(parent)
	if flags&cloneFiles != 0 {
		d.tables[child] = pt
	} else {
		ct := make(FDTable, len(pt))
		for k, v := range pt {
			ct[k] = v
		}
		d.tables[child] = ct
	}
	pp := d.proc(parent)
	if flags&cloneThread != 0 {
		d.procs[child] = pp // a thread is its process: proc.pid is the tgid
		d.threads[child] = true
		return nil
	}
	cp := pp
	cp.PID, cp.PPID = int64(child), pp.PID
	d.procs[child] = cp
	d.started[child] = t
	return d.body(Syscall{PID: child, Entry: t, Exit: t}, "clone", TraceCloneKind, nil)
}

// Exit forgets a process.
func (d *Decoder) Exit(pid int) {
	delete(d.started, pid)
	delete(d.tables, pid)
	delete(d.procs, pid)
	delete(d.threads, pid)
}

// Decode returns the events of one completed syscall and updates the
// descriptor table. Syscalls the table does not know return nothing.
func (d *Decoder) Decode(s Syscall) []*journal.Body {
	info, ok := sysTable[s.Nr]
	if !ok {
		return nil
	}
	fd := func(i int) int { return int(int32(s.Args[i])) }
	var out []*journal.Body
	ev := func(e fdEntry, data map[string]any) *journal.Body {
		b := d.body(s, info.name, TraceSyscallKind, data)
		b.FD = e.fd()
		out = append(out, b)
		return b
	}
	ok = s.Ret >= 0
	switch info.kind {
	case sysIO:
		e := d.lookup(s.PID, fd(0))
		if info.name == "sendto" && e.typ == "unix" && s.Args[4] != 0 {
			// A datagram to an address (syslog's sendto to /dev/log): the
			// event names the socket by it.
			if path, ok := d.unixPath(s.PID, s.Args[4], s.Args[5]); ok {
				e.name = path
			}
		}
		if e.sock == nil && (e.typ == "ipv4" || e.typ == "ipv6") && ok {
			// A socket first used here (inherited, or connected before
			// the trace): this end is taken for the client.
			e = d.resolve(s.PID, fd(0), e, false)
			d.table(s.PID)[fd(0)] = e
		}
		data := map[string]any{"fd": int64(fd(0)), "io_dir": info.dir}
		if ok {
			data["bytes"] = s.Ret
			if buf := d.buffer(s, info); len(buf) > 0 {
				data["data"] = buf
			}
		}
		ev(e, data)
	case sysOpen:
		var e fdEntry
		if ok {
			e = entryFromName(d.t.FDName(s.PID, int(s.Ret)))
			if e.name != "" {
				d.table(s.PID)[int(s.Ret)] = e
			}
		}
		data := map[string]any{}
		if ok {
			data["fd"] = s.Ret
		}
		ev(e, data)
	case sysClose:
		e := d.lookup(s.PID, fd(0))
		if ok {
			delete(d.table(s.PID), fd(0))
		}
		ev(e, map[string]any{"fd": int64(fd(0))})
	case sysDup, sysDup2, sysFcntl:
		if info.kind == sysFcntl && s.Args[1] != traceFDupFD && s.Args[1] != traceFDupFDCloexec {
			return nil
		}
		e := d.lookup(s.PID, fd(0))
		if ok {
			d.table(s.PID)[int(s.Ret)] = e
		}
		ev(e, map[string]any{"fd": int64(fd(0)), "newfd": s.Ret})
	case sysPipe:
		data := map[string]any{}
		if ok {
			if b, err := d.t.ReadMem(s.PID, s.Args[0], 8); err == nil && len(b) == 8 {
				r, w := int(int32(binary.LittleEndian.Uint32(b))), int(int32(binary.LittleEndian.Uint32(b[4:])))
				e := entryFromName(d.t.FDName(s.PID, r))
				if e.name == "" {
					e = fdEntry{name: "pipe", typ: "pipe"}
				}
				e.typ = "pipe"
				d.table(s.PID)[r], d.table(s.PID)[w] = e, e
				data["fd_r"], data["fd_w"] = int64(r), int64(w)
			}
		}
		ev(fdEntry{}, data)
	case sysSocket:
		var e fdEntry
		if ok {
			e = entryFromName(d.t.FDName(s.PID, int(s.Ret)))
			e.typ = socketType(s.Args[0])
			d.table(s.PID)[int(s.Ret)] = e
		}
		ev(e, map[string]any{"domain": int64(s.Args[0])})
	case sysAccept:
		l := d.lookup(s.PID, fd(0))
		var e fdEntry
		if ok {
			e = entryFromName(d.t.FDName(s.PID, int(s.Ret)))
			if l.typ != "" && l.typ != "socket" {
				e.typ = l.typ
			}
			e = d.resolve(s.PID, int(s.Ret), e, true) // the accepting end is the server
			d.table(s.PID)[int(s.Ret)] = e
		}
		ev(e, map[string]any{"fd": int64(fd(0))})
	case sysFD:
		e := d.lookup(s.PID, fd(0))
		switch {
		case info.name == "connect" && e.typ == "unix" && ok:
			// A Unix socket is named by the path it connected to
			// (/dev/log for syslog), as sysdig names it.
			if path, ok := d.unixPath(s.PID, s.Args[1], s.Args[2]); ok {
				e.name = path
				d.table(s.PID)[fd(0)] = e
			}
		case info.name == "connect" && (ok || s.Ret == -errInProgress):
			e = d.resolve(s.PID, fd(0), e, false) // the connecting end is the client
			d.table(s.PID)[fd(0)] = e
		case info.name == "listen" && ok:
			e = d.resolve(s.PID, fd(0), e, true)
			d.table(s.PID)[fd(0)] = e
		}
		ev(e, map[string]any{"fd": int64(fd(0))})
	case sysCopy:
		// One event per descriptor, so that per-file byte counts see the
		// source as read and the destination as written.
		in, outFD := fd(info.in), fd(info.out)
		ie, oe := d.lookup(s.PID, in), d.lookup(s.PID, outFD)
		for _, side := range []struct {
			e   fdEntry
			fd  int
			dir string
		}{{ie, in, "r"}, {oe, outFD, "w"}} {
			data := map[string]any{"fd": int64(side.fd), "io_dir": side.dir, "in_fd_name": ie.name, "out_fd_name": oe.name}
			if ok {
				data["bytes"] = s.Ret
			}
			ev(side.e, data)
		}
	case sysExec:
		if !ok {
			ev(fdEntry{}, nil)
			break
		}
		// Descriptors that survive exec are named again from /proc when used.
		d.tables[s.PID] = FDTable{}
		delete(d.procs, s.PID) // a new name, exe and cmdline
		p := d.proc(s.PID)
		_, args, _ := strings.Cut(p.Cmdline, " ")
		b := ev(fdEntry{}, map[string]any{"exe": p.Exe, "args": args}) // sysdig's evt.arg.exe, evt.arg.args
		b.Kind = TraceExecKind
	case sysChdir:
		data := map[string]any{}
		var e fdEntry
		if info.name == "fchdir" {
			e = d.lookup(s.PID, fd(0))
			data["fd"] = int64(fd(0))
		} else if p, ok := d.readString(s.PID, s.Args[0]); ok {
			data["path"] = p // sysdig's evt.arg.path
		}
		if ok {
			delete(d.procs, s.PID) // a new cwd, read from /proc at this event
		}
		ev(e, data)
	case sysClone:
		// The new process's capture.clone comes from Fork, when the
		// kernel reports the child; the parent's return says nothing more.
		return nil
	}
	return out
}

// buffer reads the first Snaplen bytes a successful read or write moved:
// from the buffer argument of read, write, pread, pwrite, sendto and
// recvfrom, from the iovecs of readv, writev and their p-variants, and
// from the msghdr's iovecs of sendmsg and recvmsg.
func (d *Decoder) buffer(s Syscall, info sysInfo) []byte {
	n := min(int64(d.Snaplen), s.Ret)
	if n <= 0 {
		return nil
	}
	switch info.name {
	case "read", "write", "pread", "pwrite", "sendto", "recvfrom":
		b, err := d.t.ReadMem(s.PID, s.Args[1], int(n))
		if err != nil {
			return nil
		}
		return b
	case "readv", "writev", "preadv", "pwritev":
		return d.gather(s.PID, s.Args[1], s.Args[2], n)
	case "sendmsg", "recvmsg":
		// struct msghdr: name, namelen (and padding), iov at 16, iovlen at 24.
		h, err := d.t.ReadMem(s.PID, s.Args[1], 32)
		if err != nil || len(h) != 32 {
			return nil
		}
		return d.gather(s.PID, binary.LittleEndian.Uint64(h[16:]), binary.LittleEndian.Uint64(h[24:]), n)
	}
	return nil
}

// gather reads up to n bytes from the cnt iovecs at addr, in order.
func (d *Decoder) gather(pid int, addr, cnt uint64, n int64) []byte {
	cnt = min(cnt, 64)
	iov, err := d.t.ReadMem(pid, addr, int(16*cnt))
	if err != nil || len(iov) != int(16*cnt) {
		return nil
	}
	var out []byte
	for i := 0; i < int(cnt) && int64(len(out)) < n; i++ {
		base := binary.LittleEndian.Uint64(iov[16*i:])
		l := min(int64(binary.LittleEndian.Uint64(iov[16*i+8:])), n-int64(len(out)))
		if l <= 0 {
			continue
		}
		b, err := d.t.ReadMem(pid, base, int(l))
		if err != nil {
			break
		}
		out = append(out, b...)
	}
	return out
}

// unixPath reads a sockaddr_un of n bytes at addr: its path, or "@NAME"
// for an abstract one.
func (d *Decoder) unixPath(pid int, addr, n uint64) (string, bool) {
	if n <= 2 || n > 110 {
		return "", false
	}
	b, err := d.t.ReadMem(pid, addr, int(n))
	if err != nil || len(b) < 3 || binary.LittleEndian.Uint16(b) != traceAFUnix {
		return "", false
	}
	path := b[2:]
	if path[0] == 0 {
		return "@" + string(bytes.TrimRight(path[1:], "\x00")), len(path) > 1
	}
	if i := bytes.IndexByte(path, 0); i >= 0 {
		path = path[:i]
	}
	return string(path), len(path) > 0
}

// readString reads a NUL-terminated string of at most 4 KiB (a path) from
// the tracee's memory.
func (d *Decoder) readString(pid int, addr uint64) (string, bool) {
	var out []byte
	for len(out) < 4096 {
		// A read that crosses into an unmapped page comes back short,
		// with an error, and may still hold the end of the string.
		b, err := d.t.ReadMem(pid, addr+uint64(len(out)), 256)
		if i := bytes.IndexByte(b, 0); i >= 0 {
			return string(append(out, b[:i]...)), true
		}
		if err != nil || len(b) == 0 {
			return "", false
		}
		out = append(out, b...)
	}
	return "", false
}

// ProcExit returns the procexit event of a process that ended with code
// (a signal's death is 128+signal, as a shell reports it), or nil for a
// thread.
func (d *Decoder) ProcExit(pid int, code int, t int64) *journal.Body {
	if d.threads[pid] {
		d.Exit(pid)
		return nil
	}
	data := map[string]any{"exit_code": int64(code)}
	if start, ok := d.started[pid]; ok && t >= start {
		data["duration"] = t - start // sysdig's proc.duration
	}
	b := d.body(Syscall{PID: pid, Exit: t, Entry: t}, "procexit", TraceExitKind, data)
	b.Evt.Latency = 0
	d.Exit(pid)
	return b
}

func (d *Decoder) body(s Syscall, typ, kind string, data map[string]any) *journal.Body {
	p := d.proc(s.PID)
	p.TID = int64(s.PID) // ptrace reports threads: the tid
	if _, ok := d.started[s.PID]; !ok && !d.threads[s.PID] {
		d.started[s.PID] = s.Entry // the traced command: from its first syscall
	}
	if p.PPID > 0 && p.PName == "" {
		p.PName = d.parentName(int(p.PPID))
	}
	if len(data) == 0 {
		data = nil
	}
	b := &journal.Body{
		Kind:      kind,
		Subject:   fmt.Sprintf("pid/%d", s.PID),
		Node:      d.Node,
		Data:      data,
		Evt:       &journal.Evt{Type: typ, Time: s.Entry, Res: s.Ret, Latency: s.Exit - s.Entry},
		Proc:      &p,
		User:      d.User,
		Container: &journal.Container{ID: "host"},
	}
	return b
}

// parentName is the name of process ppid: the decoder's when it traces
// it, else the kernel's.
func (d *Decoder) parentName(ppid int) string {
	if p, ok := d.procs[ppid]; ok {
		return p.Name
	}
	return d.t.Proc(ppid).Name
}

// proc returns what the decoder knows of pid's process, asking the Tracee
// the first time and after an exec.
func (d *Decoder) proc(pid int) journal.Proc {
	p, ok := d.procs[pid]
	if !ok {
		p = d.t.Proc(pid)
		if p.PID == 0 {
			p.PID = int64(pid)
		}
		d.ancestry(&p)
		d.procs[pid] = p
	}
	return p
}

// maxAncestors is how far up a process's ancestry its events name, as
// far as sysdig's chisels climb (spy_users: 16).
const maxAncestors = 16

// ancestry fills p's ancestors (parent first, up to init) and sysdig's
// proc.loginshellid: the pid of the oldest shell among p and them, 0 when
// there is none.
func (d *Decoder) ancestry(p *journal.Proc) {
	p.Ancestors, p.LoginShellID = nil, 0
	if isShell(p.Name) {
		p.LoginShellID = p.PID
	}
	q := *p
	for range maxAncestors {
		if q.PPID <= 0 || q.PPID == q.PID {
			break
		}
		if a, ok := d.procs[int(q.PPID)]; ok {
			q = a
		} else {
			q = d.t.Proc(int(q.PPID))
			if q.PID == 0 {
				break // gone
			}
		}
		p.Ancestors = append(p.Ancestors, journal.Ancestor{PID: q.PID, Name: q.Name})
		if isShell(q.Name) {
			p.LoginShellID = q.PID
		}
	}
}

func isShell(name string) bool {
	switch name {
	case "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "tcsh", "csh":
		return true
	}
	return false
}

func socketType(domain uint64) string {
	switch domain {
	case traceAFInet:
		return "ipv4"
	case traceAFInet6:
		return "ipv6"
	case traceAFUnix:
		return "unix"
	case traceAFNetlink:
		return "netlink"
	}
	return "socket"
}
