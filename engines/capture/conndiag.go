package capture

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// This file holds the pure side of the conn source: building sock_diag
// (inet_diag) requests and decoding their answers and the kernel's socket
// destroy notifications (linux/inet_diag.h, linux/sock_diag.h, struct
// tcp_info of linux/tcp.h), so that they are tested on fixtures. Netlink
// speaks the host's byte order; ports and addresses are in network order.

// The sock_diag constants the conn source uses.
const (
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY, the request and answer type

	nlmFRequest = 0x1
	nlmFDump    = 0x300 // NLM_F_ROOT | NLM_F_MATCH

	inetDiagReqLen = 56 // struct inet_diag_req_v2
	inetDiagMsgLen = 72 // struct inet_diag_msg

	inetDiagInfo     = 2  // INET_DIAG_INFO: struct tcp_info
	inetDiagProtocol = 10 // INET_DIAG_PROTOCOL: u8, in destroy notifications

	// The multicast groups of socket destruction (enum sknetlink_groups).
	sknlgrpInetTCPDestroy  = 1
	sknlgrpInetUDPDestroy  = 2
	sknlgrpInet6TCPDestroy = 3
	sknlgrpInet6UDPDestroy = 4

	ipprotoTCP = 6
	ipprotoUDP = 17

	afInet  = 2
	afInet6 = 10

	// tcp_info offsets: tcpi_bytes_acked and tcpi_bytes_received (Linux 4.1).
	tcpInfoBytesAcked    = 120
	tcpInfoBytesReceived = 128
)

// The TCP states of include/net/tcp_states.h, by netstat's names.
const (
	tcpEstablished = 1
	tcpSynSent     = 2
	tcpSynRecv     = 3
	tcpTimeWait    = 6
	tcpClose       = 7
	tcpListen      = 10
)

var tcpStateNames = [...]string{
	1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
	6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN",
	11: "CLOSING", 12: "NEW_SYN_RECV", 13: "BOUND_INACTIVE",
}

// tcpStateName is netstat's name of a TCP state.
func tcpStateName(st uint8) string {
	if int(st) < len(tcpStateNames) && tcpStateNames[st] != "" {
		return tcpStateNames[st]
	}
	return "UNKNOWN(" + strconv.Itoa(int(st)) + ")"
}

// diagSock is one socket as sock_diag describes it.
type diagSock struct {
	Family   uint8
	Protocol uint8 // ipprotoTCP or ipprotoUDP
	State    uint8
	Local    netip.AddrPort // IPv4-mapped IPv6 addresses are unmapped
	Remote   netip.AddrPort
	Cookie   uint64 // the kernel's id of the socket, unique while it lives
	Inode    uint64 // 0 in destroy notifications
	UID      uint32
	// HaveBytes says the message carried a tcp_info with byte counts.
	HaveBytes     bool
	BytesAcked    uint64 // sent and acknowledged by the peer
	BytesReceived uint64
}

// Connected reports whether the socket has a peer (a TCP connection, or a
// connected UDP socket), as opposed to a listener or an unbound socket.
func (s diagSock) Connected() bool {
	return s.Remote.Port() != 0 && s.State != tcpListen
}

// inetDiagRequest is a dump request for every socket of family and protocol
// whose state is in the states bitmask (1<<state), asking for tcp_info.
func inetDiagRequest(family, protocol uint8, states uint32, seq uint32) []byte {
	ne := binary.NativeEndian
	b := make([]byte, nlmsgHdrLen+inetDiagReqLen)
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], sockDiagByFamily)
	ne.PutUint16(b[6:], nlmFRequest|nlmFDump)
	ne.PutUint32(b[8:], seq)
	r := b[nlmsgHdrLen:]
	r[0], r[1] = family, protocol
	r[2] = 1 << (inetDiagInfo - 1)
	ne.PutUint32(r[4:], states)
	return b
}

// parseInetDiag decodes the inet_diag messages of one netlink datagram,
// a dump answer or a destroy notification. protocol is the protocol of
// the request (a dump's messages do not say it); an INET_DIAG_PROTOCOL
// attribute overrides it. done reports the end of a dump (NLMSG_DONE).
func parseInetDiag(b []byte, protocol uint8, out []diagSock) (_ []diagSock, done bool, err error) {
	ne := binary.NativeEndian
	for len(b) >= nlmsgHdrLen {
		l := int(ne.Uint32(b[0:4]))
		typ := ne.Uint16(b[4:6])
		if l < nlmsgHdrLen || l > len(b) {
			return out, done, fmt.Errorf("netlink message of %d bytes in a datagram of %d", l, len(b))
		}
		msg := b[nlmsgHdrLen:l]
		b = b[min((l+3)&^3, len(b)):]
		switch typ {
		case nlmsgTypeDone:
			done = true
			continue
		case nlmsgTypeError:
			if len(msg) >= 4 {
				if errno := int32(ne.Uint32(msg[0:4])); errno != 0 {
					return out, done, fmt.Errorf("sock_diag: netlink error %d", -errno)
				}
			}
			continue
		case sockDiagByFamily:
		default:
			continue
		}
		s, err := parseInetDiagMsg(msg, protocol)
		if err != nil {
			return out, done, err
		}
		out = append(out, s)
	}
	return out, done, nil
}

