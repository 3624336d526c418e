package netcfg

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

const (
	testBridge = "cairnt0"
	testSubnet = "10.89.200.0/24"
)

// iptablesRules returns iptables -S's lines for a chain in the test's namespace.
func iptablesRules(t testing.TB, table, chain string) []string {
	t.Helper()
	return strings.Split(strings.TrimSpace(run(t, "iptables", "-w", "-t", table, "-S", chain)), "\n")
}

func count(lines []string, s string) int {
	n := 0
	for _, l := range lines {
		if l == s {
			n++
		}
	}
	return n
}

func TestSetup(t *testing.T) {
	inTestNS(t)
	n := newNetwork(t, testBridge, testSubnet)
	l := ipLink(t, "", testBridge)
	if l == nil {
		t.Fatalf("ip does not show %s", testBridge)
	}
	kind, _ := l["linkinfo"].(map[string]any)["info_kind"].(string)
	if kind != "bridge" || !hasFlag(l, "UP") {
		t.Errorf("ip shows %s as kind %q flags %v, want a bridge, UP", testBridge, kind, l["flags"])
	}
	if got := ipAddrs(t, "", testBridge); !slices.Equal(got, []string{"10.89.200.1/24"}) {
		t.Errorf("bridge addresses %v, want [10.89.200.1/24]", got)
	}
	// The test's thread reads its own namespace's sysctl.
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); err != nil || string(b) != "1\n" {
		t.Errorf("ip_forward %q, %v; want 1", b, err)
	}
	masq := "-A POSTROUTING -s 10.89.200.0/24 ! -o cairnt0 -j MASQUERADE"
	if got := iptablesRules(t, "nat", "POSTROUTING"); count(got, masq) != 1 {
		t.Errorf("iptables -t nat -S POSTROUTING:\n%s\nwant %q once", strings.Join(got, "\n"), masq)
	}
	// The FORWARD policy accepts: nothing to add there.
	if got := iptablesRules(t, "filter", "FORWARD"); len(got) != 1 {
		t.Errorf("iptables -S FORWARD with policy ACCEPT: %q, want only the policy", got)
	}

	// Again, as at every daemon start: nothing doubles.
	if err := n.Setup(t.Context()); err != nil {
		t.Fatalf("second setup: %v", err)
	}
	if got := iptablesRules(t, "nat", "POSTROUTING"); count(got, masq) != 1 {
		t.Errorf("after a second setup iptables -t nat -S POSTROUTING:\n%s\nwant %q once", strings.Join(got, "\n"), masq)
	}
	if got := ipAddrs(t, "", testBridge); len(got) != 1 {
		t.Errorf("after a second setup bridge addresses %v", got)
	}
}

func TestSetupForwardPolicyDrop(t *testing.T) {
	inTestNS(t)
	run(t, "iptables", "-w", "-P", "FORWARD", "DROP")
	n := newNetwork(t, testBridge, testSubnet)
	want := []string{
		"-A FORWARD -o cairnt0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
		"-A FORWARD -i cairnt0 -j ACCEPT",
	}
	check := func(when string) {
		got := iptablesRules(t, "filter", "FORWARD")
		for _, w := range want {
			if count(got, w) != 1 {
				t.Errorf("%s: iptables -S FORWARD:\n%s\nwant %q once", when, strings.Join(got, "\n"), w)
			}
		}
	}
	check("after setup")
	if err := n.Setup(t.Context()); err != nil {
		t.Fatal(err)
	}
	check("after a second setup")
}

func TestSetupBridgeWithOtherAddress(t *testing.T) {
	inTestNS(t)
	run(t, "ip", "link", "add", testBridge, "type", "bridge")
	run(t, "ip", "addr", "add", "192.0.2.1/24", "dev", testBridge)
	n := openNetwork(t, t.TempDir(), testBridge, testSubnet)
	err := n.Setup(t.Context())
	if err == nil || !strings.Contains(err.Error(), "bridge cairnt0 has address 192.0.2.1/24") {
		t.Fatalf("setup on a bridge with another address: %v, want an error naming the bridge and its address", err)
	}
}

func TestSetupLinkNotABridge(t *testing.T) {
	inTestNS(t)
	run(t, "ip", "link", "add", testBridge, "type", "veth", "peer", "name", "cairnt0p")
	n := openNetwork(t, t.TempDir(), testBridge, testSubnet)
	if err := n.Setup(t.Context()); err == nil || !strings.Contains(err.Error(), "not a bridge") {
		t.Fatalf("setup over a dummy link: %v, want an error saying it is not a bridge", err)
	}
}

