package capture

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/journal"
)

// fakeTracee answers from maps: fds[pid][fd] is the /proc link target.
type fakeTracee struct {
	fds   map[int]map[int]string
	mem   map[uint64][]byte
	procs map[int]journal.Proc
	socks map[uint64]diagSock
}

func (f *fakeTracee) Socket(inode uint64) (diagSock, bool) {
	k, ok := f.socks[inode]
	return k, ok
}

func (f *fakeTracee) FDName(pid, fd int) string { return f.fds[pid][fd] }
func (f *fakeTracee) ReadMem(pid int, addr uint64, n int) ([]byte, error) {
	b, ok := f.mem[addr]
	if !ok {
		return nil, errors.New("EFAULT")
	}
	if n > len(b) { // the rest of the page is not mapped: a short read
		return b, errors.New("EIO")
	}
	return b[:n], nil
}
func (f *fakeTracee) Proc(pid int) journal.Proc { return f.procs[pid] }

func (f *fakeTracee) set(pid, fd int, name string) {
	if f.fds[pid] == nil {
		f.fds[pid] = map[int]string{}
	}
	f.fds[pid][fd] = name
}

func newFake() *fakeTracee {
	return &fakeTracee{fds: map[int]map[int]string{}, mem: map[uint64][]byte{}, procs: map[int]journal.Proc{
		10: {Name: "dash", PID: 10, PPID: 1, Cmdline: "sh -c cat IN > OUT"},
		11: {Name: "cat", PID: 11, PPID: 10, Cmdline: "cat IN"},
	}}
}

