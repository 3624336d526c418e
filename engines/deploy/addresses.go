package deploy

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/cairnhq/cairn/journal"
)

// A cloud config's manual network is a runtime network of its own (a
// Linux bridge, network create's) with the subnet's range and gateway.
// The director chooses every instance's address on it, as BOSH's does:
// an instance group with static_ips gets them in index order (each must
// be in the subnet's static ranges); the others get the lowest address
// that is not the gateway's, not reserved, not static and not another
// instance's (of any deployment), and keep it across recreates and
// redeploys while it stays valid. Dynamic and vip networks, and
// deployments without a cloud config, stay on the runtime's bridge.

// manualNet is a manual network's one subnet, parsed.
type manualNet struct {
	name     string // the cloud config's
	subnet   netip.Prefix
	gateway  netip.Addr
	reserved []addrRange
	static   []addrRange
}

// runtimeNetwork is the runtime network a manual network is made as.
func (n *manualNet) runtimeNetwork() string { return "bosh-" + n.name }

type addrRange struct{ from, to netip.Addr }

func (r addrRange) contains(a netip.Addr) bool { return !a.Less(r.from) && !r.to.Less(a) }

func inRanges(rs []addrRange, a netip.Addr) bool {
	return slices.ContainsFunc(rs, func(r addrRange) bool { return r.contains(a) })
}

// parseRanges reads BOSH's reserved and static lists: addresses and
// "FROM - TO" ranges, each inside subnet.
func parseRanges(subnet netip.Prefix, list []string) ([]addrRange, error) {
	var out []addrRange
	for _, s := range list {
		from, to, isRange := strings.Cut(s, "-")
		a, err := netip.ParseAddr(strings.TrimSpace(from))
		if err != nil {
			return nil, fmt.Errorf("%q: not an address or a range FROM - TO", s)
		}
		b := a
		if isRange {
			if b, err = netip.ParseAddr(strings.TrimSpace(to)); err != nil || b.Less(a) {
				return nil, fmt.Errorf("%q: not a range FROM - TO with FROM first", s)
			}
		}
		if !subnet.Contains(a) || !subnet.Contains(b) {
			return nil, fmt.Errorf("%q: not inside %s", s, subnet)
		}
		out = append(out, addrRange{a, b})
	}
	return out, nil
}

// manualNetwork returns the manual network a cloud config names, or nil
// for one that is not manual (or has no range).
func (c *CloudConfig) manualNetwork(name string) (*manualNet, error) {
	if c == nil {
		return nil, nil
	}
	for _, n := range c.Networks {
		if n.Name != name || (n.Type != "" && n.Type != "manual") {
			continue
		}
		var subs []int
		for i, s := range n.Subnets {
			if s.Range != "" {
				subs = append(subs, i)
			}
		}
		if len(subs) == 0 {
			return nil, nil
		}
		if len(subs) > 1 {
			return nil, fmt.Errorf("networks %s: %d subnets: one host has one bridge per network, so give it one subnet", name, len(subs))
		}
		s := n.Subnets[subs[0]]
		pfx, err := netip.ParsePrefix(s.Range)
		if err != nil || !pfx.Addr().Is4() {
			return nil, fmt.Errorf("networks %s: range %q: an IPv4 CIDR", name, s.Range)
		}
		mn := &manualNet{name: name, subnet: pfx.Masked(), gateway: pfx.Masked().Addr().Next()}
		if s.Gateway != "" {
			if mn.gateway, err = netip.ParseAddr(s.Gateway); err != nil || !mn.subnet.Contains(mn.gateway) {
				return nil, fmt.Errorf("networks %s: gateway %q is not an address of %s", name, s.Gateway, s.Range)
			}
		}
		if mn.reserved, err = parseRanges(mn.subnet, s.Reserved); err != nil {
			return nil, fmt.Errorf("networks %s: reserved %w", name, err)
		}
		if mn.static, err = parseRanges(mn.subnet, s.Static); err != nil {
			return nil, fmt.Errorf("networks %s: static %w", name, err)
		}
		return mn, nil
	}
	return nil, nil
}

// groupNetwork is the network an instance group's instances are on: the
// one marked default, else its first.
func groupNetwork(g *InstanceGroup) *NetworkRef {
	for i := range g.Networks {
		if slices.Contains(g.Networks[i].Default, "gateway") {
			return &g.Networks[i]
		}
	}
	if len(g.Networks) > 0 {
		return &g.Networks[0]
	}
	return nil
}

// addresses are the instances' addresses on manual networks, by
// instance name (group/index), and each group's manual network.
type addresses struct {
	ip  map[string]string
	net map[string]*manualNet // by group
}

