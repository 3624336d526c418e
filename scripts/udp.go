package scripts

import (
	"net"
	"net/netip"
	"strconv"

	lua "github.com/yuin/gopher-lua"
)

// udpSetPeername is sysdig.udp_setpeername(ADDR, PORT): where udp_send
// sends (a statsd, as sysdig's tracers_2_statsd sends to). A sandboxed
// chisel may send to a loopback address only; the daemon's
// --allow-unsafe-scripts lets it send anywhere.
func (in *instance) udpSetPeername(L *lua.LState) int {
	host := L.CheckString(1)
	port, err := strconv.Atoi(L.ToStringMeta(L.CheckAny(2)).String())
	if err != nil || port < 1 || port > 65535 {
		L.ArgError(2, "a port from 1 to 65535")
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		L.ArgError(1, "an IP address")
	}
	if !addr.IsLoopback() && !in.r.lib.opts.AllowUnsafe {
		L.RaiseError("sysdig.udp_setpeername(%s): a sandboxed chisel sends to loopback only (the daemon's --allow-unsafe-scripts lifts this)", host)
	}
	if in.r.udp != nil {
		in.r.udp.Close()
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, uint16(port))))
	if err != nil {
		L.RaiseError("sysdig.udp_setpeername: %v", err)
	}
	in.r.udp = c
	return 0
}

// udpSend is sysdig.udp_send(DATA): one datagram to the peer set by
// udp_setpeername. A lost datagram is not an error, as with UDP anywhere.
func (in *instance) udpSend(L *lua.LState) int {
	data := L.CheckString(1)
	if in.r.udp == nil {
		L.RaiseError("sysdig.udp_send: call sysdig.udp_setpeername first")
	}
	_, _ = in.r.udp.Write([]byte(data))
	return 0
}
