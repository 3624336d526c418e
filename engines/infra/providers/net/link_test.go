package netprovider

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

var links = linkResource{}

func TestLinkBridgeLifecycle(t *testing.T) {
	ns := testNS(t)
	s := open(t)
	cfg := provider.Values{"name": "br0", "kind": "bridge", "namespace": ns, "mtu": int64(1400)}
	id, created := create(t, s, links, cfg)
	if id != ns+"/br0" {
		t.Errorf("id %q, want %q", id, ns+"/br0")
	}
	l := ipLink(t, ns, "br0")
	if l == nil {
		t.Fatal("ip does not show br0")
	}
	if ipKind(l) != "bridge" || l["mtu"] != float64(1400) || !hasFlag(l, "UP") {
		t.Errorf("ip shows kind %s mtu %v flags %v, want bridge 1400 UP", ipKind(l), l["mtu"], l["flags"])
	}
	if created["hardware_addr"] != l["address"] || created["index"] != int64(l["ifindex"].(float64)) {
		t.Errorf("create returned %v, ip shows %v", created, l)
	}
	got, found := read(t, links, id)
	if !found {
		t.Fatal("read: not found")
	}
	sameValues(t, "read after create", got, created)
	noDiff(t, links, cfg, got)

	cfg2 := cfg.Clone()
	cfg2["mtu"], cfg2["up"] = int64(1300), false
	updated, err := links.Update(context.Background(), s, id, created, config(t, links, cfg2))
	if err != nil {
		t.Fatal(err)
	}
	l = ipLink(t, ns, "br0")
	if l["mtu"] != float64(1300) || hasFlag(l, "UP") {
		t.Errorf("after update ip shows mtu %v flags %v, want 1300 and down", l["mtu"], l["flags"])
	}
	got, _ = read(t, links, id)
	sameValues(t, "read after update", got, updated)
	noDiff(t, links, cfg2, got)

	if err := links.Delete(context.Background(), s, id, updated); err != nil {
		t.Fatal(err)
	}
	if l := ipLink(t, ns, "br0"); l != nil {
		t.Errorf("ip still shows br0 after delete: %v", l)
	}
	if _, found := read(t, links, id); found {
		t.Error("read after delete: found")
	}
	if err := links.Delete(context.Background(), s, id, updated); err != nil {
		t.Errorf("delete of a link already gone: %v", err)
	}
}

// A bridge with a configured MTU keeps it when ports with a larger one
// join, and keeps its MAC: a second plan is empty.
func TestBridgeKeepsMTUWithPorts(t *testing.T) {
	ns := testNS(t)
	s := open(t)
	brCfg := provider.Values{"name": "br0", "kind": "bridge", "namespace": ns, "mtu": int64(1400)}
	brID, br := create(t, s, links, brCfg)
	var ports []provider.Values
	for _, p := range []string{"va0", "va1"} {
		cfg := provider.Values{"name": p, "kind": "veth", "peer_name": p + "p", "namespace": ns, "master": "br0"}
		id, v := create(t, s, links, cfg)
		if v["master"] != "br0" || v["peer_name"] != p+"p" || v["mtu"] != int64(1500) {
			t.Errorf("create %s returned %v", p, v)
		}
		got, _ := read(t, links, id)
		sameValues(t, "read "+p, got, v)
		noDiff(t, links, cfg, got)
		ports = append(ports, v)
		l := ipLink(t, ns, p)
		if l["master"] != "br0" || !hasFlag(l, "UP") {
			t.Errorf("ip shows %s master %v flags %v", p, l["master"], l["flags"])
		}
		if peer := ipLink(t, ns, p+"p"); peer == nil || !hasFlag(peer, "UP") {
			t.Errorf("ip shows peer %sp as %v, want it up", p, peer)
		}
	}
	if l := ipLink(t, ns, "br0"); l["mtu"] != float64(1400) {
		t.Errorf("ip shows br0 mtu %v with two ports, want 1400", l["mtu"])
	}
	got, _ := read(t, links, brID)
	sameValues(t, "bridge read after ports joined", got, br)
	noDiff(t, links, brCfg, got)

	// Leaving the bridge is an update of master to "".
	cfg := provider.Values{"name": "va0", "kind": "veth", "peer_name": "va0p", "namespace": ns}
	v, err := links.Update(context.Background(), s, ns+"/va0", ports[0], config(t, links, cfg))
	if err != nil {
		t.Fatal(err)
	}
	if v["master"] != "" {
		t.Errorf("master after leaving: %v", v["master"])
	}
	if l := ipLink(t, ns, "va0"); l["master"] != nil {
		t.Errorf("ip shows va0 master %v after leaving", l["master"])
	}
}

