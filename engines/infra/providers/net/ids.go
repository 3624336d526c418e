package netprovider

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// IDs put the namespace first, empty for the daemon's own: "ns1/br0",
// "/br0". Neither a namespace name nor a link name may hold a slash, so the
// first slashes split an ID unambiguously even when a CIDR follows.

func linkID(ns, name string) string { return ns + "/" + name }

func parseLinkID(id string) (ns, name string, err error) {
	ns, name, ok := strings.Cut(id, "/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("link id %q: want NAMESPACE/NAME, such as ns1/br0 or /br0 for the daemon's namespace", id)
	}
	return ns, name, nil
}

func addressID(ns, link, cidr string) string { return ns + "/" + link + "/" + cidr }

func parseAddressID(id string) (ns, link, cidr string, err error) {
	parts := strings.SplitN(id, "/", 3)
	if len(parts) != 3 || parts[1] == "" || !strings.Contains(parts[2], "/") {
		return "", "", "", fmt.Errorf("address id %q: want NAMESPACE/LINK/CIDR, such as ns1/br0/10.0.0.1/24", id)
	}
	return parts[0], parts[1], parts[2], nil
}

func routeID(ns, dst string) string { return ns + "/" + dst }

func parseRouteID(id string) (ns, dst string, err error) {
	ns, dst, ok := strings.Cut(id, "/")
	if !ok || dst == "" {
		return "", "", fmt.Errorf("route id %q: want NAMESPACE/DESTINATION, such as ns1/10.1.0.0/16 or /default", id)
	}
	return ns, dst, nil
}

// checkLinkName applies the kernel's rules for an interface name
// (dev_valid_name): 1 to 15 bytes, no slash, colon or white space, not "."
// or "..".
func checkLinkName(attr, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s: an interface name cannot be empty", attr)
	case len(s) > 15:
		return fmt.Errorf("%s %q: an interface name has at most 15 bytes", attr, s)
	case s == "." || s == "..":
		return fmt.Errorf("%s %q: not an interface name", attr, s)
	case strings.ContainsAny(s, "/: \t\n\r\v\f\x00"):
		return fmt.Errorf("%s %q: an interface name cannot hold a slash, a colon or white space", attr, s)
	}
	return nil
}

// checkNamespaceName accepts "" (the daemon's namespace) and the names ip
// netns accepts: a single file name under /run/netns.
func checkNamespaceName(s string) error {
	if s == "" {
		return nil
	}
	if s == "." || s == ".." || strings.ContainsAny(s, "/\x00") || len(s) > 255 {
		return fmt.Errorf("namespace %q: not a name ip netns accepts (a file name under /run/netns, no slash)", s)
	}
	return nil
}

// prefixOf converts a kernel address or destination to a netip.Prefix,
// keeping the address bits (not the network). The kernel gives IPv4 in 4
// bytes, but netlink makes a default route's zero address 16 bytes long:
// the mask's length decides the family.
func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	ip := n.IP
	if bits == 32 {
		ip = ip.To4()
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok || a.BitLen() != bits {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones), true
}

// ipNet converts a prefix to what netlink takes, keeping the address bits.
func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// parseHostCIDR parses an interface address such as 10.0.0.1/24. It must
// be spelled as the kernel reports it back, so that what Read returns
// equals the configuration.
func parseHostCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("cidr %q: want an address with its prefix length, such as 10.0.0.1/24 or fd00::1/64", s)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("cidr %q: write an IPv4 address as IPv4 (%s/%d)", s, p.Addr().Unmap(), p.Bits()-96)
	}
	if p.String() != s {
		return netip.Prefix{}, fmt.Errorf("cidr %q: write it as %s, the way the kernel reports it", s, p)
	}
	return p, nil
}

// parseDestination parses a route destination: a network such as
// 10.1.0.0/16 spelled canonically, or "default", the IPv4 default route
// (0.0.0.0/0). The IPv6 default route is ::/0: one spelling per route
// keeps IDs unique.
func parseDestination(s string) (p netip.Prefix, err error) {
	if s == "default" {
		return netip.PrefixFrom(netip.IPv4Unspecified(), 0), nil
	}
	p, err = netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("destination %q: want default, ::/0 or a network such as 10.1.0.0/16", s)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("destination %q: write an IPv4 network as IPv4", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("destination %q has host bits set: write the network, %s", s, m)
	}
	if p.Bits() == 0 && p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("destination %q: write the IPv4 default route as default", s)
	}
	if p.String() != s {
		return netip.Prefix{}, fmt.Errorf("destination %q: write it as %s, the way the kernel reports it", s, p)
	}
	return p, nil
}

// parseGateway parses a gateway address, spelled canonically.
func parseGateway(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("gateway %q: want an IP address such as 10.0.0.254", s)
	}
	if a.Is4In6() {
		return netip.Addr{}, fmt.Errorf("gateway %q: write an IPv4 address as IPv4 (%s)", s, a.Unmap())
	}
	if a.String() != s {
		return netip.Addr{}, fmt.Errorf("gateway %q: write it as %s, the way the kernel reports it", s, a)
	}
	return a, nil
}

// parseMAC parses a hardware address, spelled as the kernel reports it:
// lower case, colons.
func parseMAC(s string) (net.HardwareAddr, error) {
	mac, err := net.ParseMAC(s)
	if err != nil {
		return nil, fmt.Errorf("hardware_addr %q: want a MAC address such as 02:00:00:00:00:01", s)
	}
	if mac.String() != s {
		return nil, fmt.Errorf("hardware_addr %q: write it as %s, the way the kernel reports it", s, mac)
	}
	return mac, nil
}

// ipString spells an address from the kernel as netip does (4 bytes for
// IPv4, 16 for IPv6), "" for none.
func ipString(ip net.IP) string {
	if len(ip) == 0 {
		return ""
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return ip.String()
	}
	return a.String()
}

// in names a namespace in an error: " in ns1", or nothing for the daemon's.
func in(ns string) string {
	if ns == "" {
		return ""
	}
	return " in " + ns
}
