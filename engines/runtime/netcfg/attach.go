package netcfg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// containerIfname is the container's end of its veth pair.
const containerIfname = "eth0"

// Attach gives container id a network namespace joined to the bridge: the
// namespace bind mounted at StateDir/netns/ID, the next free address, a
// veth pair with its host end on the bridge and its other end eth0 in the
// namespace, lo up, and a default route through the gateway. The endpoint
// is persisted before anything is made, so that Detach finds all of it
// after a crash part way; an Attach that fails undoes what it did. Setup
// must have made the bridge.
func (n *Network) Attach(ctx context.Context, id string) (Endpoint, error) {
	return n.AttachAddr(ctx, id, netip.Addr{})
}

// AttachAddr is Attach with the container's address chosen by the caller
// (docker run --ip): a host address of the subnet that is neither the
// gateway nor another endpoint's. The zero Addr is the next free one.
func (n *Network) AttachAddr(ctx context.Context, id string, want netip.Addr) (Endpoint, error) {
	if err := checkID(id); err != nil {
		return Endpoint{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return Endpoint{}, errors.New("attach: network closed")
	}
	if _, ok := n.endpoints[id]; ok {
		return Endpoint{}, fmt.Errorf("attach %s: already attached (detach it first)", id)
	}
	br, err := n.h.LinkByName(n.bridge)
	if err != nil {
		return Endpoint{}, fmt.Errorf("attach %s: bridge %s: %w (Setup makes it)", id, n.bridge, err)
	}
	used := map[netip.Addr]bool{n.gw: true}
	taken := map[string]bool{}
	for _, ep := range n.endpoints {
		used[ep.IP] = true
		taken[ep.HostVeth] = true
	}
	ip := want
	if !ip.IsValid() {
		if ip, err = nextFree(n.subnet, used); err != nil {
			return Endpoint{}, fmt.Errorf("attach %s: %w", id, err)
		}
	} else if err := checkHost(n.subnet, ip); err != nil {
		return Endpoint{}, fmt.Errorf("attach %s: address %s: %w", id, ip, err)
	} else if used[ip] {
		return Endpoint{}, fmt.Errorf("attach %s: address %s: %w", id, ip, ErrAddrInUse)
	}
	ep := Endpoint{
		ID:        id,
		NetnsPath: n.netnsPath(id),
		IP:        ip,
		Gateway:   n.gw,
		Prefix:    n.subnet.Bits(),
		MAC:       macFor(ip).String(),
		HostVeth:  hostVethName(id, taken),
	}
	n.endpoints[id] = ep
	if err := saveState(n.stateDir, n.endpoints); err != nil {
		delete(n.endpoints, id)
		return Endpoint{}, fmt.Errorf("attach %s: %w", id, err)
	}
	if err := n.plumb(ctx, ep, br); err != nil {
		if derr := n.detachLocked(ep); derr != nil {
			n.log.Error("undo a failed attach", "id", id, "err", derr)
		}
		return Endpoint{}, fmt.Errorf("attach %s: %w", id, err)
	}
	n.log.Info("attached container", "id", id, "ip", ep.IP, "veth", ep.HostVeth, "netns", ep.NetnsPath)
	return ep, nil
}

// plumb makes ep's namespace and veth pair and configures both ends.
func (n *Network) plumb(ctx context.Context, ep Endpoint, br netlink.Link) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := addNamedNetns(ep.NetnsPath); err != nil {
		return err
	}
	ns, err := netns.GetFromPath(ep.NetnsPath)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", ep.NetnsPath, err)
	}
	defer ns.Close()
	mac, err := net.ParseMAC(ep.MAC)
	if err != nil {
		return err
	}
	// The peer is made inside the container's namespace directly, so eth0
	// never shows, nor clashes, in the bridge's.
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: ep.HostVeth, MasterIndex: br.Attrs().Index},
		PeerName:         containerIfname,
		PeerHardwareAddr: mac,
		PeerNamespace:    netlink.NsFd(ns),
	}
	if err := n.h.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s: %w", ep.HostVeth, err)
	}
	if err := n.h.LinkSetUp(veth); err != nil {
		return fmt.Errorf("set %s up: %w", ep.HostVeth, err)
	}
	var ch *netlink.Handle
	err = onOwnThread(func() (err error) {
		ch, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		return fmt.Errorf("open netlink in %s: %w", ep.NetnsPath, err)
	}
	defer ch.Close()
	return configureContainer(ch, ep)
}

// configureContainer gives eth0 its address and brings it and lo up, then
// routes everything through the gateway; h is netlink in the container's
// namespace.
func configureContainer(h *netlink.Handle, ep Endpoint) error {
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("container lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set container lo up: %w", err)
	}
	eth, err := h.LinkByName(containerIfname)
	if err != nil {
		return fmt.Errorf("container %s: %w", containerIfname, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: ep.IP.AsSlice(), Mask: net.CIDRMask(ep.Prefix, 32)}}
	if err := h.AddrAdd(eth, addr); err != nil {
		return fmt.Errorf("container %s: add address %s: %w", containerIfname, addr.IPNet, err)
	}
	if err := h.LinkSetUp(eth); err != nil {
		return fmt.Errorf("set container %s up: %w", containerIfname, err)
	}
	route := &netlink.Route{LinkIndex: eth.Attrs().Index, Gw: ep.Gateway.AsSlice()}
	if err := h.RouteAdd(route); err != nil {
		return fmt.Errorf("container default route via %s: %w", ep.Gateway, err)
	}
	return nil
}

// Detach undoes Attach: it deletes the veth pair, unmounts and removes the
// namespace's file, and frees the address. What is already gone (a second
// Detach, a crash part way through Attach or Detach) is no error.
func (n *Network) Detach(id string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return errors.New("detach: network closed")
	}
	ep, ok := n.endpoints[id]
	if !ok {
		return nil
	}
	if err := n.detachLocked(ep); err != nil {
		return fmt.Errorf("detach %s: %w", id, err)
	}
	n.log.Info("detached container", "id", id, "ip", ep.IP)
	return nil
}

// Attached returns the ids of the containers with an endpoint, sorted.
func (n *Network) Attached() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	ids := make([]string, 0, len(n.endpoints))
	for id := range n.endpoints {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// detachLocked removes ep's kernel objects, then its record: the record
// goes last, so a failure leaves it for the next Detach to finish.
func (n *Network) detachLocked(ep Endpoint) error {
	link, err := n.h.LinkByName(ep.HostVeth)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
	case err != nil:
		return fmt.Errorf("veth %s: %w", ep.HostVeth, err)
	case link.Type() != "veth" || !n.onBridge(link):
		// Not ours: a link of that name made Attach fail. A veth of ours
		// that never reached the bridge goes with its namespace.
		n.log.Warn("leaving a link that is not a veth on the bridge", "link", ep.HostVeth, "bridge", n.bridge)
	default:
		// Deleting one end deletes the pair. The namespace's deletion
		// would too, but only once the container's last process is gone.
		if err := n.h.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("delete veth %s: %w", ep.HostVeth, err)
		}
	}
	if err := deleteNamedNetns(ep.NetnsPath); err != nil {
		return err
	}
	delete(n.endpoints, ep.ID)
	if err := saveState(n.stateDir, n.endpoints); err != nil {
		n.endpoints[ep.ID] = ep
		return err
	}
	return nil
}

// onBridge reports whether link's master is the bridge.
func (n *Network) onBridge(link netlink.Link) bool {
	br, err := n.h.LinkByName(n.bridge)
	return err == nil && link.Attrs().MasterIndex == br.Attrs().Index
}