// A bridge whose configured MTU is the one it is born with still keeps it
// when smaller ports join.
func TestBridgeKeepsDefaultMTU(t *testing.T) {
	ns := testNS(t)
	s := open(t)
	cfg := provider.Values{"name": "br0", "kind": "bridge", "namespace": ns, "mtu": int64(1500)}
	id, br := create(t, s, links, cfg)
	create(t, s, links, provider.Values{"name": "va0", "kind": "veth", "peer_name": "vb0", "namespace": ns, "master": "br0", "mtu": int64(1400)})
	got, _ := read(t, links, id)
	sameValues(t, "bridge read after a 1400 port joined", got, br)
}

func TestLinkKinds(t *testing.T) {
	cases := []struct {
		kind  string
		cfg   provider.Values
		check func(t *testing.T, l map[string]any)
	}{
		{kind: "bridge"},
		{kind: "dummy", cfg: provider.Values{"mtu": int64(9000)}},
		{kind: "veth", cfg: provider.Values{"peer_name": "peer0", "mtu": int64(1450)}, check: func(t *testing.T, l map[string]any) {
			if l["link"] != "peer0" {
				t.Errorf("ip shows the veth's peer as %v", l["link"])
			}
		}},
		{kind: "vxlan", cfg: provider.Values{"vni": int64(42), "parent": "lower"}, check: func(t *testing.T, l map[string]any) {
			data := l["linkinfo"].(map[string]any)["info_data"].(map[string]any)
			if data["id"] != float64(42) || data["port"] != float64(4789) || data["link"] != "lower" {
				t.Errorf("ip shows vxlan data %v", data)
			}
		}},
		{kind: "macvlan", cfg: provider.Values{"parent": "lower"}, check: func(t *testing.T, l map[string]any) {
			if l["link"] != "lower" {
				t.Errorf("ip shows the macvlan on %v", l["link"])
			}
		}},
		{kind: "vlan", cfg: provider.Values{"parent": "lower", "vlan_id": int64(7)}, check: func(t *testing.T, l map[string]any) {
			data := l["linkinfo"].(map[string]any)["info_data"].(map[string]any)
			if l["link"] != "lower" || data["id"] != float64(7) {
				t.Errorf("ip shows the vlan on %v with %v", l["link"], data)
			}
		}},
		{kind: "tun", cfg: provider.Values{"mtu": int64(1400)}},
		{kind: "tap", cfg: provider.Values{"hardware_addr": "02:00:00:00:00:07"}, check: func(t *testing.T, l map[string]any) {
			if l["address"] != "02:00:00:00:00:07" {
				t.Errorf("ip shows the tap's address as %v", l["address"])
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			ns := testNS(t)
			// A lower link for the kinds that need one.
			ip(t, "-n", ns, "link", "add", "lower", "type", "veth", "peer", "name", "lowerp")
			s := open(t)
			cfg := provider.Values{"name": "l0", "kind": c.kind, "namespace": ns}
			for k, v := range c.cfg {
				cfg[k] = v
			}
			id, created := create(t, s, links, cfg)
			l := ipLink(t, ns, "l0")
			if l == nil {
				t.Fatal("ip does not show l0")
			}
			if ipKind(l) != c.kind || !hasFlag(l, "UP") {
				t.Errorf("ip shows kind %s flags %v, want %s and up", ipKind(l), l["flags"], c.kind)
			}
			if mtu, ok := c.cfg["mtu"]; ok && l["mtu"] != float64(mtu.(int64)) {
				t.Errorf("ip shows mtu %v, want %v", l["mtu"], mtu)
			}
			if c.check != nil {
				c.check(t, l)
			}
			got, found := read(t, links, id)
			if !found {
				t.Fatal("read: not found")
			}
			sameValues(t, "read after create", got, created)
			noDiff(t, links, cfg, got)
			if err := links.Delete(context.Background(), s, id, created); err != nil {
				t.Fatal(err)
			}
			if ipLink(t, ns, "l0") != nil {
				t.Error("ip still shows l0 after delete")
			}
		})
	}
}

func TestLinkCreateErrors(t *testing.T) {
	ns := testNS(t)
	s := open(t)
	create(t, s, links, provider.Values{"name": "br0", "kind": "bridge", "namespace": ns})
	create(t, s, links, provider.Values{"name": "t0", "kind": "tap", "namespace": ns})
	create(t, s, links, provider.Values{"name": "v0", "kind": "veth", "peer_name": "v0p", "namespace": ns})
	cases := []struct {
		cfg  provider.Values
		want string
	}{
		{provider.Values{"name": "br0", "kind": "bridge"}, "create link br0 in " + ns + ": file exists"},
		{provider.Values{"name": "t0", "kind": "tap"}, "create link t0 in " + ns + ": file exists"},
		{provider.Values{"name": "p0", "kind": "bridge", "master": "v0"}, "master v0 is a veth link, not a bridge"},
		{provider.Values{"name": "p0", "kind": "bridge", "master": "nope"}, "no link nope"},
		{provider.Values{"name": "m0", "kind": "macvlan", "parent": "nope"}, "parent: no link nope"},
	}
	for _, c := range cases {
		c.cfg["namespace"] = ns
		_, err := links.Create(context.Background(), s, config(t, links, c.cfg))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("create %v: error %v, want %q", c.cfg, err, c.want)
		}
	}
	if l := ipLink(t, ns, "p0"); l != nil {
		t.Errorf("a failed create left p0 behind: %v", l)
	}
}