// line renders the events of one syscall compactly for comparison.
func line(bs []*journal.Body) string {
	var out []string
	for _, b := range bs {
		s := fmt.Sprintf("%s %s pid=%d res=%d lat=%d", b.Kind, b.Evt.Type, b.Proc.PID, b.Evt.Res, b.Evt.Latency)
		if b.FD != nil {
			s += fmt.Sprintf(" fd=%s(%s)", b.FD.Name, b.FD.Type)
		}
		if n, ok := b.Data["bytes"]; ok {
			s += fmt.Sprintf(" bytes=%v/%v", n, b.Data["io_dir"])
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

// TestDecodeCatRedirect decodes `sh -c 'cat IN > OUT'` as the kernel shows
// it: the shell opens OUT and moves it to fd 1, vforks, the child execs
// cat, which copies IN to fd 1 with copy_file_range.
func TestDecodeCatRedirect(t *testing.T) {
	f := newFake()
	d := NewDecoder(f)
	f.set(10, 1, "/dev/pts/0")
	f.set(10, 3, "/home/ana/OUT")
	steps := []struct {
		s    Syscall
		fork int // a vfork child reported after this call
		want string
	}{
		{s: Syscall{PID: 10, Nr: 1, Args: [6]uint64{1}, Ret: 5, Entry: 100, Exit: 150}, want: "capture.syscall write pid=10 res=5 lat=50 fd=/dev/pts/0(file) bytes=5/w"},
		{s: Syscall{PID: 10, Nr: 257, Args: [6]uint64{uint64(0xffffff9c)}, Ret: 3}, want: "capture.syscall openat pid=10 res=3 lat=0 fd=/home/ana/OUT(file)"},
		{s: Syscall{PID: 10, Nr: 72, Args: [6]uint64{1, 0, 10}, Ret: 11}, want: "capture.syscall fcntl pid=10 res=11 lat=0 fd=/dev/pts/0(file)"},
		{s: Syscall{PID: 10, Nr: 72, Args: [6]uint64{1, 3}, Ret: 0}, want: ""}, // F_GETFL
		{s: Syscall{PID: 10, Nr: 33, Args: [6]uint64{3, 1}, Ret: 1}, want: "capture.syscall dup2 pid=10 res=1 lat=0 fd=/home/ana/OUT(file)"},
		{s: Syscall{PID: 10, Nr: 3, Args: [6]uint64{3}}, want: "capture.syscall close pid=10 res=0 lat=0 fd=/home/ana/OUT(file)"},
		{s: Syscall{PID: 10, Nr: 58, Ret: 11}, fork: 11, want: ""},
		{s: Syscall{PID: 11, Nr: 59, Ret: 0}, want: "capture.exec execve pid=11 res=0 lat=0"},
		{s: Syscall{PID: 11, Nr: 257, Ret: 3}, want: "capture.syscall openat pid=11 res=3 lat=0 fd=/home/ana/IN(file)"},
		{s: Syscall{PID: 11, Nr: 326, Args: [6]uint64{3, 0, 1, 0, 1 << 62, 0}, Ret: 65536, Entry: 7, Exit: 9},
			want: "capture.syscall copy_file_range pid=11 res=65536 lat=2 fd=/home/ana/IN(file) bytes=65536/r; " +
				"capture.syscall copy_file_range pid=11 res=65536 lat=2 fd=/home/ana/OUT(file) bytes=65536/w"},
		{s: Syscall{PID: 11, Nr: 0, Args: [6]uint64{7}, Ret: -9}, want: "capture.syscall read pid=11 res=-9 lat=0"},
	}
	for i, st := range steps {
		if st.s.PID == 11 && st.s.Nr == 257 {
			f.set(11, 3, "/home/ana/IN")
			f.set(11, 1, "/home/ana/OUT") // the kernel's view after the exec
		}
		got := line(d.Decode(st.s))
		if got != st.want {
			t.Errorf("step %d (%s):\n got %s\nwant %s", i, SyscallName(st.s.Nr), got, st.want)
		}
		if st.fork != 0 {
			c := d.Fork(10, st.fork, 0, 0)
			if got := line([]*journal.Body{c}); got != "capture.clone clone pid=11 res=0 lat=0" || c.Proc.PPID != 10 || c.Proc.Name != "dash" {
				t.Errorf("fork: %s %+v", got, c.Proc)
			}
			// The child's fd 1 comes from the parent's table (OUT).
			if e := d.table(11)[1]; e.name != "/home/ana/OUT" {
				t.Errorf("child fd 1 = %+v", e)
			}
		}
	}
	ex := d.ProcExit(11, 0, 5)
	if ex.Kind != TraceExitKind || ex.Evt.Type != "procexit" || ex.Data["exit_code"] != int64(0) || ex.Proc.Name != "cat" {
		t.Errorf("procexit: %+v %+v", ex, ex.Proc)
	}
	if _, ok := d.tables[11]; ok {
		t.Error("the exited process's table is kept")
	}
}

// TestDecodeForkSharing checks that a CLONE_FILES child shares the table,
// a fork copies it, a thread has no clone or procexit event, and an exec
// forgets the names (they are looked up again).
func TestDecodeForkSharing(t *testing.T) {
	f := newFake()
	d := NewDecoder(f)
	f.set(10, 4, "/a")
	d.Decode(Syscall{PID: 10, Nr: 2, Ret: 4})
	if b := d.Fork(10, 20, cloneFiles|cloneThread, 0); b != nil {
		t.Errorf("a thread has a clone event: %+v", b)
	}
	d.Fork(10, 21, 0, 0)
	d.Decode(Syscall{PID: 20, Nr: 3, Args: [6]uint64{4}})
	if _, ok := d.table(10)[4]; ok {
		t.Error("close in a CLONE_FILES thread left the parent's fd")
	}
	if e := d.table(21)[4]; e.name != "/a" {
		t.Errorf("forked child lost fd 4: %+v", e)
	}
	if b := d.ProcExit(20, 0, 0); b != nil {
		t.Errorf("a thread has a procexit: %+v", b)
	}
	f.set(21, 4, "/b")
	d.Decode(Syscall{PID: 21, Nr: 59})
	if e := d.lookup(21, 4); e.name != "/b" {
		t.Errorf("after exec fd 4 = %+v, want the name from /proc", e)
	}
}

func TestDecodePipeSocketAccept(t *testing.T) {
	f := newFake()
	d := NewDecoder(f)
	f.mem[0x1000] = binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, 5), 6)
	f.set(10, 5, "pipe:[77]")
	if got := line(d.Decode(Syscall{PID: 10, Nr: 293, Args: [6]uint64{0x1000}})); got != "capture.syscall pipe pid=10 res=0 lat=0" {
		t.Errorf("pipe2: %s", got)
	}
	if got := line(d.Decode(Syscall{PID: 10, Nr: 1, Args: [6]uint64{6}, Ret: 3})); got != "capture.syscall write pid=10 res=3 lat=0 fd=pipe:[77](pipe) bytes=3/w" {
		t.Errorf("write to pipe: %s", got)
	}
	f.set(10, 7, "socket:[88]")
	f.set(10, 8, "socket:[89]")
	d.Decode(Syscall{PID: 10, Nr: 41, Args: [6]uint64{10}, Ret: 7})
	if got := line(d.Decode(Syscall{PID: 10, Nr: 288, Args: [6]uint64{7}, Ret: 8})); got != "capture.syscall accept pid=10 res=8 lat=0 fd=socket:[89](ipv6)" {
		t.Errorf("accept4: %s", got)
	}
	if got := line(d.Decode(Syscall{PID: 10, Nr: 45, Args: [6]uint64{8}, Ret: 100})); got != "capture.syscall recvfrom pid=10 res=100 lat=0 fd=socket:[89](ipv6) bytes=100/r" {
		t.Errorf("recvfrom: %s", got)
	}
	// sendfile(out, in, …) and splice(in, off, out, …).
	f.set(10, 9, "/srv/f")
	got := line(d.Decode(Syscall{PID: 10, Nr: 40, Args: [6]uint64{8, 9}, Ret: 10}))
	if got != "capture.syscall sendfile pid=10 res=10 lat=0 fd=/srv/f(file) bytes=10/r; capture.syscall sendfile pid=10 res=10 lat=0 fd=socket:[89](ipv6) bytes=10/w" {
		t.Errorf("sendfile: %s", got)
	}
	if got := line(d.Decode(Syscall{PID: 10, Nr: 9})); got != "" {
		t.Errorf("mmap is not decoded: %s", got)
	}
}

func TestEntryFromName(t *testing.T) {
	for name, typ := range map[string]string{
		"/etc/passwd": "file", "pipe:[1]": "pipe", "socket:[2]": "socket",
		"anon_inode:[eventfd]": "event", "anon_inode:inotify": "inotify", "anon_inode:bpf-map": "unknown",
	} {
		if e := entryFromName(name); e.typ != typ || e.name != name {
			t.Errorf("%s: %+v, want type %s", name, e, typ)
		}
	}
}

func TestTraceBatch(t *testing.T) {
	in := []*journal.Body{
		{Kind: TraceSyscallKind, Subject: "pid/1", Evt: &journal.Evt{Type: "read", Res: 5}, Data: map[string]any{"bytes": int64(5)}},
		{Kind: TraceExitKind, Subject: "pid/1", Data: map[string]any{"exit_code": int64(7)}},
	}
	s, err := EncodeTraceBatch(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeTraceBatch(s)
	if err != nil || len(out) != 2 || out[0].Evt.Res != 5 || out[0].Data["bytes"] != int64(5) || out[1].Data["exit_code"] != int64(7) {
		t.Fatalf("round trip: %v %+v", err, out)
	}
	for _, bad := range []*journal.Body{{Kind: "kv.put"}, {Kind: DropKind}, {Kind: "capture"}} {
		s, err := EncodeTraceBatch([]*journal.Body{bad})
		if err != nil {
			continue // refused already
		}
		if _, err := DecodeTraceBatch(s); err == nil {
			t.Errorf("kind %q accepted", bad.Kind)
		}
	}
	if _, err := DecodeTraceBatch(""); err == nil {
		t.Error("empty batch accepted")
	}
	if _, err := DecodeTraceBatch("!!"); err == nil {
		t.Error("bad base64 accepted")
	}
	if _, err := DecodeTraceBatch("AAAA"); err == nil { // 3 bytes: a truncated length
		t.Error("truncated batch accepted")
	}
}

// TestIngestTrust: a non-root client cannot ingest events about a live
// process of another user, and its events' user is the caller's whatever
// the client wrote; root's are taken as sent.
func TestIngestTrust(t *testing.T) {
	owners := map[int64]int{1: 0, 4000: 1000}
	uidOf := func(pid int64) (int, bool) { uid, ok := owners[pid]; return uid, ok }
	forged := []*journal.Body{{Kind: "capture.exec", Proc: &journal.Proc{PID: 1, Name: "sshd"}, User: &journal.User{UID: 0, Name: "root"}}}
	user := journal.Actor{UID: 1000, GID: 1000, User: "alice"}
	if err := checkIngested(user, forged, uidOf); wire.CodeOf(err) != wire.PermissionDenied || !strings.Contains(err.Error(), "pid 1") {
		t.Fatalf("uid 1000 ingesting pid 1: %v, want permission_denied naming pid 1", err)
	}
	own := []*journal.Body{{Kind: "capture.exec", Proc: &journal.Proc{PID: 4000}}, {Kind: "capture.exit", Proc: &journal.Proc{PID: 999999}}}
	if err := checkIngested(user, own, uidOf); err != nil {
		t.Fatalf("uid 1000 ingesting its own and exited processes: %v", err)
	}
	if err := checkIngested(journal.Actor{UID: 0}, forged, uidOf); err != nil {
		t.Fatalf("root ingesting: %v", err)
	}

	j := openJournal(t)
	p := NewPipeline(j.Stream(journal.Capture), PipelineOptions{Logger: quietLog})
	defer p.Close()
	body := &journal.Body{Kind: "capture.exec", Proc: &journal.Proc{PID: 999999, Name: "x"}, User: &journal.User{UID: 0, Name: "root"}}
	if err := p.Ingest(context.Background(), user, []*journal.Body{body}); err != nil {
		t.Fatal(err)
	}
	if body.User.UID != 1000 || body.User.Name != "alice" {
		t.Fatalf("ingested user %+v, want the caller's", body.User)
	}
}

// TestDecodeBuffers: a read or write keeps the first Snaplen bytes it
// moved as data.data (gathered from the iovecs of readv/writev and of
// sendmsg's msghdr), a failed call or unreadable memory none; every event names its thread, its parent and
// its login shell (the oldest shell among its ancestors).
func TestDecodeBuffers(t *testing.T) {
	f := newFake()
	f.set(11, 1, "/dev/pts/0")
	f.mem[0x2000] = []byte("hello, world")
	iov := binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, 0x2000), 4)
	f.mem[0x3000] = iov
	// A msghdr whose two iovecs hold "hell" and "o, w…".
	f.mem[0x2004] = []byte("o, world")
	two := binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(slices.Clone(iov), 0x2004), 8)
	f.mem[0x5000] = two
	f.mem[0x4000] = binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(make([]byte, 16), 0x5000), 2)
	d := NewDecoder(f)
	d.Snaplen = 5
	cases := []struct {
		s    Syscall
		want any
	}{
		{Syscall{PID: 11, Nr: 1, Args: [6]uint64{1, 0x2000, 12}, Ret: 12}, []byte("hello")}, // write: snaplen
		{Syscall{PID: 11, Nr: 0, Args: [6]uint64{1, 0x2000, 64}, Ret: 3}, []byte("hel")},    // read: what it read
		{Syscall{PID: 11, Nr: 20, Args: [6]uint64{1, 0x3000, 1}, Ret: 12}, []byte("hell")},  // writev: the first iovec
		{Syscall{PID: 11, Nr: 0, Args: [6]uint64{1, 0x2000, 64}, Ret: -11}, nil},            // EAGAIN: nothing moved
		{Syscall{PID: 11, Nr: 46, Args: [6]uint64{1, 0x4000, 0}, Ret: 12}, []byte("hello")}, // sendmsg: the msghdr's iovecs, in order
		{Syscall{PID: 11, Nr: 46, Args: [6]uint64{1, 0x2000, 0}, Ret: 12}, nil},             // a msghdr that cannot be read
		{Syscall{PID: 11, Nr: 1, Args: [6]uint64{1, 0x9000, 12}, Ret: 12}, nil},             // unreadable memory
	}
	for i, c := range cases {
		bs := d.Decode(c.s)
		if len(bs) != 1 {
			t.Fatalf("case %d: %d events", i, len(bs))
		}
		got, ok := bs[0].Data["data"]
		if c.want == nil && ok || c.want != nil && fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("case %d (%s): data = %q, want %q", i, SyscallName(c.s.Nr), got, c.want)
		}
		if p := bs[0].Proc; p.TID != 11 || p.PName != "dash" || p.LoginShellID != 10 || len(p.Ancestors) != 1 || p.Ancestors[0] != (journal.Ancestor{PID: 10, Name: "dash"}) {
			t.Errorf("case %d: tid %d, parent %q, login shell %d, ancestors %v; want 11, dash, 10, [dash 10]", i, p.TID, p.PName, p.LoginShellID, p.Ancestors)
		}
	}
	d.Snaplen = 0
	if bs := d.Decode(cases[0].s); bs[0].Data["data"] != nil {
		t.Errorf("snaplen 0 kept %q", bs[0].Data["data"])
	}
}

