package netprovider

import (
	"context"
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// addressResource is net_address: an IP address on a link.
type addressResource struct{}

var _ provider.Resource = addressResource{}

var addressSchema = &provider.Schema{
	Description: "An IP address on a link (ip addr).",
	Attributes: map[string]*provider.Attribute{
		"link": {Type: provider.String, Required: true, ForceNew: true,
			Description: "The name of the link the address is on."},
		"cidr": {Type: provider.String, Required: true, ForceNew: true,
			Description: "The address with its prefix length, such as 10.0.0.1/24 or fd00::1/64, spelled as the kernel reports it."},
		"namespace": namespaceAttr(),
	},
}

func (addressResource) Schema() *provider.Schema { return addressSchema }

func (addressResource) ID(v provider.Values) (string, error) {
	if v.String("link") == "" || v.String("cidr") == "" {
		return "", errors.New("net_address: link and cidr must be known")
	}
	return addressID(v.String("namespace"), v.String("link"), v.String("cidr")), nil
}

func (addressResource) Validate(v provider.Values, known map[string]bool) error {
	return errors.Join(
		checkKnown(v, "link", func(s string) error { return checkLinkName("link", s) }),
		checkKnown(v, "cidr", func(s string) error { _, err := parseHostCIDR(s); return err }),
		checkKnown(v, "namespace", checkNamespaceName),
	)
}

func (addressResource) Read(ctx context.Context, s provider.Session, id string) (provider.Values, bool, error) {
	ns, link, cidr, err := parseAddressID(id)
	if err != nil {
		return nil, false, err
	}
	// An ID typed by hand for import may spell the address otherwise.
	p, err := parseHostCIDR(cidr)
	if err != nil {
		return nil, false, fmt.Errorf("address id %q: %w", id, err)
	}
	sess, err := sessionOf(s)
	if err != nil {
		return nil, false, err
	}
	sp, err := sess.space(ns)
	if err != nil {
		return nil, false, err
	}
	vw, err := sp.view(dumpAddrs)
	if isNoNamespace(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	l, ok := vw.links.byName[link]
	if !ok {
		return nil, false, nil
	}
	if _, ok := vw.addrs.set[addrKey{l.Attrs().Index, p.String()}]; !ok {
		return nil, false, nil
	}
	return addressValues(ns, link, p.String()), true, nil
}

func addressValues(ns, link, cidr string) provider.Values {
	return provider.Values{"link": link, "cidr": cidr, "namespace": ns}
}

func (addressResource) Create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	ns, link, cidr := planned.String("namespace"), planned.String("link"), planned.String("cidr")
	if err := addAddress(ctx, s, ns, link, cidr); err != nil {
		return nil, fmt.Errorf("create address %s on %s%s: %w", cidr, link, in(ns), err)
	}
	// The kernel took the address as asked (it fails on one that exists),
	// so what it has is what was planned, spelled canonically.
	return addressValues(ns, link, cidr), nil
}

func addAddress(ctx context.Context, s provider.Session, ns, link, cidr string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := parseHostCIDR(cidr)
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
	return sp.write(dumpAddrs|dumpRoutes, func(h *netlink.Handle, _ netns.NsHandle) error {
		l, err := newNameCache(h).link(link)
		if err != nil {
			return err
		}
		return h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(p)})
	})
}

// Update has nothing to change: every attribute forces a new address.
func (addressResource) Update(ctx context.Context, s provider.Session, id string, prior, planned provider.Values) (provider.Values, error) {
	return addressValues(planned.String("namespace"), planned.String("link"), planned.String("cidr")), nil
}

func (addressResource) Delete(ctx context.Context, s provider.Session, id string, prior provider.Values) error {
	ns, link, cidr, err := parseAddressID(id)
	if err != nil {
		return err
	}
	p, err := parseHostCIDR(cidr)
	if err != nil {
		return fmt.Errorf("address id %q: %w", id, err)
	}
	sess, err := sessionOf(s)
	if err != nil {
		return err
	}
	sp, err := sess.space(ns)
	if err != nil {
		return err
	}
	err = sp.write(dumpAddrs|dumpRoutes, func(h *netlink.Handle, _ netns.NsHandle) error {
		l, err := h.LinkByName(link)
		if err != nil {
			return err
		}
		return h.AddrDel(l, &netlink.Addr{IPNet: ipNet(p)})
	})
	if err != nil && !isGone(err) && !isNoNamespace(err) {
		return fmt.Errorf("delete address %s on %s%s: %w", cidr, link, in(ns), err)
	}
	return nil
}
