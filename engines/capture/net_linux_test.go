package capture

import (
	"net"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestLinkEventNames pins how link notifications are named: the first one
// of an index is link_add, a flip of IFF_UP is link_up/link_down, anything
// else link_change, and RTM_DELLINK link_del.
func TestLinkEventNames(t *testing.T) {
	s := &netSource{links: map[int]linkState{1: {name: "lo", up: true}}}
	upd := func(typ uint16, flags net.Flags, master int) netlink.LinkUpdate {
		u := netlink.LinkUpdate{Link: &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Index: 7, Name: "veth0", MTU: 1500, Flags: flags, MasterIndex: master}}}
		u.Header.Type = typ
		return u
	}
	steps := []struct {
		u    netlink.LinkUpdate
		want string
	}{
		{upd(unix.RTM_NEWLINK, 0, 0), "link_add"},
		{upd(unix.RTM_NEWLINK, 0, 0), "link_change"},
		{upd(unix.RTM_NEWLINK, net.FlagUp, 1), "link_up"},
		{upd(unix.RTM_NEWLINK, 0, 0), "link_down"},
		{upd(unix.RTM_DELLINK, 0, 0), "link_del"},
		{upd(unix.RTM_NEWLINK, 0, 0), "link_add"},
	}
	for i, st := range steps {
		b := s.linkBody(st.u)
		if b.Kind != "capture.link" || b.Evt.Type != st.want || b.Subject != "link/veth0" {
			t.Errorf("step %d: %s %s %s, want capture.link %s link/veth0", i, b.Kind, b.Evt.Type, b.Subject, st.want)
		}
		if b.Data["kind"] != "veth" || b.Data["mtu"] != int64(1500) {
			t.Errorf("step %d: data %v", i, b.Data)
		}
		if i == 2 && b.Data["master"] != "lo" {
			t.Errorf("master = %v, want lo", b.Data["master"])
		}
	}
	if got := neighState(netlink.NUD_REACHABLE | netlink.NUD_PERMANENT); got != "REACHABLE,PERMANENT" {
		t.Errorf("neighState = %q", got)
	}
}
