package netcfg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
)

// Setup makes the host side ready: the bridge with the gateway address, up;
// IPv4 forwarding on; the subnet masqueraded when it leaves through another
// link; and forwarding to and from the bridge allowed when the FORWARD
// chain's policy drops. Each step checks before it changes, so Setup can
// run at every daemon start.
func (n *Network) Setup(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return errors.New("setup: network closed")
	}
	if err := n.setupBridge(); err != nil {
		return err
	}
	if err := n.inHome(enableForwarding); err != nil {
		return err
	}
	return n.setupFirewall(ctx)
}

// setupBridge makes the bridge if it is missing, gives it the gateway
// address if it has none, and brings it up. A bridge with another IPv4
// address is an error: it belongs to someone else, or the subnet changed
// under running containers.
func (n *Network) setupBridge() error {
	gw := netip.PrefixFrom(n.gw, n.subnet.Bits())
	link, err := n.h.LinkByName(n.bridge)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.bridge}}
		if err := n.h.LinkAdd(br); err != nil {
			return fmt.Errorf("create bridge %s: %w", n.bridge, err)
		}
		if link, err = n.h.LinkByName(n.bridge); err != nil {
			return fmt.Errorf("bridge %s: %w", n.bridge, err)
		}
		n.log.Info("created bridge", "bridge", n.bridge)
	case err != nil:
		return fmt.Errorf("bridge %s: %w", n.bridge, err)
	case link.Type() != "bridge":
		return fmt.Errorf("bridge %s: a link of that name exists and is a %s, not a bridge: remove it or choose another bridge name", n.bridge, link.Type())
	}
	addrs, err := n.h.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("bridge %s: list addresses: %w", n.bridge, err)
	}
	has := false
	for _, a := range addrs {
		p, ok := prefixOf(a.IPNet)
		if ok && p == gw {
			has = true
			continue
		}
		return fmt.Errorf("bridge %s has address %s, not %s: the subnet changed or another program owns the bridge (remove the address, or set the subnet to match it)", n.bridge, a.IPNet, gw)
	}
	if !has {
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: gw.Addr().AsSlice(), Mask: net.CIDRMask(gw.Bits(), 32)}}
		if err := n.h.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("bridge %s: add address %s: %w", n.bridge, gw, err)
		}
	}
	if err := n.h.LinkSetUp(link); err != nil {
		return fmt.Errorf("bridge %s: set up: %w", n.bridge, err)
	}
	return nil
}

// enableForwarding turns on IPv4 forwarding in the calling thread's
// namespace (net.ipv4.ip_forward is per namespace).
func enableForwarding() error {
	const path = "/proc/sys/net/ipv4/ip_forward"
	b, err := os.ReadFile(path)
	if err == nil && len(b) > 0 && b[0] == '1' {
		return nil
	}
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enable IPv4 forwarding (sysctl net.ipv4.ip_forward=1): %w", err)
	}
	return nil
}

// prefixOf turns a netlink address into a netip prefix.
func prefixOf(ipn *net.IPNet) (netip.Prefix, bool) {
	if ipn == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(ipn.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := ipn.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

// Remove deletes what Setup made for this network: its iptables rules and
// its bridge (IPv4 forwarding stays on: other networks use it). It refuses
// while a container is attached. The Network is closed after.
func (n *Network) Remove(ctx context.Context) error {
	n.mu.Lock()
	if len(n.endpoints) > 0 {
		n.mu.Unlock()
		return fmt.Errorf("remove network %s: %d containers are attached (remove them first)", n.bridge, len(n.endpoints))
	}
	if err := n.removeFirewall(ctx); err != nil {
		n.mu.Unlock()
		return err
	}
	link, err := n.h.LinkByName(n.bridge)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
	case err != nil:
		n.mu.Unlock()
		return fmt.Errorf("remove bridge %s: %w", n.bridge, err)
	default:
		if err := n.h.LinkDel(link); err != nil {
			n.mu.Unlock()
			return fmt.Errorf("remove bridge %s: %w", n.bridge, err)
		}
		n.log.Info("removed bridge", "bridge", n.bridge)
	}
	n.mu.Unlock()
	return n.Close()
}
