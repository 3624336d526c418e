package netprovider

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// runDir is where ip netns keeps its named namespaces, one bind mount each.
const runDir = "/run/netns"

// session is one plan's or apply's view of the namespaces it touches. Per
// namespace it caches one dump each of links, addresses and routes, taken
// by the first read that needs it and taken again after a write there.
type session struct {
	mu     sync.Mutex
	spaces map[string]*space
	closed bool

	// dumps counts the dumps taken, all kinds and namespaces: the tests pin
	// "one per namespace" with it.
	dumps atomic.Int64
}

var _ provider.Session = (*session)(nil)

func newSession() *session { return &session{spaces: map[string]*space{}} }

// sessionOf returns the net provider's session behind s.
func sessionOf(s provider.Session) (*session, error) {
	sess, ok := s.(*session)
	if !ok || sess == nil {
		return nil, fmt.Errorf("net: session %T is not the net provider's (open it with the net provider)", s)
	}
	return sess, nil
}

// space returns the namespace ns as the session sees it.
func (s *session) space(ns string) (*space, error) {
	if err := checkNamespaceName(ns); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("net: session closed")
	}
	sp, ok := s.spaces[ns]
	if !ok {
		sp = &space{ns: ns, sess: s, fd: netns.None()}
		s.spaces[ns] = sp
	}
	return sp, nil
}

// Close releases the netlink sockets and namespace handles the session
// opened.
func (s *session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for _, sp := range s.spaces {
		sp.close()
	}
	return nil
}

// forget sets aside what the session holds of the namespace ns, deleted:
// its handle is closed with the session (an operation may still hold it),
// and the next use of the name opens whatever it then denotes.
func (s *session) forget(ns string) {
	s.mu.Lock()
	sp := s.spaces[ns]
	s.mu.Unlock()
	if sp == nil {
		return
	}
	sp.hmu.Lock()
	defer sp.hmu.Unlock()
	sp.retire()
}

// dumpKind says which dumps a read needs, or which a write makes stale.
type dumpKind int

const (
	dumpLinks dumpKind = 1 << iota
	dumpAddrs
	dumpRoutes

	dumpAll = dumpLinks | dumpAddrs | dumpRoutes
)

// bump marks the dumps of kinds stale. A kind's bit number is its index
// in gen.
func (sp *space) bump(kinds dumpKind) {
	for i := range sp.gen {
		if kinds&(1<<i) != 0 {
			sp.gen[i].Add(1)
		}
	}
}

// space is one namespace as a session sees it: a netlink handle opened in
// it, and the dumps taken through that handle.
type space struct {
	ns   string // "" for the daemon's own
	sess *session

	hmu     sync.Mutex
	h       *netlink.Handle
	fd      netns.NsHandle // the named namespace h was opened in; None for the daemon's
	ident   [2]uint64      // device and inode of fd: a namespace's identity
	retired []func()       // handles of a namespace the name no longer denotes

	// gen counts, per dump kind, the writes that may have changed what
	// that dump shows, and changes of the namespace the name denotes: a
	// dump taken at an older gen is stale.
	gen [3]atomic.Int64

	dmu    sync.Mutex
	links  *linkDump
	addrs  *addrDump
	routes *routeDump
}

// linkDump is one dump of a namespace's links.
type linkDump struct {
	gen     int64
	byName  map[string]netlink.Link
	byIndex map[int]netlink.Link
}

// name returns the name of the link with the given index, "" for none.
func (d *linkDump) name(index int) string {
	if l, ok := d.byIndex[index]; ok {
		return l.Attrs().Name
	}
	return ""
}

// addrKey finds an address: its link and the address with its prefix
// length, spelled as netip does.
type addrKey struct {
	index int
	cidr  string
}

// addrDump is one dump of a namespace's addresses.
type addrDump struct {
	gen int64
	set map[addrKey]netlink.Addr
}

// routeDump is one dump of a namespace's main routing table, by
// destination spelled as netip does (0.0.0.0/0 for the IPv4 default).
type routeDump struct {
	gen   int64
	byDst map[string][]netlink.Route
}

// view is what a read sees: the dumps it asked for, each complete and not
// older than the last write that finished before the read began.
type view struct {
	links  *linkDump
	addrs  *addrDump
	routes *routeDump
}

