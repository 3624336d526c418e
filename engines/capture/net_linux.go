package capture

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/journal"
)

func init() {
	RegisterSource("net", func() Source { return &netSource{} })
}

// netSource follows the kernel's rtnetlink notifications of one network
// namespace: links, addresses, routes and neighbours.
type netSource struct {
	emit    Emit
	ns      string
	cancel  context.CancelFunc
	done    chan struct{}
	wg      sync.WaitGroup
	stopped atomic.Bool
	handle  netns.NsHandle // -1 (closed) when watching the daemon's own namespace

	kernelDrops atomic.Int64
	errs        atomic.Int64

	mu    sync.Mutex
	links map[int]linkState // by index: what the last notification said
}

// linkState is what the source remembers of a link to name its changes.
type linkState struct {
	name string
	up   bool
}

var (
	_ StatsSource = (*netSource)(nil)
	_ Describer   = (*netSource)(nil)
)

func (s *netSource) Description() string {
	return "rtnetlink: link, address, route and neighbour changes (ns= for a named namespace)"
}

// KernelDrops counts notification losses the kernel reported (ENOBUFS).
func (s *netSource) KernelDrops() int64 { return s.kernelDrops.Load() }

// recvBuffer is the socket receive buffer asked for each subscription, so a
// burst of changes (a container start) does not overflow it.
const recvBuffer = 4 << 20