// TestSyntheticBuffers: capture start synthetic snaplen=N gives each event
// an N-byte read buffer, as a traced read carries, for the ingest bench.
func TestSyntheticBuffers(t *testing.T) {
	b := syntheticBody(7, 42, 80)
	buf, ok := b.Data["data"].([]byte)
	if !ok || len(buf) != 80 || b.Data["io_dir"] != "r" || b.Data["bytes"] != int64(80) {
		t.Fatalf("data %v", b.Data)
	}
	if _, ok := syntheticBody(7, 42, 0).Data["data"]; ok {
		t.Fatal("snaplen 0 gave a buffer")
	}
}

// TestDecodeSockets: an IP socket is named by its ends as sysdig names it
// once they are known — at connect (this end the client), at accept (this
// end the server), at listen (its own address) — with fd.sip, fd.sport,
// fd.cip, fd.cport and fd.l4proto; a Unix socket keeps the kernel's name.
func TestDecodeSockets(t *testing.T) {
	f := newFake()
	f.socks = map[uint64]diagSock{
		100: {Protocol: ipprotoTCP, Local: netip.MustParseAddrPort("127.0.0.1:40000"), Remote: netip.MustParseAddrPort("127.0.0.1:8765"), Inode: 100},
		200: {Protocol: ipprotoTCP, Local: netip.MustParseAddrPort("127.0.0.1:8765"), Inode: 200, State: tcpListen},
		300: {Protocol: ipprotoTCP, Local: netip.MustParseAddrPort("127.0.0.1:8765"), Remote: netip.MustParseAddrPort("127.0.0.1:40000"), Inode: 300},
	}
	f.set(11, 3, "socket:[100]")
	f.set(11, 4, "socket:[200]")
	f.set(11, 5, "socket:[300]")
	d := NewDecoder(f)
	fdOf := func(s Syscall) *journal.FD {
		t.Helper()
		bs := d.Decode(s)
		if len(bs) != 1 || bs[0].FD == nil {
			t.Fatalf("%s: %d events, fd %v", SyscallName(s.Nr), len(bs), bs)
		}
		return bs[0].FD
	}
	fdOf(Syscall{PID: 11, Nr: 41, Args: [6]uint64{traceAFInet}, Ret: 3})         // socket
	c := fdOf(Syscall{PID: 11, Nr: 42, Args: [6]uint64{3}, Ret: -errInProgress}) // connect, non-blocking
	w := fdOf(Syscall{PID: 11, Nr: 44, Args: [6]uint64{3, 0, 5}, Ret: 5})        // sendto
	want := journal.FD{Name: "127.0.0.1:40000->127.0.0.1:8765", Type: "ipv4", SIP: "127.0.0.1", SPort: 8765, CIP: "127.0.0.1", CPort: 40000, L4Proto: "tcp"}
	for _, got := range []*journal.FD{c, w} {
		if *got != want {
			t.Errorf("client end: %+v, want %+v", *got, want)
		}
	}
	fdOf(Syscall{PID: 11, Nr: 41, Args: [6]uint64{traceAFInet}, Ret: 4})
	if l := fdOf(Syscall{PID: 11, Nr: 50, Args: [6]uint64{4}}); l.Name != "127.0.0.1:8765" || l.SPort != 8765 || l.CIP != "" {
		t.Errorf("listener: %+v", *l)
	}
	if a := fdOf(Syscall{PID: 11, Nr: 43, Args: [6]uint64{4}, Ret: 5}); *a != want { // accept: the server's end of the same connection
		t.Errorf("server end: %+v, want %+v", *a, want)
	}
	f.set(11, 6, "socket:[999]")
	fdOf(Syscall{PID: 11, Nr: 41, Args: [6]uint64{traceAFUnix}, Ret: 6})
	if u := fdOf(Syscall{PID: 11, Nr: 42, Args: [6]uint64{6}}); u.Name != "socket:[999]" || u.Type != "unix" || u.SIP != "" {
		t.Errorf("unix socket: %+v", *u)
	}
}

