package netprovider

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// routeResource is net_route: a route in the main table.
type routeResource struct{}

var _ provider.Resource = routeResource{}

var routeSchema = &provider.Schema{
	Description: "A route in the main routing table (ip route).",
	Attributes: map[string]*provider.Attribute{
		"destination": {Type: provider.String, Required: true, ForceNew: true,
			Description: `A network such as 10.1.0.0/16 or fd01::/64; "default" for the IPv4 default route, ::/0 for the IPv6 one.`},
		"gateway": {Type: provider.String, Optional: true, ForceNew: true,
			Description: "The next hop's address. A route needs a gateway, a link or both."},
		"link": {Type: provider.String, Optional: true, Computed: true, ForceNew: true,
			Description: "The link the route goes out of; the kernel's choice for the gateway when left out."},
		"namespace": namespaceAttr(),
		"metric": {Type: provider.Number, Optional: true, Computed: true, ForceNew: true,
			Description: "The route's priority: 0 for IPv4 and 1024 for IPv6 when left out."},
	},
}

// ip6DefaultMetric is the metric the kernel gives an IPv6 route that asks
// for none (IP6_RT_PRIO_USER); it turns a 0 into it too.
const ip6DefaultMetric = 1024

func (routeResource) Schema() *provider.Schema { return routeSchema }

func (routeResource) ID(v provider.Values) (string, error) {
	if v.String("destination") == "" {
		return "", errors.New("net_route: destination is not known")
	}
	return routeID(v.String("namespace"), v.String("destination")), nil
}

func (routeResource) Validate(v provider.Values, known map[string]bool) error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(checkKnown(v, "namespace", checkNamespaceName))
	add(checkKnown(v, "link", func(s string) error { return checkLinkName("link", s) }))
	add(checkRange(v, "metric", 0, 1<<32-1))
	if missing(v, known, "gateway") && missing(v, known, "link") {
		add(errors.New("a route needs a gateway, a link or both"))
	}
	var dst netip.Prefix
	var dstOK bool
	if s, ok := v["destination"].(string); ok {
		var err error
		dst, err = parseDestination(s)
		add(err)
		dstOK = err == nil
	}
	var gw netip.Addr
	if s, ok := v["gateway"].(string); ok {
		var err error
		gw, err = parseGateway(s)
		add(err)
	}
	if dstOK && gw.IsValid() && dst.Addr().Is4() != gw.Is4() {
		hint := ""
		if v.String("destination") == "default" {
			hint = " (the IPv6 default route is ::/0)"
		}
		add(fmt.Errorf("gateway %s and destination %s are of different IP families%s", gw, v.String("destination"), hint))
	}
	if m, ok := v["metric"].(int64); ok && m == 0 && dstOK && dst.Addr().Is6() {
		add(fmt.Errorf("metric 0: the kernel makes an IPv6 route's 0 into %d; leave metric out or set %d", ip6DefaultMetric, ip6DefaultMetric))
	}
	return errors.Join(errs...)
}

func (routeResource) Read(ctx context.Context, s provider.Session, id string) (provider.Values, bool, error) {
	ns, dst, err := parseRouteID(id)
	if err != nil {
		return nil, false, err
	}
	p, err := parseDestination(dst)
	if err != nil {
		return nil, false, fmt.Errorf("route id %q: %w", id, err)
	}
	sess, err := sessionOf(s)
	if err != nil {
		return nil, false, err
	}
	sp, err := sess.space(ns)
	if err != nil {
		return nil, false, err
	}
	vw, err := sp.view(dumpRoutes)
	if isNoNamespace(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	routes := vw.routes.byDst[p.String()]
	if len(routes) == 0 {
		return nil, false, nil
	}
	// Routes to one destination differ by metric; the ID does not name
	// one, so the one in effect, the lowest, is the route.
	r := routes[0]
	for _, x := range routes[1:] {
		if x.Priority < r.Priority {
			r = x
		}
	}
	return routeValues(ns, dst, ipString(r.Gw), vw.links.name(r.LinkIndex), int64(r.Priority)), true, nil
}

func routeValues(ns, dst, gw, link string, metric int64) provider.Values {
	return provider.Values{
		"destination": dst,
		"gateway":     nonEmpty(gw),
		"link":        nonEmpty(link),
		"namespace":   ns,
		"metric":      metric,
	}
}

func (routeResource) Create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	ns, dst := planned.String("namespace"), planned.String("destination")
	out, err := addRoute(ctx, s, planned)
	if err != nil {
		return nil, fmt.Errorf("create route %s%s: %w", dst, in(ns), err)
	}
	return out, nil
}

