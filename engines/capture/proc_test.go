package capture

import (
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func procFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "proc", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestProcParseStat(t *testing.T) {
	for _, tc := range []struct {
		file string
		want procStat
	}{
		{"stat_parens", procStat{PID: 4242, Comm: "my (weird) prog", State: 'S', PPID: 1, StartTime: 987654}},
		{"stat_cat", procStat{PID: 26058, Comm: "cat", State: 'R', PPID: 26030, StartTime: 569475}},
	} {
		got, err := parseProcStat(procFixture(t, tc.file))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.file, got, tc.want)
		}
	}
	for _, bad := range []string{"", "12 cat S 1", "12 (cat) S", "x (cat) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20"} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q): no error", bad)
		}
	}
}

func TestProcParseStatus(t *testing.T) {
	got, err := parseProcStatus(procFixture(t, "status_setuid"))
	if err != nil {
		t.Fatal(err)
	}
	want := procStatus{Name: "sleep", PPID: 76, UID: 1000, EUID: 65534, GID: 100, EGID: 65533, HaveIDs: true}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	got, err = parseProcStatus(procFixture(t, "status_cat"))
	if err != nil || got.Name != "cat" || !got.HaveIDs {
		t.Errorf("status_cat: %+v, %v", got, err)
	}
	if _, err := parseProcStatus([]byte("Name:\tx\n")); err == nil {
		t.Error("status without ids: no error")
	}
	if _, err := parseProcStatus([]byte("Uid:\tzero\t0\t0\t0\nGid:\t0\t0\t0\t0\n")); err == nil {
		t.Error("status with a bad uid: no error")
	}
}

func TestProcParseCmdline(t *testing.T) {
	for _, tc := range []struct {
		file    string
		args    []string
		name    string
		cmdline string
	}{
		{"cmdline_sleep", []string{"sleep", "0.1"}, "sleep", "sleep 0.1"},
		{"cmdline_spaces", []string{"/usr/bin/python3", "-c", `print("a b")`}, "python3", `python3 -c print("a b")`},
		{"cmdline_kthread", nil, "kworker/0:1", "kworker/0:1"},
		{"cmdline_rewritten", []string{"nginx: worker process"}, "nginx", "nginx"},
	} {
		args := parseCmdline(procFixture(t, tc.file))
		if !reflect.DeepEqual(args, tc.args) {
			t.Errorf("%s: args %q, want %q", tc.file, args, tc.args)
		}
		if got := sysdigCmdline(tc.name, args); got != tc.cmdline {
			t.Errorf("%s: cmdline %q, want %q", tc.file, got, tc.cmdline)
		}
	}
}

func TestProcName(t *testing.T) {
	for _, tc := range []struct{ exe, comm, want string }{
		{"/usr/lib/jvm/bin/a-very-long-program-name", "a-very-long-pro", "a-very-long-program-name"},
		{"/usr/bin/sleep (deleted)", "sleep", "sleep"},
		{"", "kworker/0:1", "kworker/0:1"},
	} {
		if got := procName(tc.exe, tc.comm); got != tc.want {
			t.Errorf("procName(%q, %q) = %q, want %q", tc.exe, tc.comm, got, tc.want)
		}
	}
}

func TestProcParseCgroupContainer(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"cgroup_v1_docker", "3f1c9a2b7d4e"},
		{"cgroup_v2_docker", "4a5b6c7d8e9f"},
		{"cgroup_v2_containerd", "deadbeefcafe"},
		{"cgroup_kubepods_cgroupfs", "abcdefabcdef"},
		{"cgroup_host", "host"},
		{"cgroup_host_v1", "host"},
	} {
		if got := parseCgroupContainer(procFixture(t, tc.file)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.file, got, tc.want)
		}
	}
}

// connectorMsg builds one netlink datagram from the proc connector, field
// by field as the kernel lays it out: nlmsghdr, cn_msg, proc_event.
func connectorMsg(what uint32, ts uint64, body ...uint32) []byte {
	ne := binary.NativeEndian
	ev := ne.AppendUint32(nil, what)
	ev = ne.AppendUint32(ev, 1) // cpu
	ev = ne.AppendUint64(ev, ts)
	for _, v := range body {
		ev = ne.AppendUint32(ev, v)
	}
	cn := ne.AppendUint32(nil, cnIdxProc)
	cn = ne.AppendUint32(cn, cnValProc)
	cn = ne.AppendUint32(cn, 7) // seq
	cn = ne.AppendUint32(cn, 0) // ack
	cn = ne.AppendUint16(cn, uint16(len(ev)))
	cn = ne.AppendUint16(cn, 0)
	cn = append(cn, ev...)
	nl := ne.AppendUint32(nil, uint32(nlmsgHdrLen+len(cn)))
	nl = ne.AppendUint16(nl, nlmsgTypeDone)
	nl = ne.AppendUint16(nl, 0)
	nl = ne.AppendUint32(nl, 0)
	nl = ne.AppendUint32(nl, 0)
	return append(nl, cn...)
}