// allocate chooses the address of every instance of want on a manual
// network, given the addresses others (every other deployment's
// instances) hold. It is pure: the director calls it before anything
// changes, to refuse a deployment that does not fit, and again at each
// create.
func (p *plan) allocate(want []*Instance, others []*Instance) (*addresses, error) {
	a := &addresses{ip: map[string]string{}, net: map[string]*manualNet{}}
	used := map[netip.Addr]string{}
	for _, in := range others {
		if ip, err := netip.ParseAddr(in.IP); err == nil {
			used[ip] = "another deployment's instance " + in.Name()
		}
	}
	byGroup := map[string][]*Instance{}
	for _, in := range want {
		byGroup[in.Group] = append(byGroup[in.Group], in)
	}
	// Static addresses first: they are the instances' whatever else wants
	// them.
	var dynamic []*InstanceGroup
	for gi := range p.man.InstanceGroups {
		g := &p.man.InstanceGroups[gi]
		ref := groupNetwork(g)
		if ref == nil {
			continue
		}
		mn, err := p.cloud.manualNetwork(ref.Name)
		if err != nil {
			return nil, err
		}
		if mn == nil {
			if len(ref.StaticIPs) > 0 {
				return nil, fmt.Errorf("instance_groups %s: static_ips need a manual network with a subnet in the cloud config, and %s is not one", g.Name, ref.Name)
			}
			continue
		}
		a.net[g.Name] = mn
		if len(ref.StaticIPs) == 0 {
			dynamic = append(dynamic, g)
			continue
		}
		statics, err := parseRanges(mn.subnet, ref.StaticIPs)
		if err != nil {
			return nil, fmt.Errorf("instance_groups %s: static_ips %w", g.Name, err)
		}
		var ips []netip.Addr
		for _, r := range statics {
			for ip := r.from; !r.to.Less(ip); ip = ip.Next() {
				ips = append(ips, ip)
			}
		}
		if len(ips) < g.Instances {
			return nil, fmt.Errorf("instance_groups %s: %d instances but %d static_ips (each instance needs one)", g.Name, g.Instances, len(ips))
		}
		for _, in := range byGroup[g.Name] {
			ip := ips[in.Index]
			if !inRanges(mn.static, ip) {
				return nil, fmt.Errorf("instance_groups %s: static IP %s is not in network %s's static ranges", g.Name, ip, mn.name)
			}
			if who, ok := used[ip]; ok {
				return nil, fmt.Errorf("instance_groups %s: static IP %s is %s's", g.Name, ip, who)
			}
			used[ip] = "instance " + in.Name()
			a.ip[in.Name()] = ip.String()
		}
	}
	// Dynamic: an instance keeps a valid address it has; the rest take
	// the lowest free ones.
	free := func(mn *manualNet, ip netip.Addr) bool {
		_, taken := used[ip]
		return mn.subnet.Contains(ip) && ip != mn.gateway && ip != mn.subnet.Addr() && !inRanges(mn.reserved, ip) &&
			!inRanges(mn.static, ip) && !taken && ip.Next().IsValid() && mn.subnet.Contains(ip.Next())
	}
	var need []*Instance
	for _, g := range dynamic {
		mn := a.net[g.Name]
		for _, in := range byGroup[g.Name] {
			if ip, err := netip.ParseAddr(in.IP); err == nil && free(mn, ip) {
				used[ip] = "instance " + in.Name()
				a.ip[in.Name()] = ip.String()
				continue
			}
			need = append(need, in)
		}
	}
	for _, in := range need {
		mn := a.net[in.Group]
		got := false
		for ip := mn.subnet.Addr().Next(); mn.subnet.Contains(ip); ip = ip.Next() {
			if free(mn, ip) {
				used[ip] = "instance " + in.Name()
				a.ip[in.Name()] = ip.String()
				got = true
				break
			}
		}
		if !got {
			return nil, fmt.Errorf("instance_groups %s: network %s has no free address for %s (its range less the gateway, reserved and static addresses and other instances'): add addresses or lower instances", in.Group, mn.name, in.Name())
		}
	}
	return a, nil
}

// othersInstances are the instances of every deployment but dep, whose
// addresses dep's may not take. The caller holds m.mu.
func (m *module) othersInstancesLocked(dep string) []*Instance {
	var out []*Instance
	for name, d := range m.st.Deployments {
		if name != dep {
			out = append(out, d.Instances...)
		}
	}
	return out
}

// placement is where an instance's container goes: the runtime network
// and the address on it ("" for the runtime's choice), the manual
// network made first when there is one.
func (m *module) placement(ctx context.Context, actor journal.Actor, p *plan, all []*Instance, in *Instance) (network, ip string, err error) {
	m.mu.Lock()
	others := m.othersInstancesLocked(p.man.Name)
	m.mu.Unlock()
	a, err := p.allocate(all, others)
	if err != nil {
		return "", "", err
	}
	mn := a.net[in.Group]
	if mn == nil {
		return "bridge", "", nil
	}
	if err := m.rt.EnsureNetwork(ctx, actor, mn.runtimeNetwork(), mn.subnet.String(), mn.gateway.String()); err != nil {
		return "", "", fmt.Errorf("network %s: %w", mn.name, err)
	}
	return mn.runtimeNetwork(), a.ip[in.Name()], nil
}