// route builds the netlink route v denotes; link resolves a link name.
func route(v provider.Values, link func(string) (int, error)) (*netlink.Route, error) {
	p, err := parseDestination(v.String("destination"))
	if err != nil {
		return nil, err
	}
	var gw netip.Addr
	if v.Has("gateway") {
		if gw, err = parseGateway(v.String("gateway")); err != nil {
			return nil, err
		}
	}
	r := &netlink.Route{Dst: ipNet(p), Table: unix.RT_TABLE_MAIN, Priority: int(v.Int("metric"))}
	if gw.IsValid() {
		r.Gw = gw.AsSlice()
	} else if p.Addr().Is4() {
		r.Scope = netlink.SCOPE_LINK // as ip route does for a route with no gateway
	}
	if l := v.String("link"); l != "" {
		i, err := link(l)
		if err != nil {
			return nil, err
		}
		r.LinkIndex = i
	}
	return r, nil
}

func addRoute(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ns := planned.String("namespace")
	sess, err := sessionOf(s)
	if err != nil {
		return nil, err
	}
	sp, err := sess.space(ns)
	if err != nil {
		return nil, err
	}
	var out provider.Values
	err = sp.write(dumpRoutes, func(h *netlink.Handle, _ netns.NsHandle) error {
		names := newNameCache(h)
		r, err := route(planned, names.index)
		if err != nil {
			return err
		}
		if err := h.RouteAdd(r); err != nil {
			return err
		}
		// The kernel took the route as asked; what it chose itself is the
		// metric (when none was asked) and the link (when only a gateway
		// was given): the link it reaches the gateway through.
		metric := int64(r.Priority)
		if metric == 0 && r.Dst.IP.To4() == nil {
			metric = ip6DefaultMetric
		}
		link := planned.String("link")
		if link == "" && r.Gw != nil {
			got, err := h.RouteGet(r.Gw)
			if err == nil && len(got) > 0 {
				link = names.name(got[0].LinkIndex)
			}
		}
		out = routeValues(ns, planned.String("destination"), ipString(r.Gw), link, metric)
		return nil
	})
	return out, err
}

// Update has nothing to change: every attribute forces a new route.
func (routeResource) Update(ctx context.Context, s provider.Session, id string, prior, planned provider.Values) (provider.Values, error) {
	return prior.Clone(), nil
}

func (routeResource) Delete(ctx context.Context, s provider.Session, id string, prior provider.Values) error {
	ns, dst, err := parseRouteID(id)
	if err != nil {
		return err
	}
	sess, err := sessionOf(s)
	if err != nil {
		return err
	}
	sp, err := sess.space(ns)
	if err != nil {
		return err
	}
	v := prior.Clone()
	v["destination"] = dst
	err = sp.write(dumpRoutes, func(h *netlink.Handle, _ netns.NsHandle) error {
		r, err := route(v, newNameCache(h).index)
		if err != nil {
			return err
		}
		r.Scope = netlink.SCOPE_NOWHERE // match any scope, as ip route del does
		return h.RouteDel(r)
	})
	if err != nil && !isGone(err) && !isNoNamespace(err) && !isNoLink(err) {
		return fmt.Errorf("delete route %s%s: %w", dst, in(ns), err)
	}
	return nil
}

// isNoLink reports a link that is gone: its routes went with it.
func isNoLink(err error) bool {
	var nl *noLinkError
	return errors.As(err, &nl)
}