// Start subscribes to the four rtnetlink groups and returns once all are
// established.
func (s *netSource) Start(ctx context.Context, cfg SourceConfig, emit Emit) error {
	s.emit, s.ns, s.handle = emit, cfg.Namespace, netns.None()
	s.links = map[int]linkState{}
	s.done = make(chan struct{})
	if cfg.Namespace != "" {
		h, err := netns.GetFromName(cfg.Namespace)
		if err != nil {
			return fmt.Errorf("network namespace %q: %w (ip netns list shows the names)", cfg.Namespace, err)
		}
		s.handle = h
	}
	var nsp *netns.NsHandle
	if s.handle.IsOpen() {
		nsp = &s.handle
	}
	// Subscribing in another namespace switches the calling thread for a
	// moment: do it on a thread of its own that dies afterwards, so no
	// goroutine of the daemon ever runs in the wrong namespace.
	err := onOwnThread(func() error {
		if err := s.seedLinks(); err != nil {
			return err
		}
		subs := []func() error{s.subscribeLinks(nsp), s.subscribeAddrs(nsp), s.subscribeRoutes(nsp), s.subscribeNeighs(nsp)}
		for _, sub := range subs {
			if err := sub(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.Stop()
		return err
	}
	ctx, s.cancel = context.WithCancel(ctx)
	go func() {
		<-ctx.Done()
		s.Stop()
	}()
	return nil
}

// onOwnThread runs f on a fresh goroutine locked to its OS thread and never
// unlocked: the runtime ends that thread with the goroutine, namespace and all.
func onOwnThread(f func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ch <- f()
	}()
	return <-ch
}

// seedLinks remembers the links that exist, so the first change of one is
// told apart from its creation.
func (s *netSource) seedLinks() error {
	h, err := netlink.NewHandleAt(s.handle)
	if err != nil {
		return fmt.Errorf("netlink in namespace %q: %w", s.ns, err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range links {
		a := l.Attrs()
		s.links[a.Index] = linkState{name: a.Name, up: a.Flags&net.FlagUp != 0}
	}
	return nil
}

// onError is the subscriptions' error callback.
func (s *netSource) onError(err error) {
	if s.stopped.Load() {
		return // the socket closed under a Receive because we stopped
	}
	if strings.Contains(err.Error(), unix.ENOBUFS.Error()) {
		s.kernelDrops.Add(1)
		return
	}
	s.errs.Add(1)
}

// follow reads one subscription's channel until it closes; a subscription
// the kernel ended (ENOBUFS ends netlink's reader) is made again.
func follow[T any](s *netSource, subscribe func(ch chan T) error, handle func(T)) func() error {
	return func() error {
		ch := make(chan T, 256)
		if err := subscribe(ch); err != nil {
			return err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				for u := range ch {
					handle(u)
				}
				if s.stopped.Load() {
					return
				}
				select {
				case <-s.done:
					return
				case <-time.After(100 * time.Millisecond):
				}
				ch = make(chan T, 256)
				if err := onOwnThread(func() error { return subscribe(ch) }); err != nil {
					s.errs.Add(1)
					return
				}
			}
		}()
		return nil
	}
}

func (s *netSource) subscribeLinks(nsp *netns.NsHandle) func() error {
	return follow(s, func(ch chan netlink.LinkUpdate) error {
		return netlink.LinkSubscribeWithOptions(ch, s.done, netlink.LinkSubscribeOptions{
			Namespace: nsp, ErrorCallback: s.onError, ReceiveBufferSize: recvBuffer,
		})
	}, func(u netlink.LinkUpdate) { s.emitBody(s.linkBody(u)) })
}

func (s *netSource) subscribeAddrs(nsp *netns.NsHandle) func() error {
	return follow(s, func(ch chan netlink.AddrUpdate) error {
		return netlink.AddrSubscribeWithOptions(ch, s.done, netlink.AddrSubscribeOptions{
			Namespace: nsp, ErrorCallback: s.onError, ReceiveBufferSize: recvBuffer,
		})
	}, func(u netlink.AddrUpdate) { s.emitBody(s.addrBody(u)) })
}

func (s *netSource) subscribeRoutes(nsp *netns.NsHandle) func() error {
	return follow(s, func(ch chan netlink.RouteUpdate) error {
		return netlink.RouteSubscribeWithOptions(ch, s.done, netlink.RouteSubscribeOptions{
			Namespace: nsp, ErrorCallback: s.onError, ReceiveBufferSize: recvBuffer,
		})
	}, func(u netlink.RouteUpdate) { s.emitBody(s.routeBody(u)) })
}

func (s *netSource) subscribeNeighs(nsp *netns.NsHandle) func() error {
	return follow(s, func(ch chan netlink.NeighUpdate) error {
		return netlink.NeighSubscribeWithOptions(ch, s.done, netlink.NeighSubscribeOptions{
			Namespace: nsp, ErrorCallback: s.onError, ReceiveBufferSize: recvBuffer,
		})
	}, func(u netlink.NeighUpdate) { s.emitBody(s.neighBody(u)) })
}

func (s *netSource) emitBody(b *journal.Body) {
	if b == nil {
		return
	}
	if s.ns != "" {
		b.Data["ns"] = s.ns
	}
	s.emit(b)
}

// netBody is the common shape of the source's events.
func netBody(kind, typ, subject string, data map[string]any) *journal.Body {
	return &journal.Body{
		Kind:    kind,
		Subject: subject,
		Actor:   journal.SystemActor(),
		Evt:     &journal.Evt{Type: typ, Time: time.Now().UnixNano()},
		Data:    data,
	}
}

// linkBody names a link notification: link_add for a link not seen
// before, link_del, link_up / link_down when the admin state flips, else
// link_change.
func (s *netSource) linkBody(u netlink.LinkUpdate) *journal.Body {
	a := u.Attrs()
	if a == nil {
		return nil
	}
	up := a.Flags&net.FlagUp != 0
	s.mu.Lock()
	prev, known := s.links[a.Index]
	var typ string
	switch {
	case u.Header.Type == unix.RTM_DELLINK:
		typ = "link_del"
		delete(s.links, a.Index)
	case !known:
		typ = "link_add"
	case prev.up != up && up:
		typ = "link_up"
	case prev.up != up:
		typ = "link_down"
	default:
		typ = "link_change"
	}
	if typ != "link_del" {
		s.links[a.Index] = linkState{name: a.Name, up: up}
	}
	master := ""
	if a.MasterIndex != 0 {
		master = s.links[a.MasterIndex].name
		if master == "" {
			master = strconv.Itoa(a.MasterIndex)
		}
	}
	s.mu.Unlock()
	return netBody("capture.link", typ, "link/"+a.Name, map[string]any{
		"name": a.Name, "index": int64(a.Index), "kind": u.Link.Type(), "mtu": int64(a.MTU),
		"up": up, "oper": a.OperState.String(), "mac": a.HardwareAddr.String(), "master": master,
	})
}

func (s *netSource) linkName(index int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.links[index]; ok {
		return l.name
	}
	if index == 0 {
		return ""
	}
	return strconv.Itoa(index)
}

func (s *netSource) addrBody(u netlink.AddrUpdate) *journal.Body {
	typ := "addr_del"
	if u.NewAddr {
		typ = "addr_add"
	}
	cidr := u.LinkAddress.String()
	return netBody("capture.addr", typ, "addr/"+cidr, map[string]any{
		"link": s.linkName(u.LinkIndex), "index": int64(u.LinkIndex), "cidr": cidr, "scope": int64(u.Scope),
	})
}

func (s *netSource) routeBody(u netlink.RouteUpdate) *journal.Body {
	typ := "route_change"
	switch u.Type {
	case unix.RTM_NEWROUTE:
		typ = "route_add"
	case unix.RTM_DELROUTE:
		typ = "route_del"
	}
	r := u.Route
	dst := "default"
	if r.Dst != nil {
		dst = r.Dst.String()
	}
	data := map[string]any{
		"dst": dst, "link": s.linkName(r.LinkIndex), "table": int64(r.Table),
		"protocol": r.Protocol.String(), "scope": r.Scope.String(), "priority": int64(r.Priority),
	}
	if r.Gw != nil {
		data["gw"] = r.Gw.String()
	}
	if r.Src != nil {
		data["src"] = r.Src.String()
	}
	return netBody("capture.route", typ, "route/"+dst, data)
}

func (s *netSource) neighBody(u netlink.NeighUpdate) *journal.Body {
	typ := "neigh_change"
	switch u.Type {
	case unix.RTM_NEWNEIGH:
		typ = "neigh_add"
	case unix.RTM_DELNEIGH:
		typ = "neigh_del"
	}
	ip := ""
	if u.IP != nil {
		ip = u.IP.String()
	}
	return netBody("capture.neigh", typ, "neigh/"+ip, map[string]any{
		"ip": ip, "mac": u.HardwareAddr.String(), "link": s.linkName(u.LinkIndex), "state": neighState(u.State),
	})
}

// neighState names a NUD_* state as ip neigh prints it.
func neighState(st int) string {
	names := []struct {
		bit  int
		name string
	}{
		{netlink.NUD_INCOMPLETE, "INCOMPLETE"}, {netlink.NUD_REACHABLE, "REACHABLE"}, {netlink.NUD_STALE, "STALE"},
		{netlink.NUD_DELAY, "DELAY"}, {netlink.NUD_PROBE, "PROBE"}, {netlink.NUD_FAILED, "FAILED"},
		{netlink.NUD_NOARP, "NOARP"}, {netlink.NUD_PERMANENT, "PERMANENT"},
	}
	var out []string
	for _, n := range names {
		if st&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	if len(out) == 0 {
		return "NONE"
	}
	return strings.Join(out, ",")
}

// Stop closes the subscriptions and returns once their readers have handed
// every notification to emit.
func (s *netSource) Stop() error {
	if !s.stopped.CompareAndSwap(false, true) {
		s.wg.Wait()
		return nil
	}
	if s.done != nil {
		close(s.done)
	}
	s.wg.Wait()
	if s.cancel != nil {
		s.cancel()
	}
	if s.handle.IsOpen() {
		s.handle.Close()
	}
	return nil
}
