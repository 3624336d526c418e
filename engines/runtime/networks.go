package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/engines/runtime/netcfg"
	"github.com/cairnhq/cairn/journal"
)

// Networks of the user's own (docker network create): each a Linux bridge
// with its subnet and gateway, NAT out as the default bridge has, and its
// containers' addresses chosen by the runtime or asked for with ip=. The
// default network, "bridge", is --runtime-bridge and --runtime-subnet.
//
// Each lives under <runtime>/networks/NAME: network.json (its definition)
// and the endpoints and namespaces netcfg keeps there.

// netDef is a network's definition as network.json and network.create
// hold it.
type netDef struct {
	Name    string    `json:"name"`
	Subnet  string    `json:"subnet"`
	Gateway string    `json:"gateway"`
	Bridge  string    `json:"bridge"`
	Created time.Time `json:"created"`
}

// namedNet is a network and whether its bridge is set up in this daemon.
type namedNet struct {
	def   netDef
	n     *netcfg.Network
	ready bool
}

var networkName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`)

// newBridgeName is a new network's bridge name: random, as Docker's
// br-<network id>, within the kernel's 15 characters, so that two
// daemons' networks of one name never share a bridge.
func newBridgeName() string {
	b := make([]byte, 5)
	rand.Read(b)
	return "cbr-" + hex.EncodeToString(b)
}

func (m *module) networksDir() string { return filepath.Join(m.dataDir, "runtime", "networks") }

// loadNetworks opens every network network create made (at Start). A
// network that cannot be opened is left out with a warning: its
// containers fail to start with the reason.
func (m *module) loadNetworks() error {
	m.nets = map[string]*namedNet{}
	dirs, err := os.ReadDir(m.networksDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("runtime: read networks: %w", err)
	}
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(m.networksDir(), d.Name(), "network.json"))
		if err != nil {
			m.log.Warn("a network without its definition", "network", d.Name(), "err", err)
			continue
		}
		var def netDef
		if err := json.Unmarshal(b, &def); err != nil {
			m.log.Warn("a network's definition does not parse", "network", d.Name(), "err", err)
			continue
		}
		n, err := m.openNetwork(def)
		if err != nil {
			m.log.Warn("open a network", "network", def.Name, "err", err)
			continue
		}
		m.nets[def.Name] = &namedNet{def: def, n: n}
	}
	return nil
}

func (m *module) openNetwork(def netDef) (*netcfg.Network, error) {
	subnet, err := netip.ParsePrefix(def.Subnet)
	if err != nil {
		return nil, err
	}
	gw, err := netip.ParseAddr(def.Gateway)
	if err != nil {
		return nil, err
	}
	return netcfg.New(netcfg.Config{Bridge: def.Bridge, Subnet: subnet, Gateway: gw,
		StateDir: filepath.Join(m.networksDir(), def.Name), Logger: m.log})
}

// network returns the network a container's NetworkMode names, its bridge
// set up (once per daemon): "bridge" or a network of network create.
func (m *module) network(ctx context.Context, name string) (*netcfg.Network, error) {
	m.netMu.Lock()
	defer m.netMu.Unlock()
	if name == "bridge" {
		if m.netErr != nil {
			return nil, m.netErr
		}
		if !m.netReady {
			if err := m.net.Setup(ctx); err != nil {
				return nil, err
			}
			m.netReady = true
		}
		return m.net, nil
	}
	nn, ok := m.nets[name]
	if !ok {
		return nil, fmt.Errorf("no such network (network create %s subnet=CIDR makes one; network ls lists them)", name)
	}
	if !nn.ready {
		if err := nn.n.Setup(ctx); err != nil {
			return nil, err
		}
		nn.ready = true
	}
	return nn.n, nil
}

// attachedNetwork returns the network a container was attached to, not
// setting anything up: for a detach.
func (m *module) attachedNetwork(name string) *netcfg.Network {
	m.netMu.Lock()
	defer m.netMu.Unlock()
	if name == "bridge" {
		return m.net
	}
	if nn, ok := m.nets[name]; ok {
		return nn.n
	}
	return nil
}

// allNetworks lists the default network (when it opened) and the named
// ones.
func (m *module) allNetworks() []*netcfg.Network {
	m.netMu.Lock()
	defer m.netMu.Unlock()
	var out []*netcfg.Network
	if m.net != nil {
		out = append(out, m.net)
	}
	for _, nn := range m.nets {
		out = append(out, nn.n)
	}
	return out
}

// hasOwnAddress says whether a NetworkMode gives the container an address
// of its own (a bridge), rather than none or the host's.
func hasOwnAddress(mode string) bool { return mode != "none" && mode != "host" }

// createNetwork makes a network: its bridge set up now, so that a subnet
// or bridge conflict is the create's error, then its definition written
// and network.create journaled.
func (m *module) createNetwork(ctx context.Context, actor journal.Actor, name, subnetText, gwText string) (netDef, error) {
	if !networkName.MatchString(name) {
		return netDef{}, fmt.Errorf("network name %q: letters, digits, '_', '.' and '-', starting with a letter or digit", name)
	}
	if name == "bridge" || name == "none" || name == "host" {
		return netDef{}, fmt.Errorf("network %s is built in", name)
	}
	subnet, err := netip.ParsePrefix(subnetText)
	if err != nil {
		return netDef{}, fmt.Errorf("subnet=%s: give an IPv4 CIDR such as 10.90.0.0/24", subnetText)
	}
	gw := subnet.Masked().Addr().Next()
	if gwText != "" {
		if gw, err = netip.ParseAddr(gwText); err != nil {
			return netDef{}, fmt.Errorf("gateway=%s: give an IPv4 address of the subnet", gwText)
		}
	}
	def := netDef{Name: name, Subnet: subnet.String(), Gateway: gw.String(), Bridge: newBridgeName(), Created: time.Now().UTC()}
	m.netMu.Lock()
	defer m.netMu.Unlock()
	if _, ok := m.nets[name]; ok {
		return netDef{}, fmt.Errorf("network %s exists", name)
	}
	others := []netip.Prefix{}
	if m.net != nil {
		others = append(others, m.net.Subnet())
	}
	for _, nn := range m.nets {
		others = append(others, nn.n.Subnet())
	}
	for _, o := range others {
		if o.Overlaps(subnet) {
			return netDef{}, fmt.Errorf("subnet %s overlaps %s, another network's", subnet, o)
		}
	}
	dir := filepath.Join(m.networksDir(), name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return netDef{}, err
	}
	n, err := m.openNetwork(def)
	if err == nil {
		if err = n.Setup(ctx); err != nil {
			n.Close()
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return netDef{}, err
	}
	b, _ := json.MarshalIndent(def, "", "  ")
	if err := writeFileSync(filepath.Join(dir, "network.json"), b); err != nil {
		n.Remove(ctx)
		os.RemoveAll(dir)
		return netDef{}, err
	}
	m.nets[name] = &namedNet{def: def, n: n, ready: true}
	return def, m.record(ctx, actor, "network.create", name, map[string]any{
		"name": name, "subnet": def.Subnet, "gateway": def.Gateway, "bridge": def.Bridge})
}

// removeNetwork removes a network no container uses: its bridge, NAT
// rules and directory.
func (m *module) removeNetwork(ctx context.Context, actor journal.Actor, name string) error {
	for _, e := range m.table.all() {
		if c := e.snapshot(); c.Host.Network == name {
			return fmt.Errorf("network %s: container %s uses it (rm it first)", name, c.Name)
		}
	}
	m.netMu.Lock()
	nn, ok := m.nets[name]
	if !ok {
		m.netMu.Unlock()
		return fmt.Errorf("no such network %s", name)
	}
	if err := nn.n.Remove(ctx); err != nil {
		m.netMu.Unlock()
		return err
	}
	delete(m.nets, name)
	m.netMu.Unlock()
	if err := os.RemoveAll(filepath.Join(m.networksDir(), name)); err != nil {
		return err
	}
	return m.record(ctx, actor, "network.rm", name, map[string]any{"name": name})
}

// closeNetworks closes the named networks (their bridges stay).
func (m *module) closeNetworks() {
	m.netMu.Lock()
	defer m.netMu.Unlock()
	for _, nn := range m.nets {
		nn.n.Close()
	}
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (m *module) networkVerbs() []engines.Verb {
	return []engines.Verb{
		{Spec: dsl.Spec{
			Verb:    "network create",
			Access:  dsl.AccessHost,
			Summary: "make a bridge network of your own, as docker network create",
			Help: "network create NAME subnet=CIDR [gateway=IP] makes a Linux bridge with the subnet, its\n" +
				"gateway (the subnet's first address unless given) on the bridge, and NAT out. run\n" +
				"network=NAME [ip=ADDR] attaches a container to it.\n\n" +
				"  network create backend subnet=10.90.0.0/24\n  run busybox network=backend ip=10.90.0.10 detach -- httpd -f -p 80",
			Args: []dsl.Arg{{Name: "NAME", Required: true, Help: "the network's name"}},
			Options: []dsl.Option{
				{Name: "subnet", Meta: "CIDR", Help: "its IPv4 subnet (not overlapping another network's)"},
				{Name: "gateway", Meta: "IP", Help: "the bridge's address (default the subnet's first)"},
			},
		}, Run: m.runNetworkCreate},
		{Spec: dsl.Spec{
			Verb:    "network ls",
			Access:  dsl.AccessRead,
			Summary: "list the networks: bridge and those of network create",
		}, Run: m.runNetworkLs},
		{Spec: dsl.Spec{
			Verb:    "network rm",
			Access:  dsl.AccessHost,
			Summary: "remove a network no container uses: its bridge and NAT rules",
			Args:    []dsl.Arg{{Name: "NAME", Required: true, Help: "the network's name"}},
		}, Run: m.runNetworkRm},
	}
}

func (m *module) runNetworkCreate(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	w := st.Args["NAME"]
	sub, ok := st.Opt("subnet")
	if !ok {
		return engines.Errorf(wire.InvalidArgument, w, "network create %s: give subnet=CIDR", w.Text)
	}
	gw := ""
	if g, ok := st.Opt("gateway"); ok {
		gw = g.Text
	}
	def, err := m.createNetwork(ctx, r.Actor(), w.Text, sub.Text, gw)
	if err != nil {
		return engines.Errorf(wire.InvalidArgument, w, "network create %s: %v", w.Text, err)
	}
	return r.Row(networkRow{Name: def.Name, Subnet: def.Subnet, Gateway: def.Gateway, Bridge: def.Bridge})
}

func (m *module) runNetworkRm(ctx context.Context, r engines.Request) error {
	w := r.Statement().Args["NAME"]
	if err := m.removeNetwork(ctx, r.Actor(), w.Text); err != nil {
		return engines.Errorf(wire.FailedPrecondition, w, "network rm %s: %v", w.Text, err)
	}
	return nil
}

func (m *module) runNetworkLs(ctx context.Context, r engines.Request) error {
	rows := []networkRow{}
	if m.net != nil {
		rows = append(rows, networkRow{Name: "bridge", Subnet: m.net.Subnet().String(), Gateway: m.net.Gateway().String(), Bridge: m.net.Bridge()})
	}
	m.netMu.Lock()
	for _, nn := range m.nets {
		rows = append(rows, networkRow{Name: nn.def.Name, Subnet: nn.def.Subnet, Gateway: nn.def.Gateway, Bridge: nn.def.Bridge})
	}
	m.netMu.Unlock()
	slices.SortFunc(rows[min(1, len(rows)):], func(a, b networkRow) int { return strings.Compare(a.Name, b.Name) })
	for _, row := range rows {
		if err := r.Row(row); err != nil {
			return err
		}
	}
	return nil
}

// networkRow is a row of network ls.
type networkRow struct {
	Name    string `json:"name"`
	Subnet  string `json:"subnet"`
	Gateway string `json:"gateway"`
	Bridge  string `json:"bridge"`
}