// TestDecodeChdir: chdir records its path and the next event reads the
// new cwd; fchdir its descriptor.
func TestDecodeChdir(t *testing.T) {
	f := newFake()
	f.mem[0x5000] = append([]byte("/tmp/work"), 0, 'x', 'x')
	d := NewDecoder(f)
	d.Decode(Syscall{PID: 11, Nr: 0, Args: [6]uint64{0}, Ret: 0}) // cat is known, cwd ""
	p := f.procs[11]
	p.Cwd = "/tmp/work"
	f.procs[11] = p // the kernel's view after the chdir
	bs := d.Decode(Syscall{PID: 11, Nr: 80, Args: [6]uint64{0x5000}})
	if len(bs) != 1 || bs[0].Evt.Type != "chdir" || bs[0].Data["path"] != "/tmp/work" || bs[0].Proc.Cwd != "/tmp/work" {
		t.Fatalf("chdir: %+v %+v", bs[0].Data, bs[0].Proc)
	}
	f.set(11, 4, "/srv")
	if bs := d.Decode(Syscall{PID: 11, Nr: 81, Args: [6]uint64{4}}); bs[0].FD == nil || bs[0].FD.Name != "/srv" || bs[0].Data["fd"] != int64(4) {
		t.Fatalf("fchdir: %+v %+v", bs[0].Data, bs[0].FD)
	}
}

