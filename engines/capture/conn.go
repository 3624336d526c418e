package capture

import (
	"net/netip"
	"time"

	"github.com/cairnhq/cairn/journal"
)

// The kinds of the conn source.
const (
	ConnConnectKind = "capture.connect"
	ConnCloseKind   = "capture.close"
)

// connEntry is what the conn source knows of one socket it saw connected.
type connEntry struct {
	sock diagSock // as last seen: by a poll, or by its destroy notification
	role string   // "connect" or "accept"
	pid  int64    // 0: not found
	name string   // proc.name of pid
	// missing counts the polls since the socket was last listed: its
	// destroy notification gets one interval to arrive (it is sent from a
	// kernel work queue, after the socket left the tables) before a poll
	// closes it with the counts it last had.
	missing int
	// seenAtClose marks a socket first seen by its destroy notification:
	// it opened and closed between two polls.
	seenAtClose bool
}

// listenKey is one listening socket's protocol and local address.
type listenKey struct {
	proto uint8
	addr  netip.AddrPort
}

// connTracker follows sockets from polls and destroy notifications and
// says which opened and which closed. It is pure: the source feeds it
// what the kernel said, and it never blocks.
type connTracker struct {
	conns     map[uint64]*connEntry // by socket cookie
	listeners map[listenKey]bool
	// The ephemeral port range, to tell a client from a server when no
	// listener says (an accepted socket whose listener is gone).
	portLo, portHi uint16
}

func newConnTracker(portLo, portHi uint16) *connTracker {
	return &connTracker{conns: map[uint64]*connEntry{}, listeners: map[listenKey]bool{}, portLo: portLo, portHi: portHi}
}

// setListeners replaces the known listeners of proto with those in socks.
func (t *connTracker) setListeners(proto uint8, socks []diagSock) {
	for k := range t.listeners {
		if k.proto == proto {
			delete(t.listeners, k)
		}
	}
	for _, s := range socks {
		if s.State == tcpListen && s.Protocol == proto {
			t.listeners[listenKey{proto, s.Local}] = true
		}
	}
}

// listening reports whether a listener of proto owns local's port: on
// local's address or on a wildcard one.
func (t *connTracker) listening(proto uint8, local netip.AddrPort) bool {
	if t.listeners[listenKey{proto, local}] {
		return true
	}
	port := local.Port()
	return t.listeners[listenKey{proto, netip.AddrPortFrom(netip.IPv4Unspecified(), port)}] ||
		t.listeners[listenKey{proto, netip.AddrPortFrom(netip.IPv6Unspecified(), port)}]
}

// role says whether s was accepted from a listener ("accept") or made by
// connect ("connect"). known is false when neither a listener nor the
// ephemeral port range tells, and the answer is "connect".
func (t *connTracker) role(s diagSock) (role string, known bool) {
	if s.Protocol == ipprotoTCP && t.listening(s.Protocol, s.Local) {
		return "accept", true
	}
	eph := func(p uint16) bool { return t.portHi != 0 && p >= t.portLo && p <= t.portHi }
	lp, rp := s.Local.Port(), s.Remote.Port()
	switch {
	case eph(rp) && !eph(lp):
		return "accept", true
	case eph(lp) && !eph(rp):
		return "connect", true
	}
	return "connect", false
}

// poll takes one poll's connected sockets and returns the sockets that
// opened since the last poll and those that are gone for good (missing
// from two polls in a row without a destroy notification).
func (t *connTracker) poll(socks []diagSock) (opened, closed []*connEntry) {
	seen := make(map[uint64]bool, len(socks))
	for _, s := range socks {
		if !s.Connected() || s.State == tcpTimeWait || s.State == tcpSynRecv {
			continue
		}
		seen[s.Cookie] = true
		if e, ok := t.conns[s.Cookie]; ok {
			e.sock, e.missing = s, 0
			continue
		}
		e := &connEntry{sock: s}
		e.role, _ = t.role(s)
		t.conns[s.Cookie] = e
		opened = append(opened, e)
	}
	for c, e := range t.conns {
		if seen[c] {
			continue
		}
		e.missing++
		if e.missing >= 2 {
			delete(t.conns, c)
			closed = append(closed, e)
		}
	}
	return opened, closed
}

// destroyed takes a destroy notification. It returns the socket's entry
// with its final counts, and whether it is new (never seen by a poll: the
// caller emits its connect first). A socket that never connected gives nil.
func (t *connTracker) destroyed(s diagSock) (e *connEntry, isNew bool) {
	if !s.Connected() {
		return nil, false
	}
	e, ok := t.conns[s.Cookie]
	if !ok {
		e = &connEntry{sock: s, seenAtClose: true}
		e.role, _ = t.role(s)
	} else {
		delete(t.conns, s.Cookie)
		s.Inode, s.UID = e.sock.Inode, e.sock.UID // the notification has neither
		e.sock = s
	}
	return e, !ok
}

// open lists the connections the tracker holds.
func (t *connTracker) open() []*connEntry {
	out := make([]*connEntry, 0, len(t.conns))
	for _, e := range t.conns {
		out = append(out, e)
	}
	return out
}

// connBody is a connect or close event of e. The fd object follows
// sysdig: sip/sport is the server's end, cip/cport the client's, and
// fd.name is "client->server" whichever end is local.
func connBody(kind, typ string, e *connEntry, now time.Time) *journal.Body {
	s := e.sock
	client, server := s.Local, s.Remote
	if e.role == "accept" {
		client, server = s.Remote, s.Local
	}
	fdType := "ipv4"
	if !s.Local.Addr().Is4() {
		fdType = "ipv6"
	}
	name := client.String() + "->" + server.String()
	data := map[string]any{
		"state": tcpStateName(s.State),
		"inode": int64(s.Inode),
		"role":  e.role, // which end is local, on the close too
	}
	if s.Protocol == ipprotoUDP {
		data["state"] = "CONNECTED"
	}
	if s.HaveBytes && !(kind == ConnConnectKind && e.seenAtClose) {
		data["bytes_sent"] = int64(s.BytesAcked)
		data["bytes_received"] = int64(s.BytesReceived)
	}
	if e.seenAtClose {
		data["seen_at_close"] = true
	}
	b := &journal.Body{
		Kind:    kind,
		Subject: l4proto(s.Protocol) + "/" + name,
		Actor:   journal.SystemActor(),
		Evt:     &journal.Evt{Type: typ, Time: now.UnixNano()},
		FD: &journal.FD{
			Name: name, Type: fdType, L4Proto: l4proto(s.Protocol),
			SIP: server.Addr().String(), SPort: int64(server.Port()),
			CIP: client.Addr().String(), CPort: int64(client.Port()),
		},
		Data: data,
	}
	if e.pid != 0 {
		b.Proc = &journal.Proc{PID: e.pid, Name: e.name}
	}
	return b
}