func TestAttach(t *testing.T) {
	inTestNS(t)
	n := newNetwork(t, testBridge, testSubnet)
	ep, err := n.Attach(t.Context(), "c0ffee123456")
	if err != nil {
		t.Fatal(err)
	}
	want := Endpoint{
		ID:        "c0ffee123456",
		NetnsPath: filepath.Join(n.stateDir, "netns", "c0ffee123456"),
		IP:        netip.MustParseAddr("10.89.200.2"),
		Gateway:   netip.MustParseAddr("10.89.200.1"),
		Prefix:    24,
		MAC:       "02:ca:0a:59:c8:02",
		HostVeth:  "vcc0ffee12",
	}
	if ep != want {
		t.Errorf("endpoint\n %+v\nwant\n %+v", ep, want)
	}
	if !mounted(t, ep.NetnsPath) {
		t.Errorf("%s is not a mount point", ep.NetnsPath)
	}

	host := ipLink(t, "", "vcc0ffee12")
	if host == nil {
		t.Fatal("ip does not show the host veth vcc0ffee12")
	}
	if host["master"] != testBridge || !hasFlag(host, "UP") {
		t.Errorf("host veth master %v flags %v, want %s, UP", host["master"], host["flags"], testBridge)
	}
	if l := ipLink(t, "", "eth0"); l != nil {
		t.Errorf("eth0 shows in the bridge's namespace: %v", l)
	}

	eth := ipLink(t, ep.NetnsPath, "eth0")
	if eth == nil {
		t.Fatal("no eth0 in the container's namespace")
	}
	if eth["address"] != want.MAC || !hasFlag(eth, "UP") {
		t.Errorf("container eth0 address %v flags %v, want %s, UP", eth["address"], eth["flags"], want.MAC)
	}
	if got := ipAddrs(t, ep.NetnsPath, "eth0"); !slices.Equal(got, []string{"10.89.200.2/24"}) {
		t.Errorf("container eth0 addresses %v, want [10.89.200.2/24]", got)
	}
	if lo := ipLink(t, ep.NetnsPath, "lo"); lo == nil || !hasFlag(lo, "UP") {
		t.Errorf("container lo: %v, want UP", lo)
	}
	var def map[string]any
	for _, r := range ipJSON(t, ep.NetnsPath, "-4", "route", "show") {
		if r["dst"] == "default" {
			def = r
		}
	}
	if def == nil || def["gateway"] != "10.89.200.1" || def["dev"] != "eth0" {
		t.Errorf("container default route %v, want via 10.89.200.1 dev eth0", def)
	}

	// Traffic flows both ways over the bridge: the test's namespace (the
	// host's, for the container) reaches a server in the container.
	echoServer(t, ep.NetnsPath, 7000)
	echo(t, "10.89.200.2:7000")

	if eps := n.Endpoints(); len(eps) != 1 || eps[0] != ep {
		t.Errorf("Endpoints %v, want [%v]", eps, ep)
	}
	if _, err := n.Attach(t.Context(), "c0ffee123456"); err == nil || !strings.Contains(err.Error(), "already attached") {
		t.Errorf("a second attach of the same id: %v, want already attached", err)
	}
	if err := n.Detach(ep.ID); err != nil {
		t.Fatal(err)
	}
}

// A container reaches a network beyond the host, which has no route back
// to the subnet: only masquerading makes the replies find their way.
func TestAttachMasqueradesOutbound(t *testing.T) {
	inTestNS(t)
	n := newNetwork(t, testBridge, testSubnet)
	ep, err := n.Attach(t.Context(), "nat1")
	if err != nil {
		t.Fatal(err)
	}
	// "Outside" is another namespace joined to the test's by a veth, with
	// 198.51.100.0/24 between them.
	outside := filepath.Join(t.TempDir(), "outside")
	if err := addNamedNetns(outside); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteNamedNetns(outside) })
	ons, err := netns.GetFromPath(outside)
	if err != nil {
		t.Fatal(err)
	}
	defer ons.Close()
	// The package-level netlink calls open their socket on the test's
	// thread, in the test's namespace.
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "uplink"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(ons)}); err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "addr", "add", "198.51.100.1/24", "dev", "uplink")
	run(t, "ip", "link", "set", "uplink", "up")
	run(t, "nsenter", "--net="+outside, "ip", "addr", "add", "198.51.100.2/24", "dev", "eth0")
	run(t, "nsenter", "--net="+outside, "ip", "link", "set", "eth0", "up")

	var ln net.Listener
	inNS(t, outside, func() (err error) {
		ln, err = net.Listen("tcp", "198.51.100.2:7001")
		return err
	})
	seen := make(chan string, 1)
	var wg sync.WaitGroup
	defer func() {
		ln.Close()
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			seen <- err.Error()
			return
		}
		seen <- c.RemoteAddr().(*net.TCPAddr).IP.String()
		c.Close()
	}()
	inNS(t, ep.NetnsPath, func() error {
		c, err := net.DialTimeout("tcp", "198.51.100.2:7001", 5*time.Second)
		if err != nil {
			return fmt.Errorf("connect from the container to outside: %w", err)
		}
		return c.Close()
	})
	if got := <-seen; got != "198.51.100.1" {
		t.Errorf("outside sees the container as %s, want the host's 198.51.100.1 (masqueraded)", got)
	}
}

