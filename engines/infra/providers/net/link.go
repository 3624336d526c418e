package netprovider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// linkResource is net_link: a network interface.
type linkResource struct{}

var _ provider.Resource = linkResource{}

var linkSchema = &provider.Schema{
	Description: "A network interface (ip link): a bridge, a veth pair, a vxlan, macvlan or vlan on a lower link, a tun, tap or dummy.",
	Attributes: map[string]*provider.Attribute{
		"name": {Type: provider.String, Required: true, ForceNew: true,
			Description: "The interface name, at most 15 bytes."},
		"kind": {Type: provider.String, Required: true, ForceNew: true,
			Description: "One of " + strings.Join(kindNames(), ", ") + "."},
		"namespace": namespaceAttr(),
		"mtu": {Type: provider.Number, Optional: true, Computed: true,
			Description: "The MTU; the kernel's default when left out. A bridge keeps a configured MTU whatever ports join it."},
		"up": {Type: provider.Bool, Optional: true, Default: true,
			Description: "Whether the link (and a veth's peer) is up."},
		"master": {Type: provider.String, Optional: true, Default: "",
			Description: `The bridge, in the same namespace, the link is a port of; "" for none.`},
		"hardware_addr": {Type: provider.String, Optional: true, Computed: true,
			Description: "The MAC address, lower case with colons. A bridge made without one keeps the one it was born with rather than taking its ports'."},
		"peer_name": {Type: provider.String, Optional: true, ForceNew: true,
			Description: "veth: the peer's name. The peer is made in the same namespace and belongs to this resource."},
		"vni": {Type: provider.Number, Optional: true, ForceNew: true,
			Description: "vxlan: the VXLAN network identifier."},
		"port": {Type: provider.Number, Optional: true, Computed: true, ForceNew: true,
			Description: "vxlan: the UDP destination port, 4789 when left out."},
		"parent": {Type: provider.String, Optional: true, ForceNew: true,
			Description: "vxlan, macvlan, vlan: the lower link's name."},
		"vlan_id": {Type: provider.Number, Optional: true, ForceNew: true,
			Description: "vlan: the VLAN id, 0 to 4094."},
		"index": {Type: provider.Number, Computed: true,
			Description: "The interface index."},
	},
}

func (linkResource) Schema() *provider.Schema { return linkSchema }

func (linkResource) ID(v provider.Values) (string, error) {
	if v.String("name") == "" {
		return "", errors.New("net_link: name is not known")
	}
	return linkID(v.String("namespace"), v.String("name")), nil
}

func (linkResource) Validate(v provider.Values, known map[string]bool) error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(checkKnown(v, "name", func(s string) error { return checkLinkName("name", s) }))
	add(checkKnown(v, "namespace", checkNamespaceName))
	add(checkKnown(v, "master", func(s string) error {
		if s == "" {
			return nil
		}
		return checkLinkName("master", s)
	}))
	add(checkKnown(v, "parent", func(s string) error { return checkLinkName("parent", s) }))
	add(checkKnown(v, "peer_name", func(s string) error {
		if err := checkLinkName("peer_name", s); err != nil {
			return err
		}
		if s == v.String("name") {
			return fmt.Errorf("peer_name %q: a veth's peer needs a name of its own", s)
		}
		return nil
	}))
	add(checkKnown(v, "hardware_addr", func(s string) error { _, err := parseMAC(s); return err }))
	add(checkRange(v, "mtu", 68, 65535))
	add(checkRange(v, "vni", 0, 1<<24-1))
	add(checkRange(v, "port", 1, 65535))
	add(checkRange(v, "vlan_id", 0, 4094))

	kind, ok := v["kind"].(string)
	if !ok {
		return errors.Join(errs...) // unknown until apply
	}
	k, ok := kinds[kind]
	if !ok {
		errs = append(errs, fmt.Errorf("kind %q: want one of %s", kind, strings.Join(kindNames(), ", ")))
		return errors.Join(errs...)
	}
	for _, a := range k.needs {
		if missing(v, known, a) {
			errs = append(errs, fmt.Errorf("a %s link needs %s", kind, a))
		}
	}
	for _, a := range kindAttrs {
		if configured(v, known, a) && !slices.Contains(k.needs, a) && !slices.Contains(k.allows, a) {
			errs = append(errs, fmt.Errorf("%s does not apply to a %s link", a, kind))
		}
	}
	return errors.Join(errs...)
}

// checkRange checks a known number attribute against the kernel's bounds.
func checkRange(v provider.Values, name string, lo, hi int64) error {
	n, ok := v[name].(int64)
	if ok && (n < lo || n > hi) {
		return fmt.Errorf("%s %d: want %d to %d", name, n, lo, hi)
	}
	return nil
}