// handle returns the namespace's netlink handle and, for a named namespace,
// its file (for what must run inside it). It opens them on first use and
// again when the name has come to denote another namespace (deleted and
// added again); it returns a *noNamespaceError when the name denotes none.
func (sp *space) handle() (*netlink.Handle, netns.NsHandle, error) {
	sp.hmu.Lock()
	defer sp.hmu.Unlock()
	if sp.ns == "" {
		if sp.h == nil {
			h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
			if err != nil {
				return nil, netns.None(), fmt.Errorf("open netlink: %w", err)
			}
			sp.h = h
		}
		return sp.h, netns.None(), nil
	}
	path := filepath.Join(runDir, sp.ns)
	var st unix.Stat_t
	err := unix.Stat(path, &st)
	if err == nil && sp.h != nil && sp.ident == [2]uint64{uint64(st.Dev), st.Ino} {
		return sp.h, sp.fd, nil
	}
	sp.retire()
	if errors.Is(err, unix.ENOENT) {
		return nil, netns.None(), &noNamespaceError{ns: sp.ns}
	}
	if err != nil {
		return nil, netns.None(), fmt.Errorf("namespace %s: %w", sp.ns, err)
	}
	fd, ident, err := openNamespace(sp.ns)
	if err != nil {
		return nil, netns.None(), err
	}
	var h *netlink.Handle
	err = onOwnThread(func() (err error) {
		h, err = netlink.NewHandleAt(fd, unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		fd.Close()
		return nil, netns.None(), fmt.Errorf("open netlink in namespace %s: %w", sp.ns, err)
	}
	sp.h, sp.fd, sp.ident = h, fd, ident
	return h, fd, nil
}

// retire sets aside the handle of a namespace the name no longer denotes
// (closed with the session: a concurrent operation may still hold it) and
// makes every dump stale.
func (sp *space) retire() {
	if sp.h == nil {
		return
	}
	h, fd := sp.h, sp.fd
	sp.retired = append(sp.retired, func() { h.Close(); fd.Close() })
	sp.h, sp.fd, sp.ident = nil, netns.None(), [2]uint64{}
	sp.bump(dumpAll)
}

func (sp *space) close() {
	sp.hmu.Lock()
	defer sp.hmu.Unlock()
	if sp.h != nil {
		sp.h.Close()
		sp.h = nil
	}
	if sp.fd.IsOpen() {
		sp.fd.Close()
		sp.fd = netns.None()
	}
	for _, f := range sp.retired {
		f()
	}
	sp.retired = nil
}

// openNamespace opens the named namespace and checks that the name is a
// namespace, not a leftover file that ip netns del or a crash left behind.
func openNamespace(ns string) (netns.NsHandle, [2]uint64, error) {
	fd, err := netns.GetFromName(ns)
	if errors.Is(err, os.ErrNotExist) {
		return netns.None(), [2]uint64{}, &noNamespaceError{ns: ns}
	}
	if err != nil {
		return netns.None(), [2]uint64{}, fmt.Errorf("open namespace %s: %w", ns, err)
	}
	var fs unix.Statfs_t
	var st unix.Stat_t
	if err := unix.Fstatfs(int(fd), &fs); err != nil || fs.Type != unix.NSFS_MAGIC {
		fd.Close()
		return netns.None(), [2]uint64{}, &noNamespaceError{ns: ns}
	}
	if err := unix.Fstat(int(fd), &st); err != nil {
		fd.Close()
		return netns.None(), [2]uint64{}, fmt.Errorf("namespace %s: %w", ns, err)
	}
	return fd, [2]uint64{uint64(st.Dev), st.Ino}, nil
}

// write runs f, a change in the namespace, and marks the dumps of stale
// kinds stale, whether f failed or not (a failed change may have done
// half). A link's change may take its addresses and routes with it; an
// address's, its prefix route; a route's, nothing else.
func (sp *space) write(stale dumpKind, f func(h *netlink.Handle, fd netns.NsHandle) error) error {
	h, fd, err := sp.handle()
	if err != nil {
		return err
	}
	defer sp.bump(stale)
	return f(h, fd)
}

// view returns the dumps need asks for, taking those that are missing or
// stale. Concurrent readers wait for one dump rather than each taking one.
func (sp *space) view(need dumpKind) (view, error) {
	h, _, err := sp.handle()
	if err != nil {
		return view{}, err
	}
	sp.dmu.Lock()
	defer sp.dmu.Unlock()
	// A write that finishes during a dump bumps gen past g, so the next
	// read dumps again; one that finished before is in it.
	// Addresses and routes name their links by index: every read needs the
	// links.
	if g := sp.gen[0].Load(); sp.links == nil || sp.links.gen != g {
		links, err := dumpRetry(sp.sess, h.LinkList)
		if err != nil {
			return view{}, fmt.Errorf("list links%s: %w", in(sp.ns), err)
		}
		d := &linkDump{gen: g, byName: make(map[string]netlink.Link, len(links)), byIndex: make(map[int]netlink.Link, len(links))}
		for _, l := range links {
			d.byName[l.Attrs().Name] = l
			d.byIndex[l.Attrs().Index] = l
		}
		sp.links = d
	}
	if g := sp.gen[1].Load(); need&dumpAddrs != 0 && (sp.addrs == nil || sp.addrs.gen != g) {
		addrs, err := dumpRetry(sp.sess, func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_ALL) })
		if err != nil {
			return view{}, fmt.Errorf("list addresses%s: %w", in(sp.ns), err)
		}
		d := &addrDump{gen: g, set: make(map[addrKey]netlink.Addr, len(addrs))}
		for _, a := range addrs {
			if p, ok := prefixOf(a.IPNet); ok {
				d.set[addrKey{a.LinkIndex, p.String()}] = a
			}
		}
		sp.addrs = d
	}
	if g := sp.gen[2].Load(); need&dumpRoutes != 0 && (sp.routes == nil || sp.routes.gen != g) {
		routes, err := dumpRetry(sp.sess, func() ([]netlink.Route, error) {
			return h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		})
		if err != nil {
			return view{}, fmt.Errorf("list routes%s: %w", in(sp.ns), err)
		}
		d := &routeDump{gen: g, byDst: make(map[string][]netlink.Route, len(routes))}
		for _, r := range routes {
			if p, ok := prefixOf(r.Dst); ok {
				d.byDst[p.String()] = append(d.byDst[p.String()], r)
			}
		}
		sp.routes = d
	}
	return view{links: sp.links, addrs: sp.addrs, routes: sp.routes}, nil
}

// dumpRetry takes a dump, again when the kernel says a change interrupted
// it (the result would be inconsistent).
func dumpRetry[T any](sess *session, dump func() ([]T, error)) ([]T, error) {
	var err error
	for range 5 {
		sess.dumps.Add(1)
		var out []T
		out, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, err
		}
	}
	return nil, err
}
