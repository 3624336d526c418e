package netprovider

import (
	"fmt"
	"net"
	"sort"

	"github.com/vishvananda/netlink"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// kindAttrs are the attributes that only some kinds take.
var kindAttrs = []string{"peer_name", "vni", "port", "parent", "vlan_id"}

// linkKind is what the provider knows of one link kind: the kind-specific
// attributes it needs and allows, how to build the netlink request and how
// to read those attributes back.
type linkKind struct {
	needs  []string
	allows []string // beyond needs
	// build makes the link to add; index finds a link of the same
	// namespace by name.
	build func(a netlink.LinkAttrs, v provider.Values, index func(string) (int, error)) (netlink.Link, error)
	// read fills the kind-specific attributes of v from l.
	read func(l netlink.Link, v provider.Values, name func(int) string)
	// tuntap kinds are made by ioctl inside the namespace, not by rtnetlink.
	tuntap bool
}

// vxlanPort is the IANA port iproute2 uses; the kernel's own default,
// 8472, predates it.
const vxlanPort = 4789

var kinds = map[string]linkKind{
	"bridge": {
		build: func(a netlink.LinkAttrs, _ provider.Values, _ func(string) (int, error)) (netlink.Link, error) {
			return &netlink.Bridge{LinkAttrs: a}, nil
		},
	},
	"dummy": {
		build: func(a netlink.LinkAttrs, _ provider.Values, _ func(string) (int, error)) (netlink.Link, error) {
			return &netlink.Dummy{LinkAttrs: a}, nil
		},
	},
	"veth": {
		needs: []string{"peer_name"},
		build: func(a netlink.LinkAttrs, v provider.Values, _ func(string) (int, error)) (netlink.Link, error) {
			return &netlink.Veth{LinkAttrs: a, PeerName: v.String("peer_name"), PeerTxQLen: -1}, nil
		},
		read: func(l netlink.Link, v provider.Values, name func(int) string) {
			// IFLA_LINK names the peer; with a netnsid it is in another
			// namespace and its index means nothing here.
			if a := l.Attrs(); a.ParentIndex != 0 && a.NetNsID < 0 {
				v["peer_name"] = nonEmpty(name(a.ParentIndex))
			}
		},
	},
	"vxlan": {
		needs:  []string{"vni"},
		allows: []string{"port", "parent"},
		build: func(a netlink.LinkAttrs, v provider.Values, index func(string) (int, error)) (netlink.Link, error) {
			x := &netlink.Vxlan{LinkAttrs: a, VxlanId: int(v.Int("vni")), Port: vxlanPort, Learning: true}
			if v.Has("port") {
				x.Port = int(v.Int("port"))
			}
			if p := v.String("parent"); p != "" {
				i, err := index(p)
				if err != nil {
					return nil, fmt.Errorf("parent: %w", err)
				}
				x.VtepDevIndex = i
			}
			return x, nil
		},
		read: func(l netlink.Link, v provider.Values, name func(int) string) {
			x, ok := l.(*netlink.Vxlan)
			if !ok {
				return
			}
			v["vni"], v["port"] = int64(x.VxlanId), int64(x.Port)
			if x.VtepDevIndex != 0 {
				v["parent"] = nonEmpty(name(x.VtepDevIndex))
			}
		},
	},
	"macvlan": {
		needs: []string{"parent"},
		build: func(a netlink.LinkAttrs, v provider.Values, index func(string) (int, error)) (netlink.Link, error) {
			i, err := index(v.String("parent"))
			if err != nil {
				return nil, fmt.Errorf("parent: %w", err)
			}
			a.ParentIndex = i
			return &netlink.Macvlan{LinkAttrs: a}, nil
		},
		read: readParent,
	},
	"vlan": {
		needs: []string{"parent", "vlan_id"},
		build: func(a netlink.LinkAttrs, v provider.Values, index func(string) (int, error)) (netlink.Link, error) {
			i, err := index(v.String("parent"))
			if err != nil {
				return nil, fmt.Errorf("parent: %w", err)
			}
			a.ParentIndex = i
			return &netlink.Vlan{LinkAttrs: a, VlanId: int(v.Int("vlan_id")), VlanProtocol: netlink.VLAN_PROTOCOL_8021Q}, nil
		},
		read: func(l netlink.Link, v provider.Values, name func(int) string) {
			readParent(l, v, name)
			if x, ok := l.(*netlink.Vlan); ok {
				v["vlan_id"] = int64(x.VlanId)
			}
		},
	},
	"tun": {tuntap: true, build: buildTuntap(netlink.TUNTAP_MODE_TUN)},
	"tap": {tuntap: true, build: buildTuntap(netlink.TUNTAP_MODE_TAP)},
}

func buildTuntap(mode netlink.TuntapMode) func(netlink.LinkAttrs, provider.Values, func(string) (int, error)) (netlink.Link, error) {
	return func(a netlink.LinkAttrs, _ provider.Values, _ func(string) (int, error)) (netlink.Link, error) {
		// As ip tuntap add makes them: persistent, one queue, no packet
		// information header, failing on a name that exists.
		return &netlink.Tuntap{LinkAttrs: a, Mode: mode, Flags: netlink.TUNTAP_DEFAULTS | netlink.TUNTAP_NO_PI}, nil
	}
}

func readParent(l netlink.Link, v provider.Values, name func(int) string) {
	if a := l.Attrs(); a.ParentIndex != 0 && a.NetNsID < 0 {
		v["parent"] = nonEmpty(name(a.ParentIndex))
	}
}

// nonEmpty returns s, or nil (null) for "".
func nonEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func kindNames() []string {
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// kindOf names l's kind as the schema does: tun and tap apart, other kinds
// as netlink names them ("device" for one without a kind, such as lo).
func kindOf(l netlink.Link) string {
	if t, ok := l.(*netlink.Tuntap); ok {
		if t.Mode == netlink.TUNTAP_MODE_TAP {
			return "tap"
		}
		return "tun"
	}
	return l.Type()
}

// linkValues returns every attribute of l as the schema has it; name
// resolves an index of the same namespace to a link name.
func linkValues(ns string, l netlink.Link, name func(int) string) provider.Values {
	a := l.Attrs()
	v := provider.Values{
		"name":          a.Name,
		"kind":          kindOf(l),
		"namespace":     ns,
		"mtu":           int64(a.MTU),
		"up":            a.Flags&net.FlagUp != 0,
		"master":        "",
		"hardware_addr": a.HardwareAddr.String(),
		"index":         int64(a.Index),
	}
	for _, k := range kindAttrs {
		v[k] = nil
	}
	if a.MasterIndex != 0 {
		v["master"] = name(a.MasterIndex)
	}
	if k, ok := kinds[v.String("kind")]; ok && k.read != nil {
		k.read(l, v, name)
	}
	return v
}