func TestLinkValidate(t *testing.T) {
	cases := []struct {
		v     provider.Values
		known []string // set in the configuration but unknown (nil in v)
		want  string   // "" for valid
	}{
		{v: provider.Values{"name": "br0", "kind": "bridge"}},
		{v: provider.Values{"name": "vx0", "kind": "vxlan", "vni": int64(5)}},
		{v: provider.Values{"name": "vx0", "kind": "vxlan"}, want: "a vxlan link needs vni"},
		{v: provider.Values{"name": "vx0", "kind": "vxlan"}, known: []string{"vni"}},
		{v: provider.Values{"name": "vl0", "kind": "vlan", "parent": "eth0"}, want: "a vlan link needs vlan_id"},
		{v: provider.Values{"name": "vl0", "kind": "vlan"}, known: []string{"parent", "vlan_id"}},
		{v: provider.Values{"name": "m0", "kind": "macvlan"}, want: "a macvlan link needs parent"},
		{v: provider.Values{"name": "v0", "kind": "veth"}, want: "a veth link needs peer_name"},
		{v: provider.Values{"name": "v0", "kind": "veth", "peer_name": "v0"}, want: "needs a name of its own"},
		{v: provider.Values{"name": "br0", "kind": "bridge", "vni": int64(3)}, want: "vni does not apply to a bridge link"},
		{v: provider.Values{"name": "br0", "kind": "bridge"}, known: []string{"peer_name"}, want: "peer_name does not apply"},
		{v: provider.Values{"name": "br0"}, known: []string{"kind"}},
		{v: provider.Values{"name": "br0", "kind": "bond"}, want: `kind "bond": want one of`},
		{v: provider.Values{"name": "a-name-too-long-0", "kind": "bridge"}, want: "at most 15 bytes"},
		{v: provider.Values{"name": "a/b", "kind": "bridge"}, want: "cannot hold a slash"},
		{v: provider.Values{"name": "br0", "kind": "bridge", "namespace": "a/b"}, want: "not a name ip netns accepts"},
		{v: provider.Values{"name": "br0", "kind": "bridge", "hardware_addr": "02:00:00:00:00:AA"}, want: "write it as 02:00:00:00:00:aa"},
		{v: provider.Values{"name": "vl0", "kind": "vlan", "parent": "e", "vlan_id": int64(4095)}, want: "vlan_id 4095: want 0 to 4094"},
		{v: provider.Values{"name": "br0", "kind": "bridge", "mtu": int64(10)}, want: "mtu 10"},
	}
	for _, c := range cases {
		known := map[string]bool{}
		for k := range c.v {
			known[k] = true
		}
		for _, k := range c.known {
			known[k] = true
		}
		err := links.Validate(c.v, known)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("validate %v (known %v): %v", c.v, c.known, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("validate %v (known %v): error %v, want %q", c.v, c.known, err, c.want)
		}
	}
}