func TestProcParseConnector(t *testing.T) {
	var dgram []byte
	dgram = append(dgram, connectorMsg(procEventFork, 100, 10, 10, 11, 11)...)
	dgram = append(dgram, connectorMsg(procEventExec, 200, 11, 11)...)
	dgram = append(dgram, connectorMsg(procEventUID, 250, 11, 11, 1000, 65534)...)
	dgram = append(dgram, connectorMsg(procEventExit, 300, 11, 11, 3<<8, 17, 10, 10)...)
	dgram = append(dgram, connectorMsg(0x200, 400, 11, 11)...) // COMM: skipped
	dgram = append(dgram, connectorMsg(procEventNone, 0, 1)...)
	got, err := parseProcEvents(dgram, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []procEvent{
		{What: procEventFork, Timestamp: 100, ParentPID: 10, ParentTGID: 10, PID: 11, TGID: 11},
		{What: procEventExec, Timestamp: 200, PID: 11, TGID: 11},
		{What: procEventUID, Timestamp: 250, PID: 11, TGID: 11, RID: 1000, EID: 65534},
		{What: procEventExit, Timestamp: 300, PID: 11, TGID: 11, ExitCode: 3 << 8, ExitSignal: 17, ParentPID: 10, ParentTGID: 10},
		{What: procEventNone, AckErr: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
	if s := got[3].ShellStatus(); s != 3 {
		t.Errorf("exit status %d, want 3", s)
	}
	if s := (procEvent{ExitCode: 9}).ShellStatus(); s != 137 {
		t.Errorf("killed by SIGKILL: status %d, want 137", s)
	}
	if s := (procEvent{ExitCode: 0x8b}).ShellStatus(); s != 139 {
		t.Errorf("SIGSEGV with core: status %d, want 139", s)
	}

	// A pre-4.18 exit event has no parent fields.
	old, err := parseProcEvents(connectorMsg(procEventExit, 5, 20, 20, 0, 17), nil)
	if err != nil || len(old) != 1 || old[0].PID != 20 || old[0].ParentPID != 0 {
		t.Errorf("short exit: %+v, %v", old, err)
	}
	// Truncations are errors, never panics.
	full := connectorMsg(procEventFork, 1, 1, 1, 2, 2)
	for n := 1; n < len(full); n++ {
		b := append([]byte(nil), full[:n]...)
		if n >= 4 {
			binary.NativeEndian.PutUint32(b, uint32(n)) // a consistent nlmsg length
		}
		if evs, err := parseProcEvents(b, nil); err == nil && len(evs) > 0 {
			t.Errorf("%d of %d bytes: parsed %+v", n, len(full), evs)
		}
	}
}

// TestProcParseConnectorBytes pins the layout on a literal little-endian
// datagram: an exec of pid 0x1234 at 1 s.
func TestProcParseConnectorBytes(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("fixture is little-endian")
	}
	raw := strings.Join([]string{
		"3c000000", "0300", "0000", "00000000", "00000000", // nlmsghdr: len 60, NLMSG_DONE
		"01000000", "01000000", "00000000", "00000000", "1800", "0000", // cn_msg: proc, len 24
		"02000000", "00000000", "00ca9a3b00000000", // exec, cpu 0, 1e9 ns
		"34120000", "34120000", // pid, tgid
	}, "")
	b, err := hex.DecodeString(raw)
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseProcEvents(b, nil)
	want := []procEvent{{What: procEventExec, Timestamp: 1e9, PID: 0x1234, TGID: 0x1234}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, %v; want %+v", got, err, want)
	}
}

func TestProcListenMessage(t *testing.T) {
	b := procListenMessage(procCnMcastListen, 99)
	want := "28000000" + "0300" + "0000" + "00000000" + "63000000" +
		"01000000" + "01000000" + "00000000" + "00000000" + "0400" + "0000" + "01000000"
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 && hex.EncodeToString(b) != want {
		t.Errorf("listen message\n%x\nwant\n%s", b, want)
	}
}

func TestProcTable(t *testing.T) {
	tb := newProcTable()
	tb.put(procEntry{PID: 1, Name: "init", Exe: "/sbin/init"})
	tb.put(procEntry{PID: 10, PPID: 1, Name: "cairn"})
	tb.put(procEntry{PID: 11, PPID: 10, Name: "sh"})
	tb.put(procEntry{PID: 12, PPID: 1, Name: "other"})
	tb.markSelf(10)
	for pid, self := range map[int64]bool{1: false, 10: true, 11: true, 12: false} {
		if e, _ := tb.get(pid); e.Self != self {
			t.Errorf("pid %d self %v, want %v", pid, e.Self, self)
		}
	}
	c := tb.fork(11, 13, 500)
	if c.Name != "sh" || c.PPID != 11 || c.StartNS != 500 || !c.Self {
		t.Errorf("forked child %+v", c)
	}
	uid := int64(65534)
	tb.setIDs(13, &uid, nil)
	if e, _ := tb.get(13); e.UID != 65534 {
		t.Errorf("uid after setIDs: %d", e.UID)
	}
	if _, ok := tb.remove(13); !ok {
		t.Error("remove 13: not found")
	}
	if _, ok := tb.get(13); ok || tb.len() != 4 {
		t.Errorf("after remove: len %d", tb.len())
	}
	if e := tb.fork(999, 1000, 1); e.Name != "" || e.PPID != 999 {
		t.Errorf("fork of an unknown parent: %+v", e)
	}
}
