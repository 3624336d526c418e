package netprovider

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

var addresses = addressResource{}

func TestAddressLifecycle(t *testing.T) {
	ns := testNS(t)
	s := open(t)
	create(t, s, links, provider.Values{"name": "br0", "kind": "bridge", "namespace": ns})
	for _, cidr := range []string{"10.0.0.1/24", "fd00::1/64", "192.168.7.9/32"} {
		t.Run(cidr, func(t *testing.T) {
			cfg := provider.Values{"link": "br0", "cidr": cidr, "namespace": ns}
			id, created := create(t, s, addresses, cfg)
			if want := ns + "/br0/" + cidr; id != want {
				t.Errorf("id %q, want %q", id, want)
			}
			if !slices.Contains(ipAddrs(t, ns, "br0"), cidr) {
				t.Errorf("ip shows %v on br0, not %s", ipAddrs(t, ns, "br0"), cidr)
			}
			got, found := read(t, addresses, id)
			if !found {
				t.Fatal("read: not found")
			}
			sameValues(t, "read after create", got, created)
			noDiff(t, addresses, cfg, got)

			_, err := addresses.Create(context.Background(), s, config(t, addresses, cfg))
			if err == nil || !strings.Contains(err.Error(), "create address "+cidr+" on br0 in "+ns+": file exists") {
				t.Errorf("create twice: %v", err)
			}
			if err := addresses.Delete(context.Background(), s, id, created); err != nil {
				t.Fatal(err)
			}
			if slices.Contains(ipAddrs(t, ns, "br0"), cidr) {
				t.Errorf("ip still shows %s after delete", cidr)
			}
			if _, found := read(t, addresses, id); found {
				t.Error("read after delete: found")
			}
			if err := addresses.Delete(context.Background(), s, id, created); err != nil {
				t.Errorf("delete of an address already gone: %v", err)
			}
		})
	}
	// An address on a link that is gone is gone too.
	if _, found := read(t, addresses, ns+"/nope/10.0.0.1/24"); found {
		t.Error("an address on a missing link: found")
	}
	_, err := addresses.Create(context.Background(), s, config(t, addresses, provider.Values{"link": "nope", "cidr": "10.0.0.1/24", "namespace": ns}))
	if err == nil || !strings.Contains(err.Error(), "no link nope") {
		t.Errorf("an address on a missing link: %v", err)
	}
}

func TestAddressValidate(t *testing.T) {
	cases := []struct {
		v    provider.Values
		want string
	}{
		{provider.Values{"link": "br0", "cidr": "10.0.0.1/24"}, ""},
		{provider.Values{"link": "br0", "cidr": "fd00::1/64"}, ""},
		{provider.Values{"link": "br0", "cidr": "10.0.0.1"}, "want an address with its prefix length"},
		{provider.Values{"link": "br0", "cidr": "fd00:0::1/64"}, "write it as fd00::1/64"},
		{provider.Values{"link": "br0", "cidr": "::ffff:10.0.0.1/120"}, "write an IPv4 address as IPv4 (10.0.0.1/24)"},
		{provider.Values{"link": "br0/x", "cidr": "10.0.0.1/24"}, "cannot hold a slash"},
	}
	for _, c := range cases {
		err := addresses.Validate(c.v, map[string]bool{"link": true, "cidr": true})
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("validate %v: %v, want %q", c.v, err, c.want)
		}
	}
}

func TestAddressIDs(t *testing.T) {
	for _, c := range []struct{ id, ns, link, cidr string }{
		{"ns1/br0/10.0.0.1/24", "ns1", "br0", "10.0.0.1/24"},
		{"/br0/fd00::1/64", "", "br0", "fd00::1/64"},
	} {
		ns, link, cidr, err := parseAddressID(c.id)
		if err != nil || ns != c.ns || link != c.link || cidr != c.cidr {
			t.Errorf("parse %q: %q %q %q %v", c.id, ns, link, cidr, err)
		}
		if id := addressID(ns, link, cidr); id != c.id {
			t.Errorf("format: %q, want %q", id, c.id)
		}
	}
	for _, bad := range []string{"ns1/br0", "ns1//10.0.0.1/24", "ns1/br0/10.0.0.1"} {
		if _, _, _, err := parseAddressID(bad); err == nil {
			t.Errorf("parse %q: no error", bad)
		}
	}
}