func TestLinkDataSource(t *testing.T) {
	ns := testNS(t)
	ip(t, "-n", ns, "link", "add", "br9", "mtu", "1234", "type", "bridge")
	ip(t, "-n", ns, "link", "set", "br9", "up")
	s := open(t)
	d := linkData{}
	got, err := d.Read(context.Background(), s, provider.Values{"name": "br9", "namespace": ns})
	if err != nil {
		t.Fatal(err)
	}
	l := ipLink(t, ns, "br9")
	want := provider.Values{
		"name": "br9", "namespace": ns, "kind": "bridge", "mtu": int64(1234), "up": true, "master": "",
		"hardware_addr": l["address"], "index": int64(l["ifindex"].(float64)),
	}
	sameValues(t, "data source", got, want)
	for a := range d.Schema().Attributes {
		if _, ok := got[a]; !ok {
			t.Errorf("data source leaves out %s", a)
		}
	}
	lo, err := d.Read(context.Background(), s, provider.Values{"name": "lo", "namespace": ns})
	if err != nil || lo["kind"] != "device" || lo["up"] != false {
		t.Errorf("lo: %v, %v", lo, err)
	}
	_, err = d.Read(context.Background(), s, provider.Values{"name": "nope", "namespace": ns})
	if err == nil || !strings.Contains(err.Error(), "no such link") {
		t.Errorf("a missing link: %v", err)
	}
}

// Every resource type's Read returns every attribute of its schema.
func TestReadReturnsEverySchemaAttribute(t *testing.T) {
	ns := testNS(t)
	s := open(t)
	_, v := create(t, s, links, provider.Values{"name": "br0", "kind": "bridge", "namespace": ns})
	for a := range links.Schema().Attributes {
		if _, ok := v[a]; !ok {
			t.Errorf("net_link leaves out %s", a)
		}
	}
	_, v = create(t, s, addresses, provider.Values{"link": "br0", "cidr": "10.0.0.1/24", "namespace": ns})
	for a := range addresses.Schema().Attributes {
		if _, ok := v[a]; !ok {
			t.Errorf("net_address leaves out %s", a)
		}
	}
	_, v = create(t, s, routes, provider.Values{"destination": "10.9.0.0/16", "link": "br0", "namespace": ns})
	for a := range routes.Schema().Attributes {
		if _, ok := v[a]; !ok {
			t.Errorf("net_route leaves out %s", a)
		}
	}
}