func TestAttachConcurrent(t *testing.T) {
	inTestNS(t)
	n := newNetwork(t, testBridge, testSubnet)
	const k = 8
	eps := make([]Endpoint, k)
	errs := make([]error, k)
	var wg sync.WaitGroup
	for i := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			eps[i], errs[i] = n.Attach(t.Context(), fmt.Sprintf("ctr-%d", i))
		}()
	}
	wg.Wait()
	ips := map[netip.Addr]string{}
	for i, ep := range eps {
		if errs[i] != nil {
			t.Fatalf("attach ctr-%d: %v", i, errs[i])
		}
		if other, ok := ips[ep.IP]; ok {
			t.Errorf("%s and %s both got %s", other, ep.ID, ep.IP)
		}
		ips[ep.IP] = ep.ID
		if ipLink(t, "", ep.HostVeth) == nil {
			t.Errorf("no host veth %s for %s", ep.HostVeth, ep.ID)
		}
	}
	for a := range ips {
		if a.Less(netip.MustParseAddr("10.89.200.2")) || netip.MustParseAddr("10.89.200.9").Less(a) {
			t.Errorf("address %s: want the lowest eight, 10.89.200.2 to .9", a)
		}
	}
	// ctr-0 ... ctr-7 share their first 8 characters: each host veth
	// still has a name of its own.
	names := map[string]bool{}
	for _, ep := range eps {
		names[ep.HostVeth] = true
	}
	if len(names) != k {
		t.Errorf("host veth names %v, want %d distinct", names, k)
	}
	for _, ep := range eps {
		if err := n.Detach(ep.ID); err != nil {
			t.Error(err)
		}
	}
}

func TestAttachSubnetFull(t *testing.T) {
	inTestNS(t)
	// A /30 has one address for a container besides the gateway.
	n := newNetwork(t, testBridge, "10.89.201.0/30")
	ep, err := n.Attach(t.Context(), "one")
	if err != nil {
		t.Fatal(err)
	}
	if ep.IP != netip.MustParseAddr("10.89.201.2") {
		t.Errorf("address %s, want 10.89.201.2", ep.IP)
	}
	_, err = n.Attach(t.Context(), "two")
	if err == nil || !strings.Contains(err.Error(), "no free address in the subnet") {
		t.Fatalf("attach with the subnet full: %v, want no free address", err)
	}
	if _, err := os.Stat(n.netnsPath("two")); !os.IsNotExist(err) {
		t.Errorf("a failed attach left %s: %v", n.netnsPath("two"), err)
	}
	if err := n.Detach("one"); err != nil {
		t.Fatal(err)
	}
	if ep, err := n.Attach(t.Context(), "two"); err != nil || ep.IP != netip.MustParseAddr("10.89.201.2") {
		t.Fatalf("attach after a detach freed the address: %v, %v", ep, err)
	}
}

func TestAttachBadID(t *testing.T) {
	inTestNS(t)
	n := newNetwork(t, testBridge, testSubnet)
	for _, id := range []string{"", "../etc", "a/b", ".hidden", strings.Repeat("x", 129)} {
		if _, err := n.Attach(t.Context(), id); err == nil {
			t.Errorf("attach %q: no error", id)
		}
	}
}

