package netcfg

import (
	"net/netip"
	"strings"
	"testing"
)

func TestNextFree(t *testing.T) {
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	for _, c := range []struct {
		subnet string
		used   []string
		want   string // "" for full
	}{
		{"10.89.0.0/24", nil, "10.89.0.2"},
		{"10.89.0.0/24", []string{"10.89.0.2", "10.89.0.3"}, "10.89.0.4"},
		{"10.89.0.0/24", []string{"10.89.0.3"}, "10.89.0.2"},
		{"10.89.0.0/30", nil, "10.89.0.2"},
		{"10.89.0.0/30", []string{"10.89.0.2"}, ""},
		{"10.89.0.0/29", []string{"10.89.0.2", "10.89.0.3", "10.89.0.4", "10.89.0.5"}, "10.89.0.6"},
		{"10.89.0.0/29", []string{"10.89.0.2", "10.89.0.3", "10.89.0.4", "10.89.0.5", "10.89.0.6"}, ""}, // .7 is the broadcast
	} {
		used := map[netip.Addr]bool{a("10.89.0.1"): true} // the gateway, as Attach passes it
		for _, u := range c.used {
			used[a(u)] = true
		}
		got, err := nextFree(p(c.subnet), used)
		if c.want == "" {
			if err == nil || !strings.Contains(err.Error(), "no free address") {
				t.Errorf("%s used %v: %v, %v; want the subnet full", c.subnet, c.used, got, err)
			}
			continue
		}
		if err != nil || got != a(c.want) {
			t.Errorf("%s used %v: %v, %v; want %s", c.subnet, c.used, got, err, c.want)
		}
	}
	// A gateway elsewhere (a BOSH network's .254): .1 is a container's.
	if got, err := nextFree(p("10.89.0.0/24"), map[netip.Addr]bool{a("10.89.0.254"): true}); err != nil || got != a("10.89.0.1") {
		t.Errorf("gateway .254: %v, %v; want 10.89.0.1", got, err)
	}
}

func TestCheckHost(t *testing.T) {
	sub := netip.MustParsePrefix("10.89.4.0/22")
	for s, ok := range map[string]bool{
		"10.89.4.1":   true,
		"10.89.7.254": true,
		"10.89.4.0":   false, // the network
		"10.89.7.255": false, // the broadcast
		"10.89.8.1":   false,
	} {
		if err := checkHost(sub, netip.MustParseAddr(s)); (err == nil) != ok {
			t.Errorf("checkHost(%s) = %v, want ok %v", s, err, ok)
		}
	}
}

func TestCheckSubnet(t *testing.T) {
	for s, ok := range map[string]bool{
		"10.89.0.0/24":   true,
		"10.89.0.0/30":   true,
		"10.0.0.0/8":     true,
		"10.89.0.0/31":   false,
		"10.89.0.1/24":   false,
		"fd00::/64":      false,
		"10.89.0.0/32":   false,
		"192.168.0.0/16": true,
	} {
		if err := checkSubnet(netip.MustParsePrefix(s)); (err == nil) != ok {
			t.Errorf("checkSubnet(%s) = %v, want ok %v", s, err, ok)
		}
	}
}

func TestBroadcastMAC(t *testing.T) {
	sub := netip.MustParsePrefix("10.89.4.0/22")
	if got := broadcast(sub); got != netip.MustParseAddr("10.89.7.255") {
		t.Errorf("broadcast %s", got)
	}
	if got := macFor(netip.MustParseAddr("10.89.4.2")).String(); got != "02:ca:0a:59:04:02" {
		t.Errorf("mac %s", got)
	}
}

func TestHostVethName(t *testing.T) {
	if got := hostVethName("3f2a9c01deadbeef", nil); got != "vc3f2a9c01" {
		t.Errorf("long id: %s", got)
	}
	if got := hostVethName("web", nil); got != "vcweb" {
		t.Errorf("short id: %s", got)
	}
	taken := map[string]bool{"vcweb-serv": true}
	got := hostVethName("web-server-2", taken)
	if got == "vcweb-serv" || len(got) != 10 || !strings.HasPrefix(got, "vc") {
		t.Errorf("taken prefix: %s, want vc and 8 hex digits", got)
	}
	if got != hostVethName("web-server-2", taken) {
		t.Error("the fallback name is not stable")
	}
}

func TestForwardPolicyDrops(t *testing.T) {
	for out, want := range map[string]bool{
		"-P FORWARD DROP\n":                            true,
		"-P FORWARD ACCEPT\n-A FORWARD -j DROP\n":      false,
		"-P FORWARD DROP\n-A FORWARD -i x -j ACCEPT\n": true,
		"": false,
	} {
		if got := forwardPolicyDrops([]byte(out)); got != want {
			t.Errorf("forwardPolicyDrops(%q) = %v", out, got)
		}
	}
}