// TestDecodeUnixSocketPath: a Unix socket is named by the path it
// connected to, and a datagram sent to an address by that address, as
// sysdig names syslog's /dev/log.
func TestDecodeUnixSocketPath(t *testing.T) {
	f := newFake()
	sun := func(path string) []byte {
		return append(binary.LittleEndian.AppendUint16(nil, traceAFUnix), append([]byte(path), 0)...)
	}
	f.mem[0x6000] = sun("/dev/log")
	f.mem[0x7000] = sun("/run/x.sock")
	f.set(11, 3, "socket:[5]")
	d := NewDecoder(f)
	d.Decode(Syscall{PID: 11, Nr: 41, Args: [6]uint64{traceAFUnix}, Ret: 3})
	if bs := d.Decode(Syscall{PID: 11, Nr: 42, Args: [6]uint64{3, 0x6000, 11}}); bs[0].FD.Name != "/dev/log" || bs[0].FD.Type != "unix" {
		t.Fatalf("connect: %+v", bs[0].FD)
	}
	if bs := d.Decode(Syscall{PID: 11, Nr: 1, Args: [6]uint64{3}, Ret: 4}); bs[0].FD.Name != "/dev/log" {
		t.Fatalf("a write after connect: %+v", bs[0].FD)
	}
	f.set(11, 4, "socket:[6]")
	d.Decode(Syscall{PID: 11, Nr: 41, Args: [6]uint64{traceAFUnix}, Ret: 4})
	if bs := d.Decode(Syscall{PID: 11, Nr: 44, Args: [6]uint64{4, 0, 4, 0, 0x7000, 14}, Ret: 4}); bs[0].FD.Name != "/run/x.sock" {
		t.Fatalf("sendto an address: %+v", bs[0].FD)
	}
}