// checkDetached fails the test when anything of ep is left: its veth, its
// namespace's mount or file, its address.
func checkDetached(t *testing.T, n *Network, ep Endpoint) {
	t.Helper()
	if l := ipLink(t, "", ep.HostVeth); l != nil {
		t.Errorf("after detach ip still shows %s", ep.HostVeth)
	}
	if mounted(t, ep.NetnsPath) {
		t.Errorf("after detach %s is still mounted", ep.NetnsPath)
	}
	if _, err := os.Stat(ep.NetnsPath); !os.IsNotExist(err) {
		t.Errorf("after detach %s: %v, want it gone", ep.NetnsPath, err)
	}
	for _, e := range n.Endpoints() {
		if e.ID == ep.ID {
			t.Errorf("after detach Endpoints still has %v", e)
		}
	}
	b, err := os.ReadFile(filepath.Join(n.stateDir, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), ep.IP.String()) {
		t.Errorf("after detach the state file still holds %s:\n%s", ep.IP, b)
	}
}

func TestDetach(t *testing.T) {
	inTestNS(t)
	n := newNetwork(t, testBridge, testSubnet)
	ep, err := n.Attach(t.Context(), "gone1")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Detach("gone1"); err != nil {
		t.Fatal(err)
	}
	checkDetached(t, n, ep)
	if err := n.Detach("gone1"); err != nil {
		t.Errorf("second detach: %v", err)
	}
	if err := n.Detach("never-attached"); err != nil {
		t.Errorf("detach of an id never attached: %v", err)
	}
}

// A crash, or a hand, left half an endpoint: Detach finishes the job.
func TestDetachHalfDone(t *testing.T) {
	inTestNS(t)
	n := newNetwork(t, testBridge, testSubnet)
	a, err := n.Attach(t.Context(), "half-a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.Attach(t.Context(), "half-b")
	if err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "link", "del", a.HostVeth)
	if err := deleteNamedNetns(b.NetnsPath); err != nil {
		t.Fatal(err)
	}
	for _, ep := range []Endpoint{a, b} {
		if err := n.Detach(ep.ID); err != nil {
			t.Errorf("detach %s: %v", ep.ID, err)
		}
		checkDetached(t, n, ep)
	}
}