// linkValues turns what netlink reports into the schema's values.
func TestLinkValues(t *testing.T) {
	names := map[int]string{1: "lo", 2: "br0", 3: "eth0", 4: "peer0"}
	name := func(i int) string { return names[i] }
	attrs := func(name string, index int) netlink.LinkAttrs {
		a := netlink.NewLinkAttrs()
		a.Name, a.Index, a.MTU = name, index, 1500
		return a
	}
	base := func(name, kind string, index int) provider.Values {
		return provider.Values{
			"name": name, "kind": kind, "namespace": "ns1", "mtu": int64(1500), "up": false, "master": "",
			"hardware_addr": "", "index": int64(index),
			"peer_name": nil, "vni": nil, "port": nil, "parent": nil, "vlan_id": nil,
		}
	}
	veth := attrs("v0", 5)
	veth.ParentIndex, veth.MasterIndex, veth.Flags = 4, 2, net.FlagUp
	veth.HardwareAddr = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	wantVeth := base("v0", "veth", 5)
	wantVeth["peer_name"], wantVeth["master"], wantVeth["up"], wantVeth["hardware_addr"] = "peer0", "br0", true, "02:00:00:00:00:01"

	away := attrs("v1", 6)
	away.ParentIndex, away.NetNsID = 4, 3 // the peer is in another namespace

	vlan := attrs("vl0", 7)
	vlan.ParentIndex = 3
	wantVlan := base("vl0", "vlan", 7)
	wantVlan["parent"], wantVlan["vlan_id"] = "eth0", int64(42)

	wantVxlan := base("vx0", "vxlan", 8)
	wantVxlan["vni"], wantVxlan["port"], wantVxlan["parent"] = int64(100), int64(4789), "eth0"

	for _, c := range []struct {
		link netlink.Link
		want provider.Values
	}{
		{&netlink.Veth{LinkAttrs: veth}, wantVeth},
		{&netlink.Veth{LinkAttrs: away}, base("v1", "veth", 6)},
		{&netlink.Vlan{LinkAttrs: vlan, VlanId: 42}, wantVlan},
		{&netlink.Vxlan{LinkAttrs: attrs("vx0", 8), VxlanId: 100, Port: 4789, VtepDevIndex: 3}, wantVxlan},
		{&netlink.Tuntap{LinkAttrs: attrs("t0", 9), Mode: netlink.TUNTAP_MODE_TAP}, base("t0", "tap", 9)},
		{&netlink.Tuntap{LinkAttrs: attrs("t1", 10), Mode: netlink.TUNTAP_MODE_TUN}, base("t1", "tun", 10)},
		{&netlink.Device{LinkAttrs: attrs("lo", 1)}, base("lo", "device", 1)},
	} {
		sameValues(t, c.link.Attrs().Name, linkValues("ns1", c.link, name), c.want)
	}
}

func TestLinkIDs(t *testing.T) {
	for _, c := range []struct{ id, ns, name string }{
		{"ns1/br0", "ns1", "br0"},
		{"/br0", "", "br0"},
	} {
		ns, name, err := parseLinkID(c.id)
		if err != nil || ns != c.ns || name != c.name {
			t.Errorf("parse %q: %q %q %v", c.id, ns, name, err)
		}
		if id := linkID(ns, name); id != c.id {
			t.Errorf("format %q %q: %q", ns, name, id)
		}
	}
	for _, bad := range []string{"br0", "ns1/", "ns1/a/b", ""} {
		if _, _, err := parseLinkID(bad); err == nil {
			t.Errorf("parse %q: no error", bad)
		}
	}
	v := provider.Values{"name": "br0", "namespace": ""}
	if id, _ := links.ID(v); id != "/br0" {
		t.Errorf("id in the daemon's namespace: %q", id)
	}
	if _, err := links.ID(provider.Values{}); err == nil {
		t.Error("id of an unknown name: no error")
	}
}
