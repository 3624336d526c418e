package capture

import (
	"encoding/binary"
	"encoding/json"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/cairnhq/cairn/journal"
)

// The fixtures were recorded on a little-endian host (see testdata/conn/README).
func readConnFixture(t *testing.T, name string) []byte {
	t.Helper()
	var one uint16 = 1
	if *(*byte)(unsafe.Pointer(&one)) != 1 {
		t.Skip("the sock_diag fixtures are little-endian; this host is not")
	}
	b, err := os.ReadFile("testdata/conn/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseInetDiagDump(t *testing.T) {
	socks, done, err := parseInetDiag(readConnFixture(t, "dump_tcp4.bin"), ipprotoTCP, nil)
	if err != nil || !done {
		t.Fatalf("parse: done %v, err %v", done, err)
	}
	if len(socks) != 5 {
		t.Fatalf("%d sockets, want 5: %+v", len(socks), socks)
	}
	listener := diagSock{Family: afInet, Protocol: ipprotoTCP, State: tcpListen,
		Local: netip.MustParseAddrPort("127.0.0.1:42901"), Remote: netip.MustParseAddrPort("0.0.0.0:0"),
		Cookie: 4099, Inode: 557721, HaveBytes: true}
	accepted := diagSock{Family: afInet, Protocol: ipprotoTCP, State: tcpEstablished,
		Local: netip.MustParseAddrPort("127.0.0.1:42901"), Remote: netip.MustParseAddrPort("127.0.0.1:55332"),
		Cookie: 4100, Inode: 557724, HaveBytes: true, BytesReceived: 4096}
	client := diagSock{Family: afInet, Protocol: ipprotoTCP, State: tcpEstablished,
		Local: netip.MustParseAddrPort("127.0.0.1:55332"), Remote: netip.MustParseAddrPort("127.0.0.1:42901"),
		Cookie: 4101, Inode: 557723, HaveBytes: true, BytesAcked: 4097} // the SYN counts
	for i, want := range []diagSock{listener, accepted, client} {
		if got := socks[2+i]; got != want {
			t.Errorf("socket %d:\n got %+v\nwant %+v", 2+i, got, want)
		}
	}
	if socks[2].Connected() || !socks[3].Connected() {
		t.Errorf("Connected: listener %v, accepted %v", socks[2].Connected(), socks[3].Connected())
	}
}

func TestParseInetDiagDestroy(t *testing.T) {
	// A socket that never connected: the tracker ignores it.
	socks, done, err := parseInetDiag(readConnFixture(t, "destroy_tcp4_0.bin"), 0, nil)
	if err != nil || done || len(socks) != 1 || socks[0].Connected() || socks[0].Protocol != ipprotoTCP {
		t.Fatalf("destroy 0: %+v, done %v, err %v", socks, done, err)
	}
	// The client's close: the protocol comes from INET_DIAG_PROTOCOL, the
	// final counts from tcp_info (SYN and FIN acked), no inode.
	socks, _, err = parseInetDiag(readConnFixture(t, "destroy_tcp4_1.bin"), 0, nil)
	want := diagSock{Family: afInet, Protocol: ipprotoTCP, State: tcpClose,
		Local: netip.MustParseAddrPort("127.0.0.1:55332"), Remote: netip.MustParseAddrPort("127.0.0.1:42901"),
		Cookie: 4101, HaveBytes: true, BytesAcked: 4098}
	if err != nil || len(socks) != 1 || socks[0] != want {
		t.Fatalf("destroy 1: %+v, err %v\nwant %+v", socks, err, want)
	}
}

func TestParseInetDiagBad(t *testing.T) {
	b := readConnFixture(t, "destroy_tcp4_1.bin")
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"truncated datagram", b[:len(b)-8], "netlink message of"},
		{"short header", func() []byte {
			c := append([]byte(nil), b[:nlmsgHdrLen+40]...)
			binary.NativeEndian.PutUint32(c, uint32(len(c)))
			return c
		}(), "shorter than its 72-byte header"},
		{"bad attribute", func() []byte {
			c := append([]byte(nil), b...)
			binary.NativeEndian.PutUint16(c[nlmsgHdrLen+inetDiagMsgLen:], 0xfff0)
			return c
		}(), "inet_diag attribute"},
		{"netlink error", func() []byte {
			c := make([]byte, nlmsgHdrLen+4)
			binary.NativeEndian.PutUint32(c, uint32(len(c)))
			binary.NativeEndian.PutUint16(c[4:], nlmsgTypeError)
			binary.NativeEndian.PutUint32(c[nlmsgHdrLen:], uint32(0xffffffff)) // -EPERM
			return c
		}(), "netlink error 1"},
	} {
		if _, _, err := parseInetDiag(tc.b, 0, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestInetDiagRequest(t *testing.T) {
	b := inetDiagRequest(afInet6, ipprotoTCP, 1<<tcpListen, 7)
	ne := binary.NativeEndian
	if len(b) != 72 || ne.Uint32(b) != 72 || ne.Uint16(b[4:]) != sockDiagByFamily || ne.Uint16(b[6:]) != 0x301 || ne.Uint32(b[8:]) != 7 {
		t.Fatalf("header % x", b[:16])
	}
	if b[16] != afInet6 || b[17] != ipprotoTCP || b[18] != 2 || ne.Uint32(b[20:]) != 1<<10 {
		t.Fatalf("request % x", b[16:24])
	}
}

func TestConnSmallParsers(t *testing.T) {
	if lo, hi, err := parsePortRange([]byte("32768\t60999\n")); err != nil || lo != 32768 || hi != 60999 {
		t.Errorf("parsePortRange: %d %d %v", lo, hi, err)
	}
	for _, bad := range []string{"", "1", "9 8", "1 70000", "a b"} {
		if _, _, err := parsePortRange([]byte(bad)); err == nil {
			t.Errorf("parsePortRange(%q) accepted", bad)
		}
	}
	for link, want := range map[string]uint64{"socket:[557723]": 557723, "pipe:[12]": 0, "socket:[x]": 0, "/dev/null": 0} {
		if got, ok := parseSocketLink(link); got != want || ok != (want != 0) {
			t.Errorf("parseSocketLink(%q) = %d %v", link, got, ok)
		}
	}
	if tcpStateName(tcpEstablished) != "ESTABLISHED" || tcpStateName(99) != "UNKNOWN(99)" {
		t.Errorf("tcpStateName")
	}
}

func sock(cookie uint64, local, remote string, state uint8, acked, recvd uint64) diagSock {
	return diagSock{Family: afInet, Protocol: ipprotoTCP, State: state, Cookie: cookie, Inode: cookie + 1000,
		Local: netip.MustParseAddrPort(local), Remote: netip.MustParseAddrPort(remote),
		HaveBytes: true, BytesAcked: acked, BytesReceived: recvd}
}

func TestConnTrackerPoll(t *testing.T) {
	tr := newConnTracker(32768, 60999)
	listener := sock(1, "0.0.0.0:80", "0.0.0.0:0", tcpListen, 0, 0)
	tr.setListeners(ipprotoTCP, []diagSock{listener})
	in := sock(2, "10.0.0.1:80", "10.0.0.2:51000", tcpEstablished, 10, 20)
	out := sock(3, "10.0.0.1:40000", "10.0.0.9:443", tcpEstablished, 30, 40)
	tw := sock(4, "10.0.0.1:40001", "10.0.0.9:443", tcpTimeWait, 0, 0)
	opened, closed := tr.poll([]diagSock{listener, in, out, tw})
	if len(opened) != 2 || len(closed) != 0 {
		t.Fatalf("first poll: opened %d closed %d", len(opened), len(closed))
	}
	roles := map[uint64]string{}
	for _, e := range opened {
		roles[e.sock.Cookie] = e.role
	}
	if roles[2] != "accept" || roles[3] != "connect" {
		t.Errorf("roles %v", roles)
	}
	// out vanishes without a notification: closed at the second poll
	// without it, with the counts it last had.
	in.BytesAcked = 100
	if opened, closed = tr.poll([]diagSock{in}); len(opened)+len(closed) != 0 {
		t.Fatalf("second poll: opened %d closed %d", len(opened), len(closed))
	}
	if _, closed = tr.poll([]diagSock{in}); len(closed) != 1 || closed[0].sock.Cookie != 3 || closed[0].sock.BytesReceived != 40 {
		t.Fatalf("third poll: closed %+v", closed)
	}
	// in closes: its notification has the final counts but no inode.
	fin := in
	fin.State, fin.Inode, fin.BytesAcked = tcpClose, 0, 1<<20
	e, isNew := tr.destroyed(fin)
	if e == nil || isNew || e.sock.BytesAcked != 1<<20 || e.sock.Inode != 1002 || e.role != "accept" {
		t.Fatalf("destroyed: %+v new %v", e, isNew)
	}
	if len(tr.open()) != 0 {
		t.Errorf("still open: %v", tr.open())
	}
}

func TestConnTrackerRole(t *testing.T) {
	tr := newConnTracker(32768, 60999)
	for _, tc := range []struct {
		local, remote string
		role          string
		known         bool
	}{
		{"127.0.0.1:8080", "127.0.0.1:45000", "accept", true},  // the peer's port is ephemeral
		{"127.0.0.1:45000", "127.0.0.1:8080", "connect", true}, // ours is
		{"127.0.0.1:45000", "127.0.0.1:45001", "connect", false},
		{"127.0.0.1:22", "127.0.0.1:80", "connect", false},
	} {
		role, known := tr.role(sock(1, tc.local, tc.remote, tcpEstablished, 0, 0))
		if role != tc.role || known != tc.known {
			t.Errorf("%s->%s: %s %v, want %s %v", tc.local, tc.remote, role, known, tc.role, tc.known)
		}
	}
	// A listener on an ephemeral port (127.0.0.1:0) tells.
	tr.setListeners(ipprotoTCP, []diagSock{sock(9, "127.0.0.1:45001", "0.0.0.0:0", tcpListen, 0, 0)})
	if role, known := tr.role(sock(1, "127.0.0.1:45001", "127.0.0.1:45000", tcpEstablished, 0, 0)); role != "accept" || !known {
		t.Errorf("with the listener: %s %v", role, known)
	}
}

func TestConnBody(t *testing.T) {
	tr := newConnTracker(32768, 60999)
	// Opened and closed between two polls: seen first at its close.
	fin := sock(5, "127.0.0.1:8080", "127.0.0.1:45000", tcpClose, 3, 1<<20)
	fin.Inode = 0
	e, isNew := tr.destroyed(fin)
	if !isNew || e.role != "accept" {
		t.Fatalf("destroyed: %+v new %v", e, isNew)
	}
	e.pid, e.name = 42, "nginx"
	now := time.Unix(1767323045, 0)
	got := func(kind, typ string) string {
		b, err := json.Marshal(connBody(kind, typ, e, now))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	want := `{"kind":"capture.close","subject":"tcp/127.0.0.1:45000-\u003e127.0.0.1:8080","node":"","actor":` + systemActorJSON(t) + `,"data":{"bytes_received":1048576,"bytes_sent":3,"inode":0,"role":"accept","seen_at_close":true,"state":"CLOSE"},"evt":{"type":"close","time":1767323045000000000},"proc":{"name":"nginx","pid":42},"fd":{"name":"127.0.0.1:45000-\u003e127.0.0.1:8080","type":"ipv4","sip":"127.0.0.1","sport":8080,"cip":"127.0.0.1","cport":45000,"l4proto":"tcp"}}`
	if g := got(ConnCloseKind, "close"); g != want {
		t.Errorf("close:\n got %s\nwant %s", g, want)
	}
	// Its connect carries no counts: they were not known when it opened.
	if g := got(ConnConnectKind, "accept"); strings.Contains(g, "bytes_") || !strings.Contains(g, `"type":"accept"`) {
		t.Errorf("connect: %s", g)
	}
	// IPv6, a client.
	e6 := &connEntry{role: "connect", sock: diagSock{Family: afInet6, Protocol: ipprotoTCP, State: tcpEstablished,
		Local: netip.MustParseAddrPort("[2001:db8::1]:45000"), Remote: netip.MustParseAddrPort("[2001:db8::2]:443")}}
	b := connBody(ConnConnectKind, "connect", e6, now)
	if b.FD.Name != "[2001:db8::1]:45000->[2001:db8::2]:443" || b.FD.Type != "ipv6" || b.FD.SIP != "2001:db8::2" || b.Proc != nil {
		t.Errorf("ipv6 connect: %+v %+v", b.FD, b.Proc)
	}
}

// systemActorJSON is journal.SystemActor as JSON: what cairn's own
// observations carry.
func systemActorJSON(t *testing.T) string {
	t.Helper()
	b, err := json.Marshal(journal.SystemActor())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