// parseInetDiagMsg decodes one struct inet_diag_msg and its attributes.
func parseInetDiagMsg(m []byte, protocol uint8) (diagSock, error) {
	ne := binary.NativeEndian
	var s diagSock
	if len(m) < inetDiagMsgLen {
		return s, fmt.Errorf("inet_diag message of %d bytes, shorter than its %d-byte header", len(m), inetDiagMsgLen)
	}
	s.Family, s.State, s.Protocol = m[0], m[1], protocol
	id := m[4:52]
	sport := binary.BigEndian.Uint16(id[0:2])
	dport := binary.BigEndian.Uint16(id[2:4])
	src, err := diagAddr(s.Family, id[4:20])
	if err != nil {
		return s, err
	}
	dst, _ := diagAddr(s.Family, id[20:36])
	s.Local, s.Remote = netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dport)
	s.Cookie = uint64(ne.Uint32(id[40:44])) | uint64(ne.Uint32(id[44:48]))<<32
	s.UID = ne.Uint32(m[64:68])
	s.Inode = uint64(ne.Uint32(m[68:72]))

	attrs := m[inetDiagMsgLen:]
	for len(attrs) >= 4 {
		al := int(ne.Uint16(attrs[0:2]))
		at := ne.Uint16(attrs[2:4]) & 0x3fff // without NLA_F_NESTED / NET_BYTEORDER
		if al < 4 || al > len(attrs) {
			return s, fmt.Errorf("inet_diag attribute of %d bytes in %d", al, len(attrs))
		}
		val := attrs[4:al]
		attrs = attrs[min((al+3)&^3, len(attrs)):]
		switch at {
		case inetDiagProtocol:
			if len(val) >= 1 {
				s.Protocol = val[0]
			}
		case inetDiagInfo:
			// Older kernels send a shorter tcp_info: no counts then.
			if len(val) >= tcpInfoBytesReceived+8 {
				s.HaveBytes = true
				s.BytesAcked = ne.Uint64(val[tcpInfoBytesAcked:])
				s.BytesReceived = ne.Uint64(val[tcpInfoBytesReceived:])
			}
		}
	}
	return s, nil
}

// diagAddr reads an address of inet_diag_sockid (four u32, network order).
func diagAddr(family uint8, b []byte) (netip.Addr, error) {
	switch family {
	case afInet:
		return netip.AddrFrom4([4]byte(b[:4])), nil
	case afInet6:
		return netip.AddrFrom16([16]byte(b[:16])).Unmap(), nil
	}
	return netip.Addr{}, fmt.Errorf("inet_diag message of address family %d", family)
}

// l4proto is sysdig's fd.l4proto of a protocol number.
func l4proto(p uint8) string {
	switch p {
	case ipprotoTCP:
		return "tcp"
	case ipprotoUDP:
		return "udp"
	}
	return strconv.Itoa(int(p))
}

// parseSocketLink returns the inode of a /proc/PID/fd link to a socket
// ("socket:[12345]").
func parseSocketLink(link string) (uint64, bool) {
	rest, ok := strings.CutPrefix(link, "socket:[")
	if !ok || !strings.HasSuffix(rest, "]") {
		return 0, false
	}
	n, err := strconv.ParseUint(rest[:len(rest)-1], 10, 64)
	return n, err == nil
}

// parsePortRange parses /proc/sys/net/ipv4/ip_local_port_range ("32768\t60999").
func parsePortRange(b []byte) (lo, hi uint16, err error) {
	f := strings.Fields(string(bytes.TrimSpace(b)))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("parse ip_local_port_range %q: want two ports", truncate(b))
	}
	l, err1 := strconv.ParseUint(f[0], 10, 16)
	h, err2 := strconv.ParseUint(f[1], 10, 16)
	if err1 != nil || err2 != nil || l > h {
		return 0, 0, fmt.Errorf("parse ip_local_port_range %q: want two ports, low first", truncate(b))
	}
	return uint16(l), uint16(h), nil
}