// A daemon restart opens the same state directory: the endpoints and
// their addresses are still there, and a new container gets a new address.
func TestRestartKeepsEndpoints(t *testing.T) {
	inTestNS(t)
	dir := t.TempDir()
	n := openNetwork(t, dir, testBridge, testSubnet)
	if err := n.Setup(t.Context()); err != nil {
		t.Fatal(err)
	}
	var eps []Endpoint
	for _, id := range []string{"keep1", "keep2", "keep3"} {
		ep, err := n.Attach(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, ep)
	}
	if err := n.Detach("keep2"); err != nil {
		t.Fatal(err)
	}
	eps = slices.Delete(eps, 1, 2)
	n.Close()

	n2 := openNetwork(t, dir, testBridge, testSubnet)
	if err := n2.Setup(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := n2.Endpoints(); !slices.Equal(got, eps) {
		t.Errorf("after restart Endpoints\n %v\nwant\n %v", got, eps)
	}
	// keep2's address is free again; keep1's and keep3's are not.
	ep, err := n2.Attach(t.Context(), "new1")
	if err != nil {
		t.Fatal(err)
	}
	if ep.IP != netip.MustParseAddr("10.89.200.3") {
		t.Errorf("new endpoint after restart got %s, want the freed 10.89.200.3", ep.IP)
	}
	// The adopted endpoints still carry traffic and detach cleanly.
	echoServer(t, eps[0].NetnsPath, 7000)
	echo(t, eps[0].IP.String()+":7000")
	for _, ep := range append(eps, ep) {
		if err := n2.Detach(ep.ID); err != nil {
			t.Fatal(err)
		}
		checkDetached(t, n2, ep)
	}
}

// An Attach that fails part way undoes what it made, and only that: a link
// of someone else's that stood in its way stays.
func TestAttachFailureUndoes(t *testing.T) {
	inTestNS(t)
	n := newNetwork(t, testBridge, testSubnet)
	run(t, "ip", "link", "add", "vcblocked", "type", "veth", "peer", "name", "vcblockedp")
	_, err := n.Attach(t.Context(), "blocked")
	if err == nil || !strings.Contains(err.Error(), "create veth vcblocked") {
		t.Fatalf("attach over an existing link: %v, want create veth to fail", err)
	}
	if ipLink(t, "", "vcblocked") == nil {
		t.Error("the failed attach deleted a link it did not make")
	}
	path := n.netnsPath("blocked")
	if mounted(t, path) {
		t.Errorf("the failed attach left %s mounted", path)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the failed attach left %s: %v", path, err)
	}
	if eps := n.Endpoints(); len(eps) != 0 {
		t.Errorf("the failed attach left endpoints %v", eps)
	}
	// The address it had is free again.
	ep, err := n.Attach(t.Context(), "next")
	if err != nil {
		t.Fatal(err)
	}
	if ep.IP != netip.MustParseAddr("10.89.200.2") {
		t.Errorf("address after a failed attach %s, want 10.89.200.2", ep.IP)
	}
	n.Detach(ep.ID)
}

func TestSetupWithoutIptables(t *testing.T) {
	inTestNS(t)
	n := openNetwork(t, t.TempDir(), testBridge, testSubnet)
	t.Setenv("PATH", t.TempDir())
	err := n.Setup(t.Context())
	if err == nil || !strings.Contains(err.Error(), "install Debian's iptables package") {
		t.Fatalf("setup with no iptables on PATH: %v, want an error naming the package", err)
	}
}

// A network whose gateway is not the subnet's first address (a BOSH
// manual network's .254), and addresses asked for by the caller.
func TestAttachAddrAndGateway(t *testing.T) {
	inTestNS(t)
	n, err := New(Config{Bridge: testBridge, Subnet: netip.MustParsePrefix(testSubnet),
		Gateway: netip.MustParseAddr("10.89.200.254"), StateDir: t.TempDir(), Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Setup(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := ipAddrs(t, "", testBridge); !slices.Equal(got, []string{"10.89.200.254/24"}) {
		t.Errorf("bridge addresses %v, want [10.89.200.254/24]", got)
	}
	ep, err := n.AttachAddr(t.Context(), "static1", netip.MustParseAddr("10.89.200.10"))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Detach(ep.ID)
	if got := ipAddrs(t, ep.NetnsPath, "eth0"); !slices.Equal(got, []string{"10.89.200.10/24"}) {
		t.Errorf("container eth0 addresses %v, want [10.89.200.10/24]", got)
	}
	var def map[string]any
	for _, r := range ipJSON(t, ep.NetnsPath, "-4", "route", "show") {
		if r["dst"] == "default" {
			def = r
		}
	}
	if def == nil || def["gateway"] != "10.89.200.254" {
		t.Errorf("container default route %v, want via 10.89.200.254", def)
	}
	echoServer(t, ep.NetnsPath, 7001)
	echo(t, "10.89.200.10:7001")

	dyn, err := n.Attach(t.Context(), "dynamic1")
	if err != nil {
		t.Fatal(err)
	}
	defer n.Detach(dyn.ID)
	if dyn.IP != netip.MustParseAddr("10.89.200.1") {
		t.Errorf("next free with the gateway at .254: %s, want 10.89.200.1", dyn.IP)
	}
	for addr, want := range map[string]string{
		"10.89.200.10":  "in use",
		"10.89.200.254": "in use",
		"10.89.200.255": "broadcast",
		"10.89.201.3":   "not an address of",
	} {
		if _, err := n.AttachAddr(t.Context(), "bad1", netip.MustParseAddr(addr)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("AttachAddr %s: %v, want an error saying %q", addr, err, want)
		}
	}
	if _, err := New(Config{Bridge: "cairnt9", Subnet: netip.MustParsePrefix(testSubnet),
		Gateway: netip.MustParseAddr("10.89.7.1"), StateDir: t.TempDir()}); err == nil {
		t.Error("a gateway outside the subnet was accepted")
	}
}

// Remove takes the bridge and its NAT rule away, and refuses while a
// container is attached.
func TestRemove(t *testing.T) {
	inTestNS(t)
	n := newNetwork(t, testBridge, testSubnet)
	ep, err := n.Attach(t.Context(), "rm1")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Remove(t.Context()); err == nil || !strings.Contains(err.Error(), "attached") {
		t.Fatalf("Remove with a container attached: %v", err)
	}
	if err := n.Detach(ep.ID); err != nil {
		t.Fatal(err)
	}
	if err := n.Remove(t.Context()); err != nil {
		t.Fatal(err)
	}
	if l := ipLink(t, "", testBridge); l != nil {
		t.Errorf("ip still shows %s: %v", testBridge, l)
	}
	masq := "-A POSTROUTING -s 10.89.200.0/24 ! -o cairnt0 -j MASQUERADE"
	if got := iptablesRules(t, "nat", "POSTROUTING"); count(got, masq) != 0 {
		t.Errorf("the masquerading rule is still there:\n%s", strings.Join(got, "\n"))
	}
}