func (linkResource) Read(ctx context.Context, s provider.Session, id string) (provider.Values, bool, error) {
	ns, name, err := parseLinkID(id)
	if err != nil {
		return nil, false, err
	}
	l, d, err := readLink(s, ns, name)
	if isNoNamespace(err) {
		return nil, false, nil
	}
	if err != nil || l == nil {
		return nil, false, err
	}
	return linkValues(ns, l, d.name), true, nil
}

// readLink finds the link name of ns in the session's dump, nil when it
// does not exist; the error is a *noNamespaceError when ns does not.
func readLink(s provider.Session, ns, name string) (netlink.Link, *linkDump, error) {
	sess, err := sessionOf(s)
	if err != nil {
		return nil, nil, err
	}
	sp, err := sess.space(ns)
	if err != nil {
		return nil, nil, err
	}
	vw, err := sp.view(dumpLinks)
	if err != nil {
		return nil, nil, err
	}
	return vw.links.byName[name], vw.links, nil
}

func (linkResource) Create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	ns, name := planned.String("namespace"), planned.String("name")
	out, err := createLink(ctx, s, planned)
	if err != nil {
		return nil, fmt.Errorf("create link %s%s: %w", name, in(ns), err)
	}
	return out, nil
}

func createLink(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ns, name, kind := planned.String("namespace"), planned.String("name"), planned.String("kind")
	k, ok := kinds[kind]
	if !ok {
		return nil, fmt.Errorf("kind %q: want one of %s", kind, strings.Join(kindNames(), ", "))
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	if planned.Has("hardware_addr") {
		mac, err := parseMAC(planned.String("hardware_addr"))
		if err != nil {
			return nil, err
		}
		attrs.HardwareAddr = mac
	}
	// A bridge's MTU is set after it is made (converge): only then does the
	// kernel keep it when ports join.
	if planned.Has("mtu") && kind != "bridge" {
		attrs.MTU = int(planned.Int("mtu"))
	}
	if up(planned) {
		attrs.Flags = net.FlagUp
	}
	sess, err := sessionOf(s)
	if err != nil {
		return nil, err
	}
	sp, err := sess.space(ns)
	if err != nil {
		return nil, err
	}
	var out provider.Values
	err = sp.write(dumpAll, func(h *netlink.Handle, fd netns.NsHandle) error {
		names := newNameCache(h)
		// Find what the link refers to first, so a missing master or parent
		// fails before anything is made.
		if m := planned.String("master"); m != "" {
			if _, err := names.bridge(m); err != nil {
				return err
			}
		}
		l, err := k.build(attrs, planned, names.index)
		if err != nil {
			return err
		}
		if k.tuntap {
			err = addTuntap(h, fd, l)
		} else {
			err = h.LinkAdd(l)
		}
		if err != nil {
			return unsupportedKind(kind, err)
		}
		cur, err := h.LinkByName(name)
		if err == nil {
			cur, err = converge(h, cur, planned, true, names)
		}
		if err != nil {
			// Leave nothing half made behind: the engine did not see it.
			if derr := h.LinkDel(namedLink(name)); derr != nil && !isGone(derr) {
				return fmt.Errorf("%w (and removing the half-made link: %v)", err, derr)
			}
			return err
		}
		out = linkValues(ns, cur, names.name)
		return nil
	})
	return out, err
}

// addTuntap makes a tun or tap link. /dev/net/tun makes it in the namespace
// of the thread that opens it, so that happens on a thread of its own that
// joins the namespace and dies afterwards.
func addTuntap(h *netlink.Handle, fd netns.NsHandle, l netlink.Link) error {
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("%w: %w", &provider.Unsupported{Reason: "no /dev/net/tun on this machine"}, err)
	}
	// TUNSETIFF on the name of a persistent tun link attaches to it rather
	// than failing; a create must fail as for other kinds.
	if _, err := h.LinkByName(l.Attrs().Name); err == nil {
		return unix.EEXIST
	}
	return inNamespace(fd, func() error { return h.LinkAdd(l) })
}

func (linkResource) Update(ctx context.Context, s provider.Session, id string, prior, planned provider.Values) (provider.Values, error) {
	ns, name, err := parseLinkID(id)
	if err != nil {
		return nil, err
	}
	out, err := updateLink(ctx, s, ns, name, planned)
	if err != nil {
		return nil, fmt.Errorf("update link %s%s: %w", name, in(ns), err)
	}
	return out, nil
}

func updateLink(ctx context.Context, s provider.Session, ns, name string, planned provider.Values) (provider.Values, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sess, err := sessionOf(s)
	if err != nil {
		return nil, err
	}
	sp, err := sess.space(ns)
	if err != nil {
		return nil, err
	}
	var out provider.Values
	err = sp.write(dumpAll, func(h *netlink.Handle, _ netns.NsHandle) error {
		cur, err := h.LinkByName(name)
		if err != nil {
			return err
		}
		names := newNameCache(h)
		if cur, err = converge(h, cur, planned, false, names); err != nil {
			return err
		}
		out = linkValues(ns, cur, names.name)
		return nil
	})
	return out, err
}

