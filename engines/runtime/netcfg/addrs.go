package netcfg

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
)

// ErrSubnetFull says every host address of the subnet is taken.
var ErrSubnetFull = errors.New("no free address in the subnet")

// ErrAddrInUse says a requested address is the gateway's or another
// container's.
var ErrAddrInUse = errors.New("in use by the gateway or another container")

// checkSubnet accepts an IPv4 network with room for at least one container
// besides the gateway: NAT is done with iptables, not ip6tables, and a /31
// or /32 has no host address to spare.
func checkSubnet(p netip.Prefix) error {
	if !p.IsValid() {
		return errors.New("subnet is not set")
	}
	if !p.Addr().Is4() {
		return fmt.Errorf("subnet %s: only IPv4 subnets are supported", p)
	}
	if p.Bits() > 30 {
		return fmt.Errorf("subnet %s: too small, a /30 or larger leaves room for the gateway and a container", p)
	}
	if p.Masked() != p {
		return fmt.Errorf("subnet %s: host bits are set (did you mean %s?)", p, p.Masked())
	}
	return nil
}

// checkHost accepts a host address of subnet: in it, and neither its
// network nor its broadcast address.
func checkHost(subnet netip.Prefix, a netip.Addr) error {
	if !subnet.Contains(a) {
		return fmt.Errorf("not an address of %s", subnet)
	}
	if a == subnet.Addr() || a == broadcast(subnet) {
		return fmt.Errorf("the network or broadcast address of %s", subnet)
	}
	return nil
}

// broadcast returns the subnet's last address.
func broadcast(subnet netip.Prefix) netip.Addr {
	a := subnet.Addr().As4()
	host := uint32(1)<<(32-subnet.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// nextFree returns the lowest host address of subnet that is not in used
// (which holds the gateway). The lowest, not the one after the last handed
// out: addresses stay small and predictable, and a reused address gets the
// same MAC (macFor), so no neighbour holds a stale ARP entry for it.
func nextFree(subnet netip.Prefix, used map[netip.Addr]bool) (netip.Addr, error) {
	last := broadcast(subnet)
	for a := subnet.Addr().Next(); a.Less(last); a = a.Next() {
		if !used[a] {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("subnet %s: %w (detach a container, or choose a larger subnet)", subnet, ErrSubnetFull)
}

// macFor derives a container's MAC from its IPv4 address, as Docker did:
// locally administered (02), "ca" for cairn, then the address.
func macFor(a netip.Addr) net.HardwareAddr {
	b := a.As4()
	return net.HardwareAddr{0x02, 0xca, b[0], b[1], b[2], b[3]}
}

// idPattern is what a container id may look like: it names a file
// (StateDir/netns/ID) and part of a link name.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

func checkID(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("container id %q: want 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit", id)
	}
	return nil
}

// hostVethName names the host end of a container's veth pair: "vc" and the
// id's first 8 characters, so ip link shows which container a link serves.
// When another endpoint already has that name (two ids that share their
// first 8 characters), it is "vc" and 8 hex digits of the id's hash.
func hostVethName(id string, taken map[string]bool) string {
	name := "vc" + id[:min(len(id), 8)]
	if !taken[name] {
		return name
	}
	sum := sha256.Sum256([]byte(id))
	return "vc" + hex.EncodeToString(sum[:4])
}
