// Package netcfg gives the runtime engine's containers the network Docker's
// bridge driver gives: each container in a network namespace of its own,
// joined by a veth pair to a bridge on the host with an address from one
// subnet, masqueraded to the outside, with host ports forwarded to it by a
// userspace proxy.
//
// The bridge lives in the network namespace of the thread that calls New
// (the daemon's, or a test's); everything the package does there, it does
// from a thread of its own that joined that namespace, so callers on any
// goroutine get the same result.
package netcfg

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultBridge is Config.Bridge's default.
const DefaultBridge = "cairn0"

// DefaultSubnet is Config.Subnet's default: the gateway, on the bridge, is
// 10.89.0.1, containers get 10.89.0.2 to 10.89.0.254.
var DefaultSubnet = netip.MustParsePrefix("10.89.0.0/24")

// Config says which bridge and subnet the containers use and where their
// state is kept.
type Config struct {
	Bridge   string       // the bridge's name; DefaultBridge when empty
	Subnet   netip.Prefix // IPv4; DefaultSubnet when zero
	Gateway  netip.Addr   // the bridge's address in Subnet; the subnet's first address when zero
	StateDir string       // endpoints.json and the named namespaces (netns/ID) live here; required
	Logger   *slog.Logger // slog.Default() when nil
}

// Endpoint is one container's attachment, what the engine records and
// puts into the container's OCI config.
type Endpoint struct {
	ID        string     `json:"id"`
	NetnsPath string     `json:"netns_path"` // the bind mount of the namespace, for linux.namespaces
	IP        netip.Addr `json:"ip"`         // eth0's address in the container
	Gateway   netip.Addr `json:"gateway"`    // the bridge's address, the default route
	Prefix    int        `json:"prefix"`     // the subnet's prefix length
	MAC       string     `json:"mac"`        // eth0's hardware address
	HostVeth  string     `json:"host_veth"`  // the veth's end on the bridge
}

// Network is the bridge and its containers' endpoints. Its methods are safe
// for concurrent use.
type Network struct {
	bridge   string
	subnet   netip.Prefix
	gw       netip.Addr
	stateDir string
	log      *slog.Logger

	home netns.NsHandle  // the namespace the bridge lives in
	h    *netlink.Handle // netlink in home

	mu        sync.Mutex // held over Attach and Detach, and state
	endpoints map[string]Endpoint
	forwards  map[*Forward]struct{} // open, closed by Close
	closed    bool
}

// New opens the network described by cfg in the calling thread's network
// namespace and loads the endpoints persisted in cfg.StateDir. It changes
// nothing in the kernel: Setup does.
func New(cfg Config) (*Network, error) {
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	if !cfg.Subnet.IsValid() {
		cfg.Subnet = DefaultSubnet
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(cfg.Bridge) > unix.IFNAMSIZ-1 {
		return nil, fmt.Errorf("bridge name %q: longer than %d characters", cfg.Bridge, unix.IFNAMSIZ-1)
	}
	if err := checkSubnet(cfg.Subnet); err != nil {
		return nil, err
	}
	if !cfg.Gateway.IsValid() {
		cfg.Gateway = cfg.Subnet.Addr().Next()
	}
	if err := checkHost(cfg.Subnet, cfg.Gateway); err != nil {
		return nil, fmt.Errorf("gateway %s: %w", cfg.Gateway, err)
	}
	if cfg.StateDir == "" {
		return nil, errors.New("netcfg: StateDir is required")
	}
	if err := os.MkdirAll(filepath.Join(cfg.StateDir, "netns"), 0o700); err != nil {
		return nil, fmt.Errorf("make the network state directory: %w", err)
	}
	eps, err := loadState(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	home, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("open the current network namespace: %w", err)
	}
	var h *netlink.Handle
	err = onOwnThread(func() (err error) {
		h, err = netlink.NewHandleAt(home, unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		home.Close()
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	n := &Network{
		bridge:    cfg.Bridge,
		subnet:    cfg.Subnet,
		gw:        cfg.Gateway,
		stateDir:  cfg.StateDir,
		log:       cfg.Logger,
		home:      home,
		h:         h,
		endpoints: eps,
		forwards:  map[*Forward]struct{}{},
	}
	for _, ep := range eps {
		if !cfg.Subnet.Contains(ep.IP) {
			n.log.Warn("container endpoint outside the subnet (the subnet changed); detach it and attach again",
				"id", ep.ID, "ip", ep.IP, "subnet", cfg.Subnet)
		}
	}
	return n, nil
}

// Close closes the forwards Publish opened, then releases the netlink
// socket and the namespace handle. Endpoints and the bridge stay: the next
// New on the same StateDir finds them.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	fwds := n.forwards
	n.forwards = nil
	n.mu.Unlock()
	// A forward dials through the namespace handle: it goes first.
	for f := range fwds {
		f.Close()
	}
	n.h.Close()
	return n.home.Close()
}

// Bridge returns the bridge's name.
func (n *Network) Bridge() string { return n.bridge }

// Subnet returns the containers' subnet.
func (n *Network) Subnet() netip.Prefix { return n.subnet }

// Gateway returns the bridge's address, the containers' default route.
func (n *Network) Gateway() netip.Addr { return n.gw }

// Endpoints returns the persisted endpoints sorted by id: after a restart
// the engine adopts those whose container still runs and detaches the rest.
func (n *Network) Endpoints() []Endpoint {
	n.mu.Lock()
	defer n.mu.Unlock()
	return sortedEndpoints(n.endpoints)
}

// netnsPath is where the named namespace of container id is bind mounted.
func (n *Network) netnsPath(id string) string {
	return filepath.Join(n.stateDir, "netns", id)
}
