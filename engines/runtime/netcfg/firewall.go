package netcfg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// rule is one iptables rule: its table, its chain, and its match and
// target.
type rule struct {
	table, chain string
	spec         []string
	insert       bool // at the chain's top (-I) rather than its end (-A)
}

func (r rule) String() string {
	return fmt.Sprintf("-t %s %s %s", r.table, r.chain, strings.Join(r.spec, " "))
}

// masqueradeRule masquerades the subnet's packets that leave through any
// link but the bridge: container to container traffic keeps its source.
func masqueradeRule(subnet, bridge string) rule {
	return rule{table: "nat", chain: "POSTROUTING", spec: []string{"-s", subnet, "!", "-o", bridge, "-j", "MASQUERADE"}}
}

// forwardRules let containers reach out through the bridge, and the
// replies back in, when the FORWARD chain's policy is DROP. Connections
// from outside to a container are not let in: a published port reaches a
// container through the proxy, which the host's own stack sends.
func forwardRules(bridge string) []rule {
	return []rule{
		{table: "filter", chain: "FORWARD", insert: true, spec: []string{"-i", bridge, "-j", "ACCEPT"}},
		{table: "filter", chain: "FORWARD", insert: true, spec: []string{"-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"}},
	}
}

// forwardPolicyDrops reports whether iptables -S FORWARD's output sets the
// chain's policy to DROP.
func forwardPolicyDrops(out []byte) bool {
	for line := range bytes.Lines(out) {
		if f := strings.Fields(string(line)); len(f) == 3 && f[0] == "-P" && f[1] == "FORWARD" {
			return f[2] == "DROP"
		}
	}
	return false
}

// setupFirewall adds the masquerading rule and, when the FORWARD policy
// drops, the forwarding rules, each only if iptables -C does not find it.
// iptables runs in the bridge's namespace.
func (n *Network) setupFirewall(ctx context.Context) error {
	bin, err := exec.LookPath("iptables")
	if err != nil {
		return fmt.Errorf("set up NAT for %s: iptables not found: install Debian's iptables package (apt-get install iptables): %w", n.subnet, err)
	}
	ipt := func(args ...string) ([]byte, error) {
		var out []byte
		err := n.inHome(func() (err error) {
			// -w waits for the xtables lock another iptables holds.
			out, err = exec.CommandContext(ctx, bin, append([]string{"-w"}, args...)...).CombinedOutput()
			return err
		})
		return out, err
	}
	rules := []rule{masqueradeRule(n.subnet.String(), n.bridge)}
	out, err := ipt("-t", "filter", "-S", "FORWARD")
	if err != nil {
		return fmt.Errorf("iptables -S FORWARD: %w: %s", err, bytes.TrimSpace(out))
	}
	if forwardPolicyDrops(out) {
		rules = append(rules, forwardRules(n.bridge)...)
	}
	for _, r := range rules {
		out, err := ipt(append([]string{"-t", r.table, "-C", r.chain}, r.spec...)...)
		if err == nil {
			continue
		}
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			return fmt.Errorf("iptables check %s: %w: %s", r, err, bytes.TrimSpace(out))
		}
		op := "-A"
		if r.insert {
			op = "-I"
		}
		if out, err := ipt(append([]string{"-t", r.table, op, r.chain}, r.spec...)...); err != nil {
			return fmt.Errorf("iptables add %s: %w: %s", r, err, bytes.TrimSpace(out))
		}
		n.log.Info("added iptables rule", "rule", r.String())
	}
	return nil
}

// removeFirewall deletes the rules setupFirewall may have added, each
// while iptables -C finds it (a rule added twice by hand goes too).
func (n *Network) removeFirewall(ctx context.Context) error {
	bin, err := exec.LookPath("iptables")
	if err != nil {
		return nil // nothing can have been added
	}
	ipt := func(args ...string) ([]byte, error) {
		var out []byte
		err := n.inHome(func() (err error) {
			out, err = exec.CommandContext(ctx, bin, append([]string{"-w"}, args...)...).CombinedOutput()
			return err
		})
		return out, err
	}
	for _, r := range append([]rule{masqueradeRule(n.subnet.String(), n.bridge)}, forwardRules(n.bridge)...) {
		for range 8 {
			if _, err := ipt(append([]string{"-t", r.table, "-C", r.chain}, r.spec...)...); err != nil {
				break
			}
			if out, err := ipt(append([]string{"-t", r.table, "-D", r.chain}, r.spec...)...); err != nil {
				return fmt.Errorf("iptables delete %s: %w: %s", r, err, bytes.TrimSpace(out))
			}
			n.log.Info("deleted iptables rule", "rule", r.String())
		}
	}
	return nil
}