// up returns the planned up, true when left out (the schema's default).
func up(v provider.Values) bool {
	b, ok := v["up"].(bool)
	return !ok || b
}

// converge brings the link's mutable attributes (mtu, hardware_addr,
// master, up) to planned and returns the link as the kernel then has it.
// created says the link was just made.
func converge(h *netlink.Handle, cur netlink.Link, planned provider.Values, created bool, names *nameCache) (netlink.Link, error) {
	a := cur.Attrs()
	names.learn(a.Index, a.Name)
	bridge := kindOf(cur) == "bridge"
	changed := false
	if planned.Has("mtu") {
		mtu := int(planned.Int("mtu"))
		switch {
		case a.MTU != mtu:
			if err := h.LinkSetMTU(cur, mtu); err != nil {
				return nil, fmt.Errorf("set mtu %d: %w", mtu, err)
			}
			changed = true
		case created && bridge:
			// The kernel keeps a bridge's MTU when ports join only if it was
			// set by hand, and setting the MTU it already has is no
			// setting at all: step away and back.
			step := mtu - 1
			if step < 68 {
				step = mtu + 1
			}
			if err := h.LinkSetMTU(cur, step); err != nil {
				return nil, fmt.Errorf("set mtu %d: %w", step, err)
			}
			if err := h.LinkSetMTU(cur, mtu); err != nil {
				return nil, fmt.Errorf("set mtu %d: %w", mtu, err)
			}
		}
		// At creation netlink gives a veth's peer the same MTU; later the
		// pair is kept in step here.
		if peer := planned.String("peer_name"); peer != "" && !created && a.MTU != mtu && kindOf(cur) == "veth" {
			if err := h.LinkSetMTU(namedLink(peer), mtu); err != nil {
				return nil, fmt.Errorf("set peer %s mtu %d: %w", peer, mtu, err)
			}
		}
	}
	if planned.Has("hardware_addr") {
		mac, err := parseMAC(planned.String("hardware_addr"))
		if err != nil {
			return nil, err
		}
		if mac.String() != a.HardwareAddr.String() {
			if err := h.LinkSetHardwareAddr(cur, mac); err != nil {
				return nil, fmt.Errorf("set hardware_addr %s: %w", mac, err)
			}
			changed = true
		}
	} else if created && bridge {
		// A bridge takes its ports' lowest MAC unless its own was set by
		// hand: set the one it was born with, so it stays put.
		if err := h.LinkSetHardwareAddr(cur, a.HardwareAddr); err != nil {
			return nil, fmt.Errorf("keep hardware_addr %s: %w", a.HardwareAddr, err)
		}
	}
	switch m := planned.String("master"); {
	case m == "" && a.MasterIndex != 0:
		if err := h.LinkSetNoMaster(cur); err != nil {
			return nil, fmt.Errorf("leave master: %w", err)
		}
		changed = true
	case m != "":
		i, err := names.bridge(m)
		if err != nil {
			return nil, err
		}
		if a.MasterIndex != i {
			if err := h.LinkSetMasterByIndex(cur, i); err != nil {
				return nil, fmt.Errorf("set master %s: %w", m, err)
			}
			changed = true
		}
	}
	want, isUp := up(planned), a.Flags&net.FlagUp != 0
	if want != isUp {
		set := h.LinkSetDown
		if want {
			set = h.LinkSetUp
		}
		if err := set(cur); err != nil {
			return nil, fmt.Errorf("set up=%t: %w", want, err)
		}
		changed = true
	}
	// A veth's peer follows it up and down; it is made down.
	if peer := planned.String("peer_name"); peer != "" && kindOf(cur) == "veth" && (created && want || !created && want != isUp) {
		set := h.LinkSetDown
		if want {
			set = h.LinkSetUp
		}
		if err := set(namedLink(peer)); err != nil {
			return nil, fmt.Errorf("set peer %s up=%t: %w", peer, want, err)
		}
	}
	if !changed {
		return cur, nil
	}
	return h.LinkByName(a.Name)
}

// namedLink is a link netlink finds by name (one get) before acting on it.
func namedLink(name string) netlink.Link {
	return &netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: name}}
}

func (linkResource) Delete(ctx context.Context, s provider.Session, id string, prior provider.Values) error {
	ns, name, err := parseLinkID(id)
	if err != nil {
		return err
	}
	sess, err := sessionOf(s)
	if err != nil {
		return err
	}
	sp, err := sess.space(ns)
	if err != nil {
		return err
	}
	err = sp.write(dumpAll, func(h *netlink.Handle, _ netns.NsHandle) error {
		l, err := h.LinkByName(name)
		if err != nil {
			return err
		}
		return h.LinkDel(l)
	})
	if err != nil && !isGone(err) && !isNoNamespace(err) {
		return fmt.Errorf("delete link %s%s: %w", name, in(ns), err)
	}
	return nil
}
