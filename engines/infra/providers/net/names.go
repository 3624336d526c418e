package netprovider

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
)

// nameCache resolves names and indexes of one namespace during a write by
// targeted gets, remembering what it learned: a write must not dump.
type nameCache struct {
	h       *netlink.Handle
	byIndex map[int]string
	links   map[string]netlink.Link
}

func newNameCache(h *netlink.Handle) *nameCache {
	return &nameCache{h: h, byIndex: map[int]string{}, links: map[string]netlink.Link{}}
}

func (c *nameCache) learn(index int, name string) { c.byIndex[index] = name }

func (c *nameCache) link(name string) (netlink.Link, error) {
	if l, ok := c.links[name]; ok {
		return l, nil
	}
	l, err := c.h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, &noLinkError{name: name}
		}
		return nil, fmt.Errorf("find link %s: %w", name, err)
	}
	c.links[name] = l
	c.learn(l.Attrs().Index, name)
	return l, nil
}

// index returns the index of the link name.
func (c *nameCache) index(name string) (int, error) {
	l, err := c.link(name)
	if err != nil {
		return 0, err
	}
	return l.Attrs().Index, nil
}

// bridge returns the index of the bridge name.
func (c *nameCache) bridge(name string) (int, error) {
	l, err := c.link(name)
	if err != nil {
		return 0, fmt.Errorf("master: %w", err)
	}
	if k := kindOf(l); k != "bridge" {
		return 0, fmt.Errorf("master %s is a %s link, not a bridge", name, k)
	}
	return l.Attrs().Index, nil
}

// name returns the name of the link with the given index, "" when there is
// none.
func (c *nameCache) name(index int) string {
	if n, ok := c.byIndex[index]; ok {
		return n
	}
	l, err := c.h.LinkByIndex(index)
	if err != nil {
		return ""
	}
	c.learn(index, l.Attrs().Name)
	return l.Attrs().Name
}
